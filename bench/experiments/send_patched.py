"""Experiment, not the product: `newsletter` with the sender fixes that docs/performance.md proposes applied
as patches at start-up, to measure what they would give (the sender's files are not this bench's to change).

    python bench/experiments/send_patched.py send 2025-09 --recipients FILE --yes

Patches, each applied only where the code still has the shape it was written against:
- TCP_NODELAY on every SMTP socket (if mailer.py does not set it itself);
- dot-stuffing without a regular expression: a message has no line starting with "." in the common case,
  which one `in` scan finds; otherwise bytes.replace (the same result as smtplib's `(?m)^\\.` substitution);
- the build fingerprint computed once per send instead of once per message.
Prints which patches it applied on stderr.
"""

import functools
import inspect
import smtplib
import socket
import sys

from newsletter_cli import mailer, send

applied = []
if "TCP_NODELAY" not in inspect.getsource(mailer):
    _get_socket = smtplib.SMTP._get_socket

    def _nodelay_socket(self, host, port, timeout):
        sock = _get_socket(self, host, port, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # SMTP_SSL's wrapped socket keeps it
        return sock

    smtplib.SMTP._get_socket = _nodelay_socket
    applied.append("TCP_NODELAY")

if callable(getattr(mailer, "_dot_stuffed", None)):
    def _dot_stuffed(data: bytes) -> bytes:
        if data.startswith(b".") or b"\n." in data:
            data = (b"." + data if data.startswith(b".") else data).replace(b"\n.", b"\n..")
        return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")

    mailer._dot_stuffed = _dot_stuffed
    applied.append("dot-stuffing without a regex")

prop = getattr(send, "Plan", None) and send.Plan.__dict__.get("fingerprint")
if isinstance(prop, property):
    cached = functools.cached_property(prop.fget)
    cached.__set_name__(send.Plan, "fingerprint")
    send.Plan.fingerprint = cached
    applied.append("fingerprint once")

print("experiment patches: " + (", ".join(applied) or "none"), file=sys.stderr)

from newsletter_cli.cli import main  # noqa: E402

sys.argv[0] = "newsletter"
main()
