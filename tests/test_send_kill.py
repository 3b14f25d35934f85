"""SIGKILL during a send, then the same command again: no duplicates, no loss, the unknown one reported."""

from __future__ import annotations

import email
import time

import pytest

from newsletter_cli.members.journal import Journal

from helpers import newsletter
from smtp_server import SmtpServer


@pytest.mark.slow  # a real send killed and resumed
def test_sigkill_mid_transaction_then_resume(project):
    emails = [f"lid{i:02d}@example.org" for i in range(12)]
    (project / "leden.csv").write_text("email\n" + "\n".join(emails) + "\n")
    with SmtpServer(stall_after=5) as server:  # stores the 6th message and never answers it
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                      "NEWSLETTER_FROM=nb@vzhg.nl\nSEND_RATE=0\n")
        (project / ".env").chmod(0o600)
        first = newsletter(project, "send", "2025-09", "--recipients", "leden.csv", "--yes")
        deadline = time.monotonic() + 60
        while not server.handler.stalled and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert server.handler.stalled, first.communicate()[0]
        first.kill()  # SIGKILL: no cleanup, no finally blocks
        first.wait()
        with Journal(project / "editions" / "2025-09" / "journal.sqlite") as journal:
            counts = journal.counts()
        assert (counts["sent"], counts["sending"], counts["pending"]) == (5, 1, 6)
        killed = newsletter(project, "status", "2025-09").communicate(timeout=60)[0]
        assert f"uncertain {emails[5]}: the send stopped (or is still running) while this message was going out" \
            in killed, killed  # a reason, not an empty one

        second = newsletter(project, "send", "2025-09", "--recipients", "leden.csv", "--yes")
        output = second.communicate(timeout=120)[0]
        assert second.returncode == 0, output
        assert "1 uncertain" in output and "Send: 6 sent" in output
        stalled = emails[5]
        assert [server.count_for(a) for a in emails] == [1] * 12  # the uncertain one did arrive, once

        status = newsletter(project, "status", "2025-09")
        text = status.communicate(timeout=60)[0]
        assert "11 sent, 1 uncertain" in text and f"uncertain {stalled}" in text and "--resend-uncertain" in text

        third = newsletter(project, "send", "2025-09", "--recipients", "leden.csv", "--yes", "--resend-uncertain")
        output = third.communicate(timeout=120)[0]
        assert third.returncode == 0 and "Send: 1 sent" in output, output
        assert server.count_for(stalled) == 2  # asked for explicitly
        copies = [email.message_from_bytes(r.data)["Message-ID"] for r in server.received if r.rcpt_tos == [stalled]]
        assert copies[0] == copies[1]  # the same message again: mail programs fold the two copies
