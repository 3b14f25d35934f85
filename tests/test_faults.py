"""The fault harness: 500 recipients, a faulty SMTP server in its own process, and the sending process killed
with SIGKILL at 10 random moments, run again each time until it is done.

The server (tests/smtp_server.py in spool mode, so killing the sender never touches it) answers 451 once to
some recipients, drops the connection at DATA once for others and after every 37 messages on a connection,
and rejects a few recipients with 550. At the end:

- every deliverable recipient received exactly one message (counted per address in the server's spool),
- the rejected ones are reported failed with the server's reply (`newsletter status --json` and the text),
- the ones whose send was cut off mid-transaction are reported uncertain, and each arrived at most once,
- and at no moment did anyone receive a second message.

The seed is printed (run with -s to see it) and named in every failure; NEWSLETTER_FAULT_SEED=<n> repeats a run.
"""

from __future__ import annotations

import email.parser
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from newsletter_cli.members.journal import JOURNAL_FILE, Journal

import helpers
from helpers import COMMAND
from smtp_server import read_spool

pytestmark = pytest.mark.slow

SERVER = Path(__file__).parent / "smtp_server.py"
RECIPIENTS = 500
KILLS = 10
WAIT = 120.0  # seconds a broken run may take before the test gives up (never an assertion about speed)


def clean_env(**extra: str) -> dict[str, str]:
    return helpers.clean_env(NEWSLETTER_RETRY_DELAYS="0,0", **extra)


def newsletter(project: Path, *args: str, connections: int = 1) -> subprocess.Popen[str]:
    return helpers.newsletter(project, *args, env=clean_env(SEND_CONNECTIONS=str(connections)))


def spooled(spool: Path) -> int:
    return sum(1 for entry in os.scandir(spool) if entry.name.endswith(".json"))


def counts(spool: Path) -> Counter[str]:
    return Counter(to.lower() for message in read_spool(spool) for to in message.rcpt_tos)


def journal(project: Path) -> dict[str, str]:
    path = project / "editions" / "2025-09" / JOURNAL_FILE
    if not path.exists():
        return {}
    with Journal.open_read_only(path) as journal:  # the journal's own API, read-only as the mailbox reads it
        return journal.states()


@pytest.fixture
def server(project: Path):
    """The faulty server in its own process; yields (port, spool, rejected addresses)."""
    rng = random.Random(SEED)
    emails = [f"lid{i:03d}@example.org" for i in range(RECIPIENTS)]
    rejected = sorted(rng.sample(emails, 5))
    others = [e for e in emails if e not in rejected]
    deferred = rng.sample(others, 25)
    dropped = rng.sample(others, 15)
    spool = project / "spool"
    process = subprocess.Popen([sys.executable, str(SERVER), "--spool", str(spool), "--reject", ",".join(rejected),
                                "--defer-once", ",".join(deferred), "--drop-once", ",".join(dropped),
                                "--drop-after", "37"], stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        port = int(process.stdout.readline().split()[1])
        yield port, spool, rejected
    finally:
        process.kill()
        process.wait()


SEED = int(os.environ.get("NEWSLETTER_FAULT_SEED") or random.SystemRandom().randrange(1_000_000))


def test_sigkill_at_random_moments_with_a_faulty_server(project: Path, server) -> None:
    port, spool, rejected = server
    rng = random.Random(SEED + 1)
    print(f"\nfault harness seed: {SEED} (NEWSLETTER_FAULT_SEED={SEED} repeats it)")
    about = f"(seed {SEED})"
    names = ["Loïs de Vries", "Chloë van den Berg", "Sjoerd Bakker-Öztürk", "Jan Jansen", "Ümit Yıldız 🌷"]
    (project / "leden.csv").write_text("email;naam\n" + "".join(
        f"lid{i:03d}@example.org;{names[i % len(names)]}\n" for i in range(RECIPIENTS)), encoding="utf-8")
    (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={port}\nSMTP_SECURITY=none\n"
                                  "NEWSLETTER_FROM=VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>\nSEND_RATE=0\n")
    (project / ".env").chmod(0o600)
    send = ("send", "2025-09", "--recipients", "leden.csv", "--yes")

    # Ten moments: when the server has stored this many messages in all, plus up to 30 ms more; two of them
    # instead a random time after the start, while the run builds, reads the journal or connects (or when it
    # has stored its first message, if that comes sooner).
    # Runs alternate between 1 and 3 connections.
    moments: list[int | None] = sorted(rng.sample(range(RECIPIENTS - 40), KILLS - 2))
    for n in sorted(rng.sample(range(KILLS), 2)):
        moments.insert(n, None)
    log: list[str] = []
    for n, threshold in enumerate(moments):
        connections = 3 if n % 2 else 1
        run = newsletter(project, *send, connections=connections)
        if threshold is None:  # during the start, or at the latest when this run's first message is stored
            before, until = spooled(spool), time.monotonic() + rng.uniform(0.05, 1.0)
            while time.monotonic() < until and spooled(spool) == before and run.poll() is None:
                time.sleep(0.002)
        else:
            deadline = time.monotonic() + WAIT
            while spooled(spool) < threshold and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.03))
        alive = run.poll() is None
        run.send_signal(signal.SIGKILL)
        output = run.communicate()[0]
        assert alive, f"run {n} ended before it could be killed {about}:\n{output}"
        states = journal(project)
        received = counts(spool)
        moment = "early" if threshold is None else f"moment {threshold}"
        log.append(f"run {n}: {connections} connection(s), killed at {spooled(spool)} stored ({moment}), "
                   f"journal: {dict(Counter(states.values()))}")
        assert max(received.values(), default=0) <= 1, f"a second message after run {n} {about}"
        for address, state in states.items():  # what the journal calls sent did arrive
            assert state != "sent" or received[address] == 1, (address, state, about)

    for n in range(KILLS, KILLS + 10):  # the same command again until nothing is left to send
        run = newsletter(project, *send, connections=3 if n % 2 else 1)
        output = run.communicate(timeout=WAIT)[0]
        states = Counter(journal(project).values())
        log.append(f"run {n}: to the end, exit status {run.returncode}, journal: {dict(states)}")
        assert "Traceback" not in output, output
        if not (states["pending"] or states["deferred"] or states["sending"]):
            break
    print("\n".join(log))

    status = subprocess.run([*COMMAND, "status", "2025-09", "--json"], cwd=project, env=clean_env(),
                            capture_output=True, text=True, check=True)
    report = json.loads(status.stdout)
    problems = {p["email"]: p for p in report["problems"]}
    failed = sorted(a for a, p in problems.items() if p["state"] == "failed")
    uncertain = sorted(a for a, p in problems.items() if p["state"] == "uncertain")
    received = counts(spool)
    print(f"sent {report['counts']['sent']}, failed {len(failed)}, uncertain {len(uncertain)} "
          f"(of which arrived: {sum(received[a] for a in uncertain)}): {uncertain}")

    c = report["counts"]
    assert (c["pending"], c["deferred"], c["sending"]) == (0, 0, 0), (c, about)
    assert c["sent"] + c["failed"] + c["uncertain"] == RECIPIENTS, (c, about)
    assert failed == rejected, about
    for address in rejected:
        assert problems[address]["reply"].startswith("550 5.1.1"), (problems[address], about)
        assert received[address] == 0, about
    for address in uncertain:
        assert received[address] <= 1, (address, about)
        assert "may or may not" in problems[address]["reply"], about
    for i in range(RECIPIENTS):
        address = f"lid{i:03d}@example.org"
        if address not in rejected and address not in uncertain:
            assert received[address] == 1, (address, received[address], about)
    assert set(received) <= {f"lid{i:03d}@example.org" for i in range(RECIPIENTS)}

    parser = email.parser.BytesHeaderParser()
    for message in read_spool(spool):  # each message went to the one address in its To: header
        (to,) = message.rcpt_tos
        assert parser.parsebytes(message.data)["To"].endswith(f"<{to}>"), about

    text = subprocess.run([*COMMAND, "status", "2025-09"], cwd=project, env=clean_env(), capture_output=True,
                          text=True, check=True).stdout
    for address in rejected:
        assert f"failed    {address}: 550 5.1.1" in text, (text, about)
    for address in uncertain:
        assert f"uncertain {address}: " in text, (text, about)
    if uncertain:
        assert "--resend-uncertain" in text
