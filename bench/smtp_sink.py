"""A minimal SMTP sink for the send benchmarks, run in its own process: it speaks just enough ESMTP
(EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and XCNT, which answers
the number of messages accepted so far, and XSPN N: how many from message N on, and when the first and
the last of them were accepted), discards every message without
parsing it, and records when each message was accepted.

    python bench/smtp_sink.py --cert CERT.pem --key KEY.pem --times OUT.json [--port 0]
        [--rtt 0.01] [--data-delay 0.03,0.08] [--greylist 10]

A realistic server, for the send benchmarks that must not flatter pipelining and connections: `--rtt`
delays every reply the client waits for (one whose command is the last it sent) by a network round trip,
`--data-delay` waits a random time in that range before answering a message's final dot (a real server
scans and stores it), and `--greylist N` answers 451 once to RCPT for every Nth recipient address of the
benchmark's lists (lidNNNNNN@...: N divides the number), as greylisting hosts do.

Prints `READY <port>` on stdout once listening; on SIGTERM or SIGINT writes the acceptance times
(time.time() floats, one per message) to --times and exits. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import ssl
import sys
import time

accepted: list[float] = []
connections = 0
OPTIONS = argparse.Namespace(rtt=0.0, data_delay=(0.0, 0.0), greylist=0)
greylisted: set[bytes] = set()


def greylist(line: bytes) -> bool:
    """451 once for every Nth benchmark address (lid000010@..., lid000020@... with --greylist 10)."""
    if not OPTIONS.greylist:
        return False
    address = line.split(b":", 1)[-1].strip().strip(b"<>").split(b">")[0].lower()
    digits = address.split(b"@")[0].lstrip(b"lid")
    if not digits.isdigit() or int(digits) % OPTIONS.greylist or address in greylisted:
        return False
    greylisted.add(address)
    return True


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: ssl.SSLContext) -> None:
    global connections
    connections += 1
    tls_on = False
    recipients = 0  # accepted RCPTs in the current transaction

    async def reply(line: bytes) -> None:
        if OPTIONS.rtt and not reader._buffer:  # type: ignore[attr-defined]  # the client waits for this one
            await asyncio.sleep(OPTIONS.rtt)
        writer.write(line + b"\r\n")
        await writer.drain()

    try:
        await reply(b"220 sink ESMTP ready")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                ext = [b"250-sink", b"250-PIPELINING", b"250-8BITMIME", b"250-SMTPUTF8", b"250-SIZE 52428800"]
                ext.append(b"250 AUTH PLAIN LOGIN" if tls_on else b"250 STARTTLS")
                writer.write(b"\r\n".join(ext) + b"\r\n")
                await writer.drain()
            elif verb == b"STAR":
                await reply(b"220 go ahead")
                await writer.start_tls(tls)
                tls_on = True
            elif verb == b"AUTH":
                parts = line.split()
                if len(parts) >= 2 and parts[1].upper() == b"LOGIN":
                    if len(parts) == 2:
                        await reply(b"334 VXNlcm5hbWU6")
                        await reader.readline()
                    await reply(b"334 UGFzc3dvcmQ6")
                    await reader.readline()
                elif len(parts) == 2:  # AUTH PLAIN with the credentials on the next line
                    await reply(b"334 ")
                    await reader.readline()
                await reply(b"235 2.7.0 Authentication successful")
            elif verb == b"RCPT" and greylist(line):
                await reply(b"451 4.7.1 Greylisted, try again later")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                recipients = recipients + 1 if verb == b"RCPT" else 0
                await reply(b"250 OK")
            elif verb == b"DATA" and not recipients:  # as real servers do (RFC 2920): no valid RCPT, no DATA
                await reply(b"554 5.5.1 No valid recipients")
            elif verb == b"DATA":
                recipients = 0
                await reply(b"354 End data with <CR><LF>.<CR><LF>")
                await reader.readuntil(b"\r\n.\r\n")
                low, high = OPTIONS.data_delay
                if high:
                    await asyncio.sleep(random.uniform(low, high))
                accepted.append(time.time())
                await reply(b"250 2.0.0 Queued")
            elif verb == b"XCNT":  # the bench's own question: how many messages so far
                await reply(b"250 %d" % len(accepted))
            elif verb == b"XSPN":  # XSPN <index>: count, first and last acceptance time from that message on
                since = accepted[int(line.split()[1]):]
                await reply(b"250 %d %.6f %.6f" % (len(since), since[0] if since else 0, since[-1] if since else 0))
            elif verb == b"QUIT":
                await reply(b"221 Bye")
                return
            else:
                await reply(b"502 Command not implemented")
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--times", required=True)
    parser.add_argument("--rtt", type=float, default=0.0, help="seconds of round trip added to each awaited reply")
    parser.add_argument("--data-delay", default="0,0", help="MIN,MAX seconds before answering the final dot")
    parser.add_argument("--greylist", type=int, default=0, help="451 once for every Nth benchmark address")
    args = parser.parse_args()
    OPTIONS.rtt, OPTIONS.greylist = args.rtt, args.greylist
    OPTIONS.data_delay = tuple(float(x) for x in args.data_delay.split(","))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    server = await asyncio.start_server(lambda r, w: handle(r, w, tls), "127.0.0.1", args.port,
                                        limit=64 * 1024 * 1024)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    async with server:
        await stop.wait()
    with open(args.times, "w") as fh:
        json.dump({"accepted": accepted, "connections": connections}, fh)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
