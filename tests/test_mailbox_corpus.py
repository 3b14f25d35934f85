"""The real-world bounce corpus (../shared/bounce-corpus: 465 messages with Sisimai's verdicts) bound to a real
send and read from the real Dovecot by `newsletter mailbox`, twice.

Each sample's failed recipient becomes a member; a recipient that several samples share gets one edition
per sample (round r sends edition r to the r-th sample of each recipient), so that every sample is bound to
exactly one message the tool sent: its original Message-ID is replaced by that message's (what a real bounce
of it would carry, as the corpus README allows), and nothing else in the sample changes. What `newsletter
mailbox` recorded per (edition, member) in mailbox.sqlite is then that sample's outcome.
"""

from __future__ import annotations

import csv
import email
import io
import json
import shutil
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from bounce_corpus import CORPUS, figures, hard_target, may_be_dead, sisimai_class, spelled
from click.testing import CliRunner
from test_mailbox import write_env
from test_send import settings_for

from newsletter_cli.cli import cli
from newsletter_cli.deliver.request import MemberList, SendRequest, Tuning
from newsletter_cli.deliver.send import run_send
from newsletter_cli.mailbox import classify
from newsletter_cli.mailbox.classify import Verdict
from newsletter_cli.mailbox.proof import names
from newsletter_cli.members import suppressions
from newsletter_cli.members.journal import Journal
from newsletter_cli.members.recipients import normal_address
from newsletter_cli.project import Project

from helpers import assert_no_traceback
from imap_server import ImapServer, available
from smtp_server import SmtpServer

pytestmark = [pytest.mark.skipif(not available(), reason="Dovecot is not installed (make system-packages)"),
              pytest.mark.skipif(not (CORPUS / "expected.json").is_file(), reason="no bounce corpus here"),
              pytest.mark.slow]


def sample_class(verdict: dict[str, object] | None) -> str:
    """Sisimai's class (tests/bounce_corpus.py), with a feedback report a complaint and no action 'none'."""
    klass = sisimai_class(verdict)
    return {"feedback": "complaint", "vacation": "none", "delivered": "none"}.get(klass, klass)


def offline_dead(raw: bytes, recipient: str) -> bool:
    """What tests/test_classify_corpus.py decides for this recipient, from the sample as it is."""
    report = classify.read_report(email.message_from_bytes(raw), raw)
    failures = {f.address.lower(): f for f in report.failures} if report else {}
    failure = failures.get(recipient.lower()) or next((f for f in failures.values() if names(f, recipient)), None)
    return failure is not None and failure.verdict is Verdict.DEAD


def load_samples() -> list[dict[str, object]]:
    """Each sample: name, raw bytes, its class, the failed recipient (or ''), the original Message-ID (or '')."""
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["samples"]
    out = []
    for name, entry in sorted(expected.items()):
        verdicts = entry["sisimai"]
        first = verdicts[0] if verdicts else None
        raw = (CORPUS / "samples" / entry["file"]).read_bytes()
        recipient = spelled(raw, str(first["recipient"]).strip()) if first else ""
        out.append({"name": name, "raw": raw, "class": sample_class(first), "reason": first["reason"] if first else "",
                    "recipient": recipient,
                    "message_id": str(first["messageid"]).strip() if first else "",
                    "offline_dead": bool(recipient) and offline_dead(raw, recipient)})
    return out


def write_members(folder: Path, emails: list[str], name: str) -> Path:
    """A member list as Excel writes it (quoted where an address holds a quote or a ;)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["email", "name"])
    writer.writerows([e, ""] for e in emails)
    (folder / name).write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return folder / name


def edition_id(round_: int) -> str:
    return f"{2030 + round_ // 12}-{round_ % 12 + 1:02d}"


def test_the_corpus_bound_to_a_real_send(project, tmp_path, capsys):
    samples = load_samples()
    rounds: dict[int, list[dict[str, object]]] = defaultdict(list)
    seen: Counter[str] = Counter()
    for sample in samples:
        if sample["recipient"]:
            key = str(sample["recipient"]).lower()
            sample["round"] = seen[key]
            seen[key] += 1
            rounds[int(sample["round"])].append(sample)

    with SmtpServer() as smtp:
        settings = settings_for(smtp)
        for round_, members in sorted(rounds.items()):
            edition = edition_id(round_)
            shutil.copytree(project / "editions" / "2025-09", project / "editions" / edition,
                            ignore=shutil.ignore_patterns("journal*", "build", "outbox", "*.json", ".send.lock"))
            listing = write_members(project, [str(m["recipient"]) for m in members], f"ronde-{round_}.csv")
            run_send(SendRequest(edition, MemberList(listing)), Project(project).using(settings),
                     tuning=Tuning(retry_delays=(0,), reconnect_delays=(0,)))
            with Journal(project / "editions" / edition / "journal.sqlite") as journal:
                states = journal.states()
                keys = {normal_address(key): key for key in states}  # the list keeps a Unicode domain
                for sample in members:
                    key = keys.get(normal_address(str(sample["recipient"])), "")
                    sent_id = journal.message_id(key) if states.get(key) == "sent" else ""
                    sample["edition"], sample["sent_id"], sample["key"] = edition, sent_id, key

    bound = 0
    with ImapServer(tmp_path) as imap:
        client = imap.client()
        try:
            for sample in samples:
                raw = bytes(sample["raw"])  # type: ignore[arg-type]
                original, sent_id = str(sample["message_id"]), str(sample.get("sent_id", ""))
                sample["bound"] = bool(original and sent_id and original.encode() in raw)
                if sample["bound"]:
                    raw = raw.replace(original.encode(), sent_id.strip("<>").encode())
                    bound += 1
                kind, data = client.append('"INBOX"', None, None, raw)
                assert kind == "OK", (sample["name"], data)
        finally:
            client.logout()
        write_env(project, imap)
        first = CliRunner().invoke(cli, ["mailbox"])
        assert_no_traceback(first)
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(cli, ["mailbox"])
        assert_no_traceback(second)
        assert second.exit_code == 0, second.output
        assert "For you to read" not in second.output  # no sample listed twice over two runs
        assert "0 unsubscribes, 0 bounces: 0 dead, 0 soft; 0 complaints; 0 refused our sending; 0 messages" \
            in second.output

    db = sqlite3.connect(project / "mailbox.sqlite")
    outcome = {(edition, key): kind for edition, key, kind in db.execute("SELECT edition, key, kind FROM events")}
    listed = db.execute("SELECT COUNT(*) FROM listed").fetchone()[0]
    db.close()
    suppressed = suppressions.read(project / "suppressions.csv")

    table: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[str] = []
    by_member_edition = {(s.get("edition"), normal_address(str(s["recipient"]))): s for s in samples if s["recipient"]}
    for sample in samples:
        got = outcome.get((sample.get("edition"), sample.get("key")), "-") if sample["recipient"] else "-"
        sample["outcome"] = got
        table[f"{sample['class']}{'' if sample['bound'] else ' (no Message-ID to bind)'}"][got] += 1
        if ((got == "permanent" and not (sample["bound"] and may_be_dead(str(sample["name"]), str(sample["class"]))))
                or (got == "complaint" and not (sample["bound"] and sample["class"] == "complaint"))):
            wrong.append(f"{sample['name']} ({sample['class']}, {sample['reason']}): {got}")
    for entry in suppressed.values():  # every suppression comes from a proven dead address or complaint
        source = by_member_edition.get((entry.edition, normal_address(entry.key)))
        streak = entry.detail.startswith("temporary failures on")
        if not streak and (source is None or not (source["class"] == "complaint" or may_be_dead(
                str(source["name"]), str(source["class"])))):
            wrong.append(f"suppressed {entry.email} ({entry.edition}): {entry.reason} {entry.detail[:80]}")
    # what the rules decide offline for the same sample is what newsletter mailbox did with it
    differ = [f"{s['name']} ({s['class']}): offline {'dead' if s['offline_dead'] else 'not dead'}, here {s['outcome']}"
              for s in samples if s["bound"] and s["offline_dead"] != (s["outcome"] == "permanent")]

    hard = {str(s["name"]): s["outcome"] == "permanent" for s in samples if s["class"] == "hard" and s["bound"]}
    raw_rate, kept = hard_target(hard)
    with capsys.disabled():
        print(f"\ncorpus: {len(samples)} samples, {bound} bound to a sent Message-ID, {len(rounds)} editions; "
              f"listed for a person: {listed}")
        for name, counts in sorted(table.items()):
            print(f"  {name:<40} {dict(counts.most_common())}")
        print("  " + figures(raw_rate, kept))
        missed = [f"{s['name']} ({s['reason']}): {s['outcome']}" for s in samples
                  if s["class"] == "hard" and s["bound"] and s["outcome"] != "permanent"]
        if missed:
            print("  missed: " + "; ".join(missed))
        unbound = [s["name"] for s in samples if s["class"] == "hard" and s["message_id"] and not s["bound"]]
        print(f"  hard bounces with a Message-ID that could not be bound (not sent: the member list "
              f"refuses the address, e.g. a quoted local part): {', '.join(map(str, unbound)) or 'none'}")
        refused = first.output.split("Refused our sending", 1)[-1].splitlines()[1:]
        print("  refused, as the secretariat sees it:")
        for line in [r for r in refused if r.startswith("  ") and not r.startswith("      ")][:8]:
            print("  " + line)
        print("  " + first.output.strip().splitlines()[-1])
    assert wrong == [], "suppressed for a reason that is not the member's dead address:\n" + "\n".join(wrong)
    assert differ == [], "newsletter mailbox and the rules offline disagree:\n" + "\n".join(differ)
    assert kept[0] >= 0.95 * kept[1], figures(raw_rate, kept)
