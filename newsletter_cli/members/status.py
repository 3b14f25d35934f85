"""What `newsletter status EDITION` reports from the journal: counts, the members that need attention and the
test sends, as dataclasses (`to_json()` for --json) and as text (`status_lines`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.members.journal import JOURNAL_FILE, STATES, Journal
from newsletter_cli.members.testsends import TestSend, tested_builds

# The reason `status` gives for a row without a server reply: a send stopped at once (killed, the computer
# switched off) during the message's SMTP transaction leaves it `sending`, and the next send makes it uncertain.
NO_REPLY = {"sending": "the send stopped (or is still running) while this message was going out; the server may "
                       "or may not have accepted it",
            "uncertain": "the server's reply to this message was lost; it may or may not have arrived"}
ATTENTION = ("failed", "deferred", "uncertain", "sending")  # the states whose members `status` lists


@dataclass(frozen=True)
class Problem:
    """A member not (surely) sent: failed, deferred or uncertain, with the reason."""

    email: str
    state: str
    reply: str
    attempts: int
    updated: str

    def to_json(self) -> dict[str, object]:
        return {"email": self.email, "state": self.state, "reply": self.reply, "attempts": self.attempts,
                "updated": self.updated}


@dataclass
class EditionStatus:
    """An edition's send as its journal records it; `total` and `fingerprint` are None without a journal."""

    edition: str
    journal: Path
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    problems: list[Problem] = field(default_factory=list)
    test_sends: dict[str, TestSend] = field(default_factory=dict)
    total: int | None = None
    fingerprint: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the edition has a journal (anything was ever loaded to send)."""
        return self.total is not None

    def to_json(self) -> dict[str, object]:
        """The form `newsletter status --json` prints (scripts read it: its keys do not change)."""
        data: dict[str, object] = {
            "edition": self.edition, "journal": str(self.journal), "counts": dict(self.counts),
            "problems": [problem.to_json() for problem in self.problems],
            "test_sends": {fp: sent.to_json() for fp, sent in self.test_sends.items()}}
        if self.exists:
            data["total"] = self.total
            data["fingerprint"] = self.fingerprint
        return data


def status(folder: Path) -> EditionStatus:
    """Counts and the addresses that need attention, for `newsletter status` (and --json)."""
    path = folder / JOURNAL_FILE
    report = EditionStatus(folder.name, path, test_sends=tested_builds(folder))
    if not path.is_file():
        return report
    with Journal(path) as journal:
        journal.claim(folder)
        report.counts = journal.counts()
        report.total = sum(report.counts.values())
        report.fingerprint = journal.meta("fingerprint")
        report.problems = [
            Problem(e.email, "uncertain" if e.state == "sending" else e.state,
                    e.reply or NO_REPLY.get(e.state, "no reason was recorded"), e.attempts, e.updated)
            for e in journal.entries(ATTENTION)]
    return report


def status_lines(report: EditionStatus) -> list[str]:
    counts = report.counts
    tests = [f"Test send of build {fp} at {t.time} to {', '.join(t.to)}" for fp, t in report.test_sends.items()]
    if not any(counts.values()):
        return [f"Edition {report.edition}: nothing has been sent yet (no journal at {report.journal}).", *tests]
    lines = [f"Edition {report.edition}: " + ", ".join(f"{counts[s]:,} {s}" for s in STATES if counts[s]), *tests]
    if counts.get("sending"):
        lines.append("  (a send is running now, or stopped during a transaction: those are uncertain)")
    for problem in report.problems:
        lines.append(f"  {problem.state:<9} {problem.email}: {problem.reply} ({problem.updated})")
    if counts["pending"] or counts["deferred"]:
        lines.append("Pending and deferred: run the same send command again (later, for deferred ones).")
    if counts["failed"]:
        lines.append("Failed: the server refused them; fix the cause, then run the same send command with "
                     "--retry-failed.")
    if counts["uncertain"] or counts["sending"]:
        lines.append("Uncertain: the message went out but the reply was lost, so they may have it; ask them, or add "
                     "--resend-uncertain to send them again (they may get it twice).")
    return lines
