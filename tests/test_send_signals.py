"""Real signals to a real `newsletter send` process while the server takes 2 s to answer each message.

SIGINT, SIGTERM and SIGHUP only stop the send: the message in progress is finished and recorded, so nobody is
left uncertain and nobody gets a second copy. Ctrl+C twice aborts at once and names who is now uncertain.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_send_kill import newsletter

from smtp_server import SmtpServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals sent from the test")
EMAILS = [f"lid{i:02d}@example.org" for i in range(6)]


def states(project: Path) -> dict[str, str]:
    path = project / "editions" / "2025-09" / "journal.sqlite"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT key, state FROM recipients"))
    except sqlite3.Error:
        return {}


def start_send(project: Path, server: SmtpServer, extra: str = "") -> subprocess.Popen:
    (project / "leden.csv").write_text("email\n" + "\n".join(EMAILS) + "\n")
    (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                  "NEWSLETTER_FROM=nb@vzhg.nl\nSEND_RATE=0\n" + extra)
    (project / ".env").chmod(0o600)
    process = newsletter(project, "send", "2025-09", "--recipients", "leden.csv", "--yes", "--ignore-check-errors")
    deadline = time.monotonic() + 60
    while "sending" not in states(project).values():  # a message is on its way, its reply 2 s off
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.02)
    return process


def stored(server: SmtpServer) -> list[str]:
    return [to.lower() for r in server.received for to in r.rcpt_tos]


SIGNALS = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.slow  # ~15 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_signal_finishes_the_message_in_progress(project, signum):
    with SmtpServer(reply_delay=2.0) as server:
        process = start_send(project, server)
        process.send_signal(signum)
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 1, output
        assert "STOPPED: interrupted" in output and "Traceback" not in output
        journal = states(project)
        assert "uncertain" not in journal.values() and "sending" not in journal.values(), journal
        got = stored(server)
        assert len(got) == len(set(got)) >= 1
        assert sorted(got) == sorted(k for k, v in journal.items() if v == "sent")  # 0 duplicates, 0 lost
        again = newsletter(project, "send", "2025-09", "--recipients", "leden.csv", "--yes", "--ignore-check-errors")
        assert again.wait(timeout=120) == 0
        assert sorted(stored(server)) == sorted(EMAILS)


@pytest.mark.slow  # ~4 s on 2 busy cores (issue 22: make test-fast skips it)
def test_ctrl_c_twice_aborts_and_names_the_uncertain(project):
    with SmtpServer(reply_delay=2.0) as server:
        process = start_send(project, server)
        in_flight = next(k for k, v in states(project).items() if v == "sending")
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
        assert process.returncode == 1, output
        assert "aborted" in output and in_flight in output and "Traceback" not in output
        assert states(project)[in_flight] == "uncertain"
        time.sleep(2.5)  # the server answers the abandoned message in the end
        got = stored(server)
        assert len(got) == len(set(got))


@pytest.mark.slow  # waits 5.5 s between the two Ctrl+C, past the window the old code had
def test_a_second_ctrl_c_aborts_however_long_after_the_first_against_a_stalled_server(project):
    """The server stores the first message and never answers (its data timeout is the default 10 minutes):
    the first Ctrl+C waits for it, the second one, 5.5 s later, ends the send at once."""
    with SmtpServer(stall_after=0) as server:
        process = start_send(project, server)
        in_flight = next(k for k, v in states(project).items() if v == "sending")
        process.send_signal(signal.SIGINT)
        time.sleep(5.5)
        assert process.poll() is None  # still waiting for the stalled server
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        output = process.communicate(timeout=30)[0]
        assert time.monotonic() - started < 10, output
        assert process.returncode == 1, output
        assert "press Ctrl+C again to stop at once" in output
        assert "aborted (Ctrl+C twice)" in output and in_flight in output and "Traceback" not in output
        assert "finished and recorded" not in output
        assert states(project)[in_flight] == "uncertain"


@pytest.mark.slow  # ~4 s on 2 busy cores (issue 22: make test-fast skips it)
def test_the_closing_line_after_a_stop_says_a_message_that_timed_out_is_uncertain(project):
    """SIGTERM while the server stalls on a message, with a 2 s data timeout: that message is uncertain, and
    the closing line says so instead of "the messages in progress were finished"."""
    with SmtpServer(stall_after=0) as server:
        process = start_send(project, server, "SMTP_DATA_TIMEOUT=2\n")
        in_flight = next(k for k, v in states(project).items() if v == "sending")
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
        assert process.returncode == 1, output
        assert "finished and recorded" not in output and "Traceback" not in output
        assert f"1 message(s) in progress got no answer from the server and are uncertain: {in_flight}" in output
        assert states(project)[in_flight] == "uncertain"
        assert list(states(project).values()).count("pending") == len(EMAILS) - 1
