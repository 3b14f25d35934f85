"""Send against a server that answers like a real one, not a sink that answers at once.

- throughput: `newsletter send` with 1 and 3 connections, a bare smtplib loop and mailmerge, against the
  sink with a 10 ms round trip on every awaited reply and 30-80 ms before each reply to a message's final
  dot, over STARTTLS + AUTH (as Microsoft 365 answers from nearby);
- greylisting: 100 members of whom every 10th gets one 451, with the default retry delays (5 s, 30 s,
  2 min), next to the same send with none greylisted;
- memory: the peak RSS of a real send (first 1,000 sent, `--limit 1000`) from a list of 1,000 and one of
  50,000 members, read into the journal and sent from it.

    .venv/bin/python bench/bench_send_real.py [--n 200] [--rounds 2] [--big 50000]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench_build import make_project
from bench_send import (
    BARE,
    HERE,
    Sink,
    factory_and_recipients,
    mailmerge_files,
    make_certs,
    newsletter_send,
    run_mailmerge,
    send_env,
    write_messages,
    write_recipients,
)
from common import Sample, ratio_sample, time_process

REALISTIC = ["--rtt", "0.01", "--data-delay", "0.03,0.08"]
ONE, THREE = "newsletter send (1 connection)", "newsletter send (SEND_CONNECTIONS=3)"


def run(n: int = 200, rounds: int = 2, big: int = 50_000, greylist_rounds: int = 2) -> dict:
    out: dict = {"recipients": n, "server": "10 ms round trip, 30-80 ms per DATA reply, STARTTLS + AUTH"}
    with tempfile.TemporaryDirectory(prefix="nl-bench-send-real-") as name:
        tmp = Path(name)
        ca, cert, key = make_certs(tmp)
        out["throughput"] = throughput(tmp, ca, cert, key, n, rounds)
        out["greylist"] = greylisting(tmp, ca, cert, key, greylist_rounds)
        out["memory"] = memory(tmp, ca, cert, key, big)
    return out


def throughput(tmp: Path, ca: Path, cert: Path, key: Path, n: int, rounds: int) -> dict:
    recipients_csv = write_recipients(tmp / "real.csv", n)
    project = make_project(tmp / "real-project")
    sink = Sink(tmp, cert, key, name="real-sink", extra=REALISTIC)
    home = os.getcwd()
    try:
        factory, recipients, result = factory_and_recipients(project, recipients_csv, send_env(sink, ca))
        os.chdir(home)
        messages = tmp / "real-messages.bin"
        write_messages(messages, factory, recipients)
        mm_files = mailmerge_files(tmp, result, recipients_csv, sink.port)
        bare = [sys.executable, str(HERE / "bare_loop.py"), str(messages), "127.0.0.1", str(sink.port), str(ca)]
        contenders = {
            ONE: lambda: newsletter_send(tmp, recipients_csv, send_env(sink, ca, 0, 1))[0],
            THREE: lambda: newsletter_send(tmp, recipients_csv, send_env(sink, ca, 0, 3))[0],
            BARE: lambda: time_process(bare)[0],
            "mailmerge": lambda: run_mailmerge(mm_files, tmp),
        }
        samples = {name: Sample() for name in contenders}
        errors: dict[str, str] = {}
        for r in range(rounds):
            for name in (list(contenders) if r % 2 == 0 else list(reversed(contenders))):
                if name in errors:
                    continue
                before = sink.count()
                try:
                    seconds = contenders[name]()
                except Exception as exc:
                    errors[name] = str(exc)[-800:]
                    continue
                delivered, _ = sink.span(before)
                if delivered != n:
                    errors[name] = f"the sink received {delivered} messages, not {n}"
                    continue
                samples[name].add(seconds)
                print(f"  send (realistic server): {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    finally:
        os.chdir(home)
        sink.stop()
    ratios = {label: ratio_sample(samples[peer], samples[ours]).as_dict()
              for label, ours, peer in (("newsletter (1) vs mailmerge", ONE, "mailmerge"),
                                        ("newsletter (3) vs mailmerge", THREE, "mailmerge"),
                                        ("newsletter (1) vs bare loop", ONE, BARE),
                                        ("newsletter (3) vs bare loop", THREE, BARE),
                                        ("3 connections vs 1", THREE, ONE))}
    return {"seconds": {k: v.as_dict() for k, v in samples.items()},
            "msgs_per_s": {k: Sample([n / s for s in v.values], unit="msg/s").as_dict() for k, v in samples.items()},
            "ratios": ratios, "errors": errors}


def greylisting(tmp: Path, ca: Path, cert: Path, key: Path, rounds: int, members: int = 100) -> dict:
    """100 members, 3 connections, default retry delays: every 10th greylisted once, against none."""
    recipients_csv = write_recipients(tmp / "grey.csv", members)
    results: dict[str, Sample] = {"none greylisted": Sample(), "10% greylisted once": Sample()}
    errors: dict[str, str] = {}
    for r in range(rounds):
        for label, extra in (("none greylisted", []), ("10% greylisted once", ["--greylist", "10"])):
            sink = Sink(tmp, cert, key, name=f"grey-{r}-{len(extra)}", extra=REALISTIC + extra)
            try:
                seconds = newsletter_send(tmp, recipients_csv, send_env(sink, ca, 0, 3))[0]
                if sink.count() != members:
                    errors[label] = f"the sink received {sink.count()} messages, not {members}"
                else:
                    results[label].add(seconds)
                    print(f"  send (greylisting): {label}: {seconds:.2f} s", file=sys.stderr, flush=True)
            except Exception as exc:
                errors[label] = str(exc)[-800:]
            finally:
                sink.stop()
    return {"members": members, "connections": 3, "retry_delays": "5 s, 30 s, 2 min (the defaults)",
            "seconds": {k: v.as_dict() for k, v in results.items()}, "errors": errors}


def memory(tmp: Path, ca: Path, cert: Path, key: Path, big: int, sent: int = 1000) -> dict:
    """Peak RSS of a real send of the first `sent` members from lists of `sent` and `big` members."""
    sink = Sink(tmp, cert, key, name="mem-sink")
    rss: dict[int, Sample] = {}
    secs: dict[int, Sample] = {}
    errors: dict[str, str] = {}
    try:
        for count in (sent, big):
            csv_path = write_recipients(tmp / f"mem-{count}.csv", count)
            rss[count], secs[count] = Sample(unit="KiB"), Sample()
            try:
                seconds, peak = newsletter_send(tmp, csv_path, send_env(sink, ca, 0, 3), ["--limit", str(sent)],
                                                own_rss=True)
                rss[count].add(peak)
                secs[count].add(seconds)
            except Exception as exc:
                errors[str(count)] = str(exc)[-800:]
    finally:
        sink.stop()
    return {"sent": sent, "small": sent, "big": big, "rss_kib": {str(k): v.as_dict() for k, v in rss.items()},
            "seconds": {str(k): v.as_dict() for k, v in secs.items()}, "errors": errors,
            "ratio": ratio_sample(rss[big], rss[sent]).as_dict()}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--big", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.rounds, args.big), indent=1))
