"""The practical limit for Python: one smtplib connection (STARTTLS + AUTH) sending pre-serialized messages.

    python bench/bare_loop.py MESSAGES_FILE HOST PORT CA_FILE [--nagle] [--limit N]

It sets TCP_NODELAY on the socket, as any sender over a fast link should: with smtplib's defaults the
last segment of each message waits on Nagle's algorithm for the server's delayed ACK (~40 ms a message on
loopback). `--nagle` leaves smtplib's defaults, to show that.

MESSAGES_FILE holds length-prefixed records: 4-byte big-endian length of the recipient address, the
address, 4-byte length of the message, the message bytes (CRLF line ends, as on the wire). Prints the time
spent in the send loop (connect to QUIT) in seconds.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import struct
import sys
import time


def read_messages(path: str) -> list[tuple[str, bytes]]:
    out = []
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        addr = data[pos:pos + n].decode()
        pos += n
        (m,) = struct.unpack_from(">I", data, pos)
        pos += 4
        out.append((addr, data[pos:pos + m]))
        pos += m
    return out


def main() -> None:
    path, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    messages = read_messages(path)
    if "--limit" in sys.argv:
        messages = messages[: int(sys.argv[sys.argv.index("--limit") + 1])]
    context = ssl.create_default_context(cafile=ca)
    started = time.perf_counter()
    with smtplib.SMTP(host, port) as smtp:
        if "--nagle" not in sys.argv:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # kept by the TLS socket
        smtp.starttls(context=context)
        smtp.login("bench", "bench-password")
        for addr, message in messages:
            smtp.sendmail("nieuwsbrief@vzhg.example", [addr], message)
    print(time.perf_counter() - started)


if __name__ == "__main__":
    main()
