"""`make bench`: run every benchmark in bench/ and write docs/performance.md (and bench/.results/latest.json).

    .venv/bin/python bench/run.py [--quick] [--only build,send,preview] [--no-doc]

Installs its own peers on first use (npm `mjml` and PyPI `mailmerge`, into bench/.peers/). Every figure is
the median of several runs with its spread; each ratio pairs two contenders measured back to back in the
same round (alternating their order), so the load of other work on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import REPO, machine
from peers import MAILMERGE_VERSION, MJML_VERSION, node_version

DOC = REPO / "docs" / "performance.md"
RESULTS = HERE / ".results" / "latest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and 5,000 instead of 50,000 recipients")
    parser.add_argument("--only", default="build,send,preview", help="comma-separated: build, send, send_real, preview")
    parser.add_argument("--no-doc", action="store_true", help="print the JSON, do not write docs/performance.md")
    parser.add_argument("--from-json", type=Path, help="write the doc from an earlier results file, run nothing")
    args = parser.parse_args()
    only = set(args.only.split(","))

    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = {"machine": machine(), "node": node_version(), "peers": {"mjml": MJML_VERSION, "mailmerge": MAILMERGE_VERSION},
                   "quick": args.quick, "errors": {}, "code": code_facts()}
        started = time.perf_counter()
        if "build" in only:
            step("build", results, lambda: __import__("bench_build").run(rounds=5 if args.quick else 9))
        if "send" in only:
            step("send", results, lambda: __import__("bench_send").run(
                n=1000, rounds=2 if args.quick else 3, big=5_000 if args.quick else 50_000))
        if "send" in only or "send_real" in only:
            step("send_real", results, lambda: __import__("bench_send_real").run(
                n=200, rounds=2, big=5_000 if args.quick else 50_000))
        if "preview" in only:
            step("preview", results, lambda: __import__("bench_preview").run(edits=5 if args.quick else 9))
        results["seconds"] = time.perf_counter() - started
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
        print(f"bench: raw results in {RESULTS.relative_to(REPO)} ({results['seconds']:.0f} s)")
    if args.no_doc:
        print(json.dumps(results, indent=1))
        return 0
    from report import write_doc

    write_doc(results, DOC)
    print(f"bench: wrote {DOC.relative_to(REPO)}")
    return 0


def code_facts() -> dict:
    """What the analysis in the doc depends on, read from the source as it is now (so the text stays true
    when the sender's files change between runs)."""
    def read(name: str) -> str:
        try:
            return (REPO / "newsletter_cli" / name).read_text(encoding="utf-8")
        except OSError:
            return ""
    journal, mailer = read("members/journal.py"), read("deliver/smtp.py")
    send = read("deliver/send.py") + read("deliver/plan.py")  # running a send, and planning it
    recipients = read("members/recipients.py")
    return {"mailer_sets_nodelay": "TCP_NODELAY" in mailer,
            "mailer_dot_regex": "\nDOT_RE = " in mailer,  # the (?m)^\. regex over every message
            "fingerprint_per_call": "@property\n    def fingerprint" in send,
            "mailer_pipelining": "_send_pipelined" in mailer,
            "recipients_streamed": "sink" in recipients and "JournalQueue" in send,
            "journal_synchronous_full": "synchronous=FULL" in journal.replace(" ", "")}


def step(name: str, results: dict, fn) -> None:
    print(f"bench: {name} ...", flush=True)
    t = time.perf_counter()
    try:
        results[name] = fn()
    except Exception:  # one failing benchmark must not lose the others' numbers
        results["errors"][name] = traceback.format_exc()[-3000:]
        print(f"bench: {name} failed:\n{results['errors'][name]}", file=sys.stderr, flush=True)
    print(f"bench: {name} done in {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
