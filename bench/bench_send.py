"""Send: throughput to a local SMTP sink (separate process) against mailmerge and a bare smtplib loop,
personalisation cost per message, peak memory of dry runs, and the rate limit as observed by the sink."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_build import make_project
from common import NEWSLETTER, Sample, ratio_sample, time_process
from peers import mailmerge_cli

HERE = Path(__file__).resolve().parent
FROM = "VZHG <nieuwsbrief@vzhg.example>"
USER, PASSWORD = "bench", "bench-password"
FIRST = ["Jan", "Renée", "Müge", "Pieter-Jaap", "Ludy", "Ångström", "Noor", "Sanne", "Daan", "Zoë"]
LAST = ["de Vries", "Öztürk", "van den Berg", "Jansen", "Bakker", "El Amrani", "Smit", "Visser"]


def clean_env(**extra: str) -> dict:
    """The environment minus every setting the sender reads, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "NEWSLETTER_", "SEND_", "LIST_UNSUBSCRIBE", "REVIEW_LIST", "ARCHIVE_BASE_URL"))}
    env.update(extra)
    return env


def write_recipients(path: Path, count: int, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "gemeente"])
        for i in range(count):
            w.writerow([f"lid{i:06d}@gemeente{i % 97}.example", f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                        f"Gemeente {i % 97}"])
    return path


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_pem), append=True)
    cert.private_key_pem.write_to_path(str(key_pem))
    return ca_pem, cert_pem, key_pem


class Sink:
    """The SMTP sink in its own process."""

    def __init__(self, folder: Path, cert: Path, key: Path, name: str = "sink", extra: list[str] = ()):
        self.times_path = folder / f"{name}-times.json"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "smtp_sink.py"), "--cert", str(cert), "--key", str(key),
                                      "--times", str(self.times_path), *extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("the SMTP sink did not start")
        self.port = int(line[1])

    def _ask(self, command: bytes) -> list[bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            f = s.makefile("rwb")
            f.readline()
            f.write(command + b"\r\n")
            f.flush()
            answer = f.readline().split()[1:]
            f.write(b"QUIT\r\n")
            f.flush()
            return answer

    def count(self) -> int:
        return int(self._ask(b"XCNT")[0])

    def span(self, since: int) -> tuple[int, float]:
        """Messages accepted from index `since` on, and the time from the first to the last of them."""
        n, first, last = self._ask(b"XSPN %d" % since)
        return int(n), float(last) - float(first)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return json.loads(self.times_path.read_text())


def send_env(sink: Sink, ca: Path, rate: int = 0, connections: int = 1) -> dict:
    return clean_env(SMTP_HOST="127.0.0.1", SMTP_PORT=str(sink.port), SMTP_SECURITY="starttls",
                     SMTP_USERNAME=USER, SMTP_PASSWORD=PASSWORD, SMTP_CA_FILE=str(ca), NEWSLETTER_FROM=FROM,
                     SEND_RATE=str(rate), SEND_CONNECTIONS=str(connections))


def newsletter_send(tmp: Path, recipients: Path, env: dict, extra: list[str] = (),
                    command: list[str] = (NEWSLETTER,), own_rss: bool = False) -> tuple[float, int]:
    """One whole `newsletter send` process in a fresh project (so a fresh journal)."""
    project = tmp / f"project-{time.monotonic_ns()}"
    make_project(project)
    try:
        return time_process([*command, "send", "2025-09", "--recipients", str(recipients), "--yes", *extra],
                            cwd=project, env=env, own_rss=own_rss)
    finally:
        shutil.rmtree(project, ignore_errors=True)


# --- messages made by the project's own MessageFactory (for the bare loop and the personalisation timing)

def factory_and_recipients(project: Path, recipients_csv: Path, env: dict):
    os.chdir(project)
    from newsletter_cli.compose.build import build
    from newsletter_cli.deliver.message import MessageFactory
    from newsletter_cli.members.recipients import read_recipients
    from newsletter_cli.project import Project
    from newsletter_cli.settings import parse_settings

    here = Project(project)
    result = build(project / "editions" / "2025-09" / "edition.yaml", project / "out", project=here)
    settings = parse_settings({k: v for k, v in env.items() if k.isupper()}, {})
    factory = MessageFactory(result, settings, project=here)
    recipients = read_recipients(recipients_csv, project=here).recipients
    return factory, recipients, result


def write_messages(path: Path, factory, recipients) -> int:
    total = 0
    with path.open("wb") as fh:
        for r in recipients:
            msg = factory.for_recipient(r)
            addr = r.email.encode()
            fh.write(struct.pack(">I", len(addr)) + addr + struct.pack(">I", len(msg)) + msg)
            total += len(msg)
    return total


def personalisation(factory, recipients, result, batches: int = 7) -> dict:
    """Seconds per message: MessageFactory.for_recipient vs building each message afresh with the
    standard library (EmailMessage, set_content + add_alternative, serialized with the SMTP policy)."""
    from email import policy
    from email.message import EmailMessage

    from newsletter_cli.compose.merge import fill  # the project's own substitution, for a fair peer

    html, text, subject = result.rendered.html, result.rendered.text, result.loaded.edition.subject

    def stdlib(r):
        values = {**r.fields, "email": r.email, "name": r.name, "unsubscribe_url": "mailto:x@vzhg.example"}
        m = EmailMessage(policy=policy.SMTP)
        m["From"], m["To"], m["Subject"] = FROM, f"{r.name} <{r.email}>", subject
        m.set_content(fill(text, values, "text"), cte="quoted-printable")
        m.add_alternative(fill(html, values, "html"), subtype="html", cte="quoted-printable")
        return m.as_bytes()

    fast, slow = Sample(), Sample()
    sizes = []
    for b in range(batches):
        t = time.perf_counter()
        for r in recipients:
            sizes.append(len(factory.for_recipient(r)))
        fast.add((time.perf_counter() - t) / len(recipients))
        subset = recipients[: max(20, len(recipients) // 20)]
        t = time.perf_counter()
        for r in subset:
            stdlib(r)
        slow.add((time.perf_counter() - t) / len(subset))
    return {"for_recipient": fast.as_dict(), "stdlib_email_per_message": slow.as_dict(),
            "ratio": ratio_sample(fast, slow).as_dict(), "message_bytes": statistics.median(sizes)}


def mailmerge_files(folder: Path, result, recipients_csv: Path, port: int) -> tuple[Path, Path, Path]:
    """mailmerge's template (the same text and HTML, multipart/alternative), database and server config."""
    def raw(s: str) -> str:
        return "{% raw %}" + s.replace("[[unsubscribe_url]]", "mailto:afmelden@vzhg.example") + "{% endraw %}"

    template = folder / "mailmerge_template.txt"
    template.write_text(
        "TO: {{email}}\nFROM: " + FROM + "\nSUBJECT: " + result.loaded.edition.subject + "\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="nlbench"\n\n--nlbench\nContent-Type: text/plain; charset=utf-8\n\n'
        + raw(result.rendered.text) + '\n--nlbench\nContent-Type: text/html; charset=utf-8\n\n'
        + raw(result.rendered.html) + "\n--nlbench--\n", encoding="utf-8")
    config = folder / "mailmerge_server.conf"
    config.write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = STARTTLS\nusername = {USER}\n"
                      "ratelimit = 0\n")
    return template, recipients_csv, config


def run_mailmerge(files, cwd: Path) -> float:
    template, database, config = files
    # Its own session: no controlling terminal, so getpass() reads the password from stdin.
    started = time.perf_counter()
    proc = subprocess.Popen([str(mailmerge_cli()), "--template", str(template), "--database", str(database),
                             "--config", str(config), "--no-dry-run", "--no-limit", "--output-format", "raw"],
                            cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=clean_env())
    _, err = proc.communicate((PASSWORD + "\n").encode())
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"mailmerge exited {proc.returncode}: {err.decode(errors='replace')[-1500:]}")
    return elapsed


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def run(n: int = 1000, rounds: int = 3, big: int = 50_000, rate_seconds: float = 20.0,
        parts: tuple[str, ...] = ("throughput", "personalisation", "memory", "rate")) -> dict:
    out: dict = {"recipients": n, "errors": {}}
    home = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="nl-bench-send-") as tmpname:
        tmp = Path(tmpname)
        ca, cert, key = make_certs(tmp)
        recipients_csv = write_recipients(tmp / "recipients.csv", n)
        project = make_project(tmp / "base-project")
        sink = Sink(tmp, cert, key)
        try:
            env1 = send_env(sink, ca, connections=1)
            factory, recipients, result = factory_and_recipients(project, recipients_csv, env1)
            os.chdir(home)
            if "personalisation" in parts:
                out["personalisation"] = personalisation(factory, recipients, result)
            if "throughput" in parts:
                out["throughput"] = throughput(tmp, sink, ca, recipients_csv, factory, recipients, result, n, rounds)
        finally:
            os.chdir(home)
            sink.stop()
        if "memory" in parts:
            out["memory"] = memory(tmp, n, big)
        if "rate" in parts:
            out["rate"] = rate_limit(tmp, ca, cert, key, rate_seconds)
    return out


BARE = "bare smtplib loop (1 connection, TCP_NODELAY)"
NAGLE = "bare smtplib loop (1 connection, smtplib defaults; 200 messages, scaled)"
NAGLE_COUNT = 200


def throughput(tmp, sink, ca, recipients_csv, factory, recipients, result, n, rounds) -> dict:
    messages = tmp / "messages.bin"
    wire_bytes = write_messages(messages, factory, recipients)
    mm_files = mailmerge_files(tmp, result, recipients_csv, sink.port)
    bare = [sys.executable, str(HERE / "bare_loop.py"), str(messages), "127.0.0.1", str(sink.port), str(ca)]
    # name -> (run, rounds it takes part in); the slow peers run in fewer rounds to keep `make bench` short.
    contenders = {
        "newsletter send (1 connection)": (lambda: newsletter_send(tmp, recipients_csv, send_env(sink, ca, 0, 1))[0], rounds),
        "newsletter send (SEND_CONNECTIONS=3)": (lambda: newsletter_send(tmp, recipients_csv, send_env(sink, ca, 0, 3))[0], rounds),
        "bare smtplib loop (1 connection, TCP_NODELAY)": (lambda: time_process(bare)[0], rounds),
        NAGLE: (lambda: time_process(bare + ["--nagle", "--limit", str(NAGLE_COUNT)])[0], 1),
        "mailmerge": (lambda: run_mailmerge(mm_files, tmp), min(rounds, 2)),
    }
    samples = {name: Sample() for name in contenders}
    phase = {name: Sample() for name in contenders}  # first to last message as the sink saw them
    errors: dict[str, str] = {}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            fn, its_rounds = contenders[name]
            if name in errors or r >= its_rounds:
                continue
            before = sink.count()
            try:
                seconds = fn()
            except Exception as exc:  # a contender that cannot run is reported, the others go on
                errors[name] = str(exc)[-800:]
                continue
            delivered, span = sink.span(before)
            expected = NAGLE_COUNT if name == NAGLE else n
            if delivered != expected:
                errors[name] = f"the sink received {delivered} messages, not {expected}"
                continue
            samples[name].add(seconds * n / expected)  # NAGLE: scaled to n messages
            phase[name].add(span * n / (expected - 1))  # first-to-last covers expected-1 intervals
            print(f"  send: {name}: {seconds:.2f} s (sending {span:.2f} s)", file=sys.stderr, flush=True)
    rates = {name: Sample([n / s for s in sample.values], unit="msg/s") for name, sample in samples.items()}
    res = {"seconds": {k: v.as_dict() for k, v in samples.items()},
           "send_phase_seconds": {k: v.as_dict() for k, v in phase.items()},
           "msgs_per_s": {k: v.as_dict() for k, v in rates.items()},
           "wire_bytes_per_message": wire_bytes / n, "errors": errors}
    res["ratios"], res["phase_ratios"] = {}, {}
    for label, ours, peer in (("newsletter (1) vs mailmerge", "newsletter send (1 connection)", "mailmerge"),
                              ("newsletter (1) vs bare loop", "newsletter send (1 connection)", BARE),
                              ("newsletter (3) vs bare loop", "newsletter send (SEND_CONNECTIONS=3)", BARE)):
        # Throughput ratio, paired per round: peer time / our time (higher is better for us).
        res["ratios"][label] = ratio_sample(samples[peer], samples[ours]).as_dict()
        res["phase_ratios"][label] = ratio_sample(phase[peer], phase[ours]).as_dict()
    return res


def memory(tmp: Path, small: int, big: int, runs: int = 2) -> dict:
    """Peak RSS (ru_maxrss of the child alone) of `newsletter send --dry-run` to `small` and `big` recipients."""
    csvs = {small: write_recipients(tmp / f"mem-{small}.csv", small), big: write_recipients(tmp / f"mem-{big}.csv", big)}
    env = clean_env(NEWSLETTER_FROM=FROM)
    rss = {small: Sample(unit="KiB"), big: Sample(unit="KiB")}
    secs = {small: Sample(), big: Sample()}
    errors = {}
    for r in range(runs):
        for count in ((small, big) if r % 2 == 0 else (big, small)):
            try:
                seconds, peak = newsletter_send(tmp, csvs[count], env, ["--dry-run"], own_rss=True)
            except Exception as exc:
                errors[count] = str(exc)[-800:]
                continue
            rss[count].add(peak)
            secs[count].add(seconds)
    res = {"small": small, "big": big, "rss_kib": {str(k): v.as_dict() for k, v in rss.items()},
           "seconds": {str(k): v.as_dict() for k, v in secs.items()}, "errors": {str(k): v for k, v in errors.items()}}
    res["ratio"] = ratio_sample(rss[big], rss[small]).as_dict()
    return res


def rate_limit(tmp: Path, ca: Path, cert: Path, key: Path, seconds: float, rate: int = 600) -> dict:
    """SEND_RATE=600 for `seconds` against a fresh sink: the most messages in any 6 s and any 60 s window."""
    sink = Sink(tmp, cert, key, name="rate-sink")
    project = make_project(tmp / "rate-project")
    recipients = write_recipients(tmp / "rate.csv", 1000)
    proc = None
    try:
        proc = subprocess.Popen([NEWSLETTER, "send", "2025-09", "--recipients", str(recipients), "--yes"],
                                cwd=project, env=send_env(sink, ca, rate=rate, connections=1),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user would stop it
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read().decode(errors="replace")
    finally:
        data = sink.stop()
    times = sorted(data["accepted"])
    res = {"rate_per_minute": rate, "run_seconds": seconds, "sent": len(times), "exit": proc.returncode if proc else None}
    if proc and proc.returncode not in (0, 1, 130, -2) and not times:
        res["error"] = err[-800:]
    if times:
        res["first_to_last_s"] = times[-1] - times[0]
        res["max_in_6s"] = max_in_window(times, 6.0)
        res["max_in_60s"] = max_in_window(times, 60.0)
        res["per_second"] = [sum(1 for t in times if times[0] + i <= t < times[0] + i + 1) for i in range(int(seconds) + 1)]
    return res


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--big", type=int, default=50_000)
    p.add_argument("--rate-seconds", type=float, default=20.0)
    p.add_argument("--parts", default="throughput,personalisation,memory,rate")
    a = p.parse_args()
    print(json.dumps(run(a.n, a.rounds, a.big, a.rate_seconds, tuple(a.parts.split(","))), indent=1))
