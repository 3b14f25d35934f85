"""Experiment, not the product: `newsletter` with TCP_NODELAY set on every SMTP socket, to measure what
that one change would give the sender (newsletter_cli/mailer.py, not this bench's to change).

    python bench/experiments/send_nodelay.py send 2025-09 --recipients FILE --yes
"""

import smtplib
import socket
import sys

_get_socket = smtplib.SMTP._get_socket


def _nodelay_socket(self, host, port, timeout):
    sock = _get_socket(self, host, port, timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # SMTP_SSL's wrapped socket keeps it
    return sock


smtplib.SMTP._get_socket = _nodelay_socket

from newsletter_cli.cli import main  # noqa: E402

sys.argv[0] = "newsletter"
main()
