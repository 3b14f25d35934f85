"""The journal (states survive a crash; `sending` becomes `uncertain`) and the sliding-window rate limiter."""

from __future__ import annotations

import threading

import pytest

from newsletter_cli.deliver.ratelimit import RateLimiter
from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.journal import Journal
from newsletter_cli.members.sendlock import exclusive
from newsletter_cli.members.status import status, status_lines

from helpers import FakeClock


def test_states_persist_and_sending_becomes_uncertain(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        journal.add(["A@example.org", "b@example.org", "c@example.org"])
        journal.mark_sending("a@example.org", "fp1", "<1@x>")
        journal.mark("a@example.org", "sent", "250 OK")
        journal.mark_sending("b@example.org", "fp1", "<2@x>")  # ... and the process dies here
    with Journal(path) as journal:
        assert journal.recover() == ["b@example.org"]
        journal.add(["a@example.org", "d@example.org"])  # known ones keep their state
        assert journal.states() == {"a@example.org": "sent", "b@example.org": "uncertain",
                                    "c@example.org": "pending", "d@example.org": "pending"}
        assert journal.counts()["sent"] == 1
        (entry,) = journal.entries(["uncertain"])
        assert entry.email == "b@example.org" and "may or may not" in entry.reply and entry.attempts == 1
    assert path.stat().st_size > 0
    with Journal(path) as journal:
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_member_keeps_one_message_id_per_edition(tmp_path):
    """Given when the list is loaded, kept through reloads, retries and re-sends: never a second one."""
    from itertools import count

    from newsletter_cli.members.recipients import Recipient

    numbers = count(1)
    new_id = lambda: f"<id{next(numbers)}@vzhg.nl>"  # noqa: E731
    with Journal(tmp_path / "journal.sqlite") as journal:
        with journal.loading(new_id) as add:
            add(Recipient("a@example.org"))
            add(Recipient("b@example.org"))
        assert journal.message_id("A@example.org") == "<id1@vzhg.nl>" and journal.message_id("b@example.org") == "<id2@vzhg.nl>"
        journal.mark_sending("a@example.org", "fp", "<id1@vzhg.nl>")
        journal.mark("a@example.org", "failed", "550")
        with journal.loading(new_id) as add:  # the next run (--retry-failed), with a member added
            add(Recipient("c@example.org"))
            add(Recipient("b@example.org"))
            add(Recipient("a@example.org"))
        assert [journal.message_id(a) for a in ("a@example.org", "b@example.org", "c@example.org")] == \
            ["<id1@vzhg.nl>", "<id2@vzhg.nl>", "<id3@vzhg.nl>"]
        assert journal.message_id("nobody@example.org") == ""


def test_status_report(tmp_path):
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.add(["a@example.org", "b@example.org", "c@example.org"])
        journal.mark("a@example.org", "sent", "250 OK")
        journal.mark("b@example.org", "failed", "550 5.1.1 User unknown")
        journal.mark("c@example.org", "deferred", "451 4.3.0 Try later")
    report = status(tmp_path)
    assert report.counts["sent"] == 1 and report.counts["failed"] == 1
    text = "\n".join(status_lines(report))
    assert "b@example.org: 550 5.1.1 User unknown" in text and "c@example.org: 451" in text
    assert "run the same send command again" in text.lower()
    assert "nothing has been sent" in "\n".join(status_lines(status(tmp_path / "other")))


def test_only_one_send_at_a_time(tmp_path):
    with exclusive(tmp_path):
        result: list[str] = []

        def other() -> None:
            try:
                with exclusive(tmp_path):
                    result.append("got it")
            except NewsletterError as exc:
                result.append(exc.message)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert "Another send of this edition is running" in result[0]
    with exclusive(tmp_path):
        pass


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


@pytest.mark.parametrize("rate", [1, 3, 30])
def test_never_more_than_rate_in_any_window(rate):
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    times = []
    for n in range(rate * 4 + 1):
        assert limiter.acquire()
        times.append(clock.now)
        clock.now += 0.25 if n % 7 else 5  # uneven sending times
    assert max_in_window(times, 60.0) <= rate
    assert max_in_window(times, 60.0 / rate) == 1  # spread evenly, never two at once
    assert times[-1] - times[0] < 60 * 4 + 5 * (rate * 4 // 7 + 1) + 1  # and no slower than the pace and the pauses


def test_sends_are_spread_evenly_not_burst():
    clock = FakeClock()
    start = clock.now
    limiter = RateLimiter(2, window=60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 10
    assert limiter.wait_time() == 20  # one send per 30 s, not two at once and then a minute's pause
    limiter.acquire()
    assert clock.now == start + 30
    assert limiter.wait_time() == 30
    assert limiter.seconds_for(10) == 9 * 30


def test_600_a_minute_is_60_in_any_6_seconds():
    """The benchmark's scaled check, on a fake clock: a 20 s run at SEND_RATE=600."""
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock, sleep=clock.sleep)
    times = []
    while clock.now < 1000 + 20:
        assert limiter.acquire()
        times.append(clock.now)
        clock.now += 0.001  # sending itself takes a millisecond
    assert 57 <= max_in_window(times, 6.0) <= 60
    assert max_in_window(times, 60.0) <= 600


def test_zero_rate_means_no_limit_and_stop_interrupts():
    clock = FakeClock()
    assert all(RateLimiter(0, clock=clock, sleep=clock.sleep).acquire() for _ in range(1000))
    assert clock.sleeps == []
    stop = threading.Event()
    limiter = RateLimiter(1, clock=clock, sleep=lambda s: (stop.set(), clock.sleep(s)))
    assert limiter.acquire(stop)
    assert not limiter.acquire(stop)


def test_the_read_only_journal_gives_the_messages_that_may_have_gone_out(tmp_path):
    """What the mailbox reads (Message-IDs of members sent, uncertain or mid-transaction), without changing the
    journal or making one where there is none, while a send holds it open."""
    from newsletter_cli.members.journal import JOURNAL_FILE, SentMessage

    folder = tmp_path / "2025-09"
    path = folder / JOURNAL_FILE
    with Journal(path) as journal:
        journal.add(["Sent@example.org", "failed@example.org", "pending@example.org", "lost@example.org"])
        for address, state in (("Sent@example.org", "sent"), ("failed@example.org", "failed"),
                               ("lost@example.org", "sending")):
            journal.mark_sending(address, "fp", f"<{address.lower()}@vzhg.nl>")
            if state != "sending":
                journal.mark(address, state, "250 OK" if state == "sent" else "550 no")
        with Journal.open_read_only(path) as reader:  # while the writer is open, as during a send
            found = sorted(reader.sent_messages(), key=lambda m: m.address)
    before = path.read_bytes()
    assert found == [SentMessage("2025-09", "Sent@example.org", "<sent@example.org@vzhg.nl>"),
                     SentMessage("2025-09", "lost@example.org", "<lost@example.org@vzhg.nl>")]
    assert found[0].key == "sent@example.org"
    with Journal.open_read_only(path) as reader, pytest.raises(NewsletterError, match="cannot write the send journal"):
        reader.mark("sent@example.org", "pending")  # read-only: a write is refused, never done
    assert path.read_bytes() == before
    with pytest.raises(NewsletterError, match="cannot read the send journal"):
        Journal.open_read_only(tmp_path / "none" / JOURNAL_FILE)
    assert not (tmp_path / "none").exists()


def test_status_json_keeps_its_keys_and_old_mailbox_dates_still_read(tmp_path):
    """`newsletter status --json` is read by scripts: the dataclasses write the keys the dicts had. A row of
    mailbox.sqlite from before the one time format keeps its date as written."""
    import re

    from newsletter_cli.mailbox.record import RECORD_FILE, Record, status_report
    from newsletter_cli.members.testsends import remember_tested_build
    from newsletter_cli.project import Project

    folder = tmp_path / "editions" / "2025-09"
    folder.mkdir(parents=True)
    assert list(status(folder).to_json()) == ["edition", "journal", "counts", "problems", "test_sends"]
    remember_tested_build(folder, "fp1", ["lezer@vzhg.nl"])
    with Journal(folder / "journal.sqlite") as journal:
        journal.add(["a@example.org", "b@example.org"])
        journal.mark("b@example.org", "failed", "550 no")
        journal.set_meta("fingerprint", "fp1")
    data = status(folder).to_json()
    assert list(data) == ["edition", "journal", "counts", "problems", "test_sends", "total", "fingerprint"]
    assert (data["total"], data["fingerprint"], data["counts"]["pending"]) == (2, "fp1", 1)
    (problem,) = data["problems"]
    assert list(problem) == ["email", "state", "reply", "attempts", "updated"] and problem["reply"] == "550 no"
    assert list(data["test_sends"]["fp1"]) == ["time", "to"] and data["test_sends"]["fp1"]["to"] == ["lezer@vzhg.nl"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["test_sends"]["fp1"]["time"])  # the one format

    project = Project(tmp_path)
    assert status_report("2025-09", project).to_json() == {"read": False}
    with Record(tmp_path / RECORD_FILE) as record:
        record.add("2025-09", "weg@example.org", "permanent", "5.1.1")
        with record.db:  # a row written by an older version, in its own time format
            record.db.execute("INSERT INTO events VALUES ('2025-09', 'af@example.org', 'af@example.org', "
                              "'unsubscribed', '', '2025-09-30 08:15')")
    mailbox = status_report("2025-09", project).to_json()
    assert list(mailbox) == ["read", "bounced", "refused", "complaints", "unsubscribed"]
    (bounce,) = mailbox["bounced"]
    assert list(bounce) == ["email", "kind", "detail", "date"] and re.fullmatch(r"\S+T\S+Z", bounce["date"])
    assert mailbox["unsubscribed"] == [{"email": "af@example.org", "date": "2025-09-30 08:15"}]
