"""A minimal SMTP sink for the send benchmarks, run in its own process: it speaks just enough ESMTP
(EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and XCNT, which answers
the number of messages accepted so far, and XSPN N: how many from message N on, and when the first and
the last of them were accepted), discards every message without
parsing it, and records when each message was accepted.

    python bench/smtp_sink.py --cert CERT.pem --key KEY.pem --times OUT.json [--port 0]

Prints `READY <port>` on stdout once listening; on SIGTERM or SIGINT writes the acceptance times
(time.time() floats, one per message) to --times and exits. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
import time

accepted: list[float] = []
connections = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: ssl.SSLContext) -> None:
    global connections
    connections += 1
    tls_on = False

    async def reply(line: bytes) -> None:
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
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                await reply(b"250 OK")
            elif verb == b"DATA":
                await reply(b"354 End data with <CR><LF>.<CR><LF>")
                await reader.readuntil(b"\r\n.\r\n")
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
    args = parser.parse_args()
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
