"""Turns bench results (bench/.results/latest.json) into docs/performance.md."""

from __future__ import annotations

from pathlib import Path

from common import fmt_ratio, fmt_sample, fmt_time


def _get(d: dict | None, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _ok(d) -> bool:
    return isinstance(d, dict) and d.get("n", 0) > 0


def verdict(value: float | None, ok: bool | None) -> str:
    if value is None or ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


def fmt_kib(v: float) -> str:
    return f"{v / 1024:.0f} MiB"


def fmt_rate(v: float) -> str:
    return f"{v:.0f} msg/s"


def fmt_us(v: float) -> str:
    return f"{v * 1e6:.0f} µs" if v < 0.001 else f"{v * 1000:.2f} ms"


def write_doc(r: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(r), encoding="utf-8")


def render(r: dict) -> str:
    m = r["machine"]
    b, s, p = r.get("build"), r.get("send"), r.get("preview")
    L: list[str] = []
    add = L.append
    add("# Performance")
    add("")
    add("Written by `make bench` (`bench/run.py`); do not edit by hand, edit `bench/report.py` and re-run. "
        f"Last run: {m['date']}{' (--quick)' if r.get('quick') else ''}, {r.get('seconds', 0):.0f} s in all.")
    add("")
    add(f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, Node {r.get('node')}, {m['platform']}; "
        f"load average at the start {m['load'][0]:.2f} (a shared machine: other work ran during the bench). "
        f"Peers: the official MJML CLI {r['peers']['mjml']} (npm `mjml`), mailmerge {r['peers']['mailmerge']} (PyPI), "
        "both installed by the bench into `bench/.peers/`.")
    add("")
    add("Every figure is the median of several runs with its spread as (min–max, n). A ratio pairs two contenders "
        "run back to back in the same round, the order alternating between rounds, and the figure is the median "
        "of the per-round ratios, so background load hits both sides alike. Absolute times on this machine move "
        "by ±30 % with the load; the ratios move much less. No test asserts a timing.")
    add("")

    # ---- summary
    rows = []
    if b:
        bm = b["build_vs_mjml"]
        rows.append(("`newsletter build` (whole process) vs the MJML CLI alone", "≤ 0.5x",
                     fmt_ratio(bm), verdict(bm["median"], bm["median"] <= 0.5)))
        w = b["warm_build"]
        rows.append(("warm rebuild in the preview server: `build()`", "< 50 ms", fmt_sample(w),
                     verdict(w["median"], w["median"] < 0.05)))
        wc = b["warm_edited"]
        rows.append(("warm rebuild + offline checks (what preview runs per save)", "(< 50 ms)", fmt_sample(wc),
                     verdict(wc["median"], wc["median"] < 0.05)))
        h = b["process"]["newsletter --help"]
        rows.append(("`newsletter --help`", "< 150 ms", fmt_sample(h), verdict(h["median"], h["median"] < 0.15)))
    if s:
        t = s.get("throughput") or {}
        for label, key, target, test in (
            ("send vs mailmerge (throughput)", "newsletter (1) vs mailmerge", "≥ 3x", lambda v: v >= 3),
            ("send, 1 connection, vs bare smtplib loop", "newsletter (1) vs bare loop", "≥ 0.8x", lambda v: v >= 0.8),
            ("send, SEND_CONNECTIONS=3, vs bare smtplib loop", "newsletter (3) vs bare loop", "> 1x", lambda v: v > 1),
        ):
            d = _get(t, "ratios", key)
            rows.append((label, target, fmt_ratio(d) if _ok(d) else "n/a",
                         verdict(d["median"], test(d["median"])) if _ok(d) else "not measured"))
        pz = _get(s, "personalisation", "for_recipient")
        rows.append(("personalisation: `MessageFactory.for_recipient`", "< 1 ms",
                     fmt_sample(pz, fmt_us) if _ok(pz) else "n/a",
                     verdict(pz["median"], pz["median"] < 0.001) if _ok(pz) else "not measured"))
        mr = _get(s, "memory", "ratio")
        big = _get(s, "memory", "big")
        rows.append((f"peak RSS, dry run to {big or 50000:,} vs 1,000 recipients", "≤ 1.2x",
                     fmt_ratio(mr) if _ok(mr) else "n/a",
                     verdict(mr["median"], mr["median"] <= 1.2) if _ok(mr) else "not measured"))
        rl = s.get("rate") or {}
        if "max_in_6s" in rl:
            rows.append(("SEND_RATE=600: most messages in any 6 s window (20 s run)", "≤ 60 and ≥ 57",
                         f"{rl['max_in_6s']} (any 60 s: {rl['max_in_60s']}; {rl['sent']} sent)",
                         verdict(1, 57 <= rl["max_in_6s"] <= 60)))
        else:
            rows.append(("SEND_RATE=600: most messages in any 6 s window", "≤ 60 and ≥ 57", "n/a", "not measured"))
    if p and "save_to_reloaded" in p:
        d = p["save_to_reloaded"]
        rows.append(("preview: save edition.yaml → reloaded page in Chromium", "< 1 s", fmt_sample(d),
                     verdict(d["median"], d["median"] < 1)))
    add("## Summary")
    add("")
    add("| what | target | measured: median (min–max) | |")
    add("| --- | --- | --- | --- |")
    for row in rows:
        add("| " + " | ".join(row) + " |")
    add("")
    for name, err in (r.get("errors") or {}).items():
        add(f"**The {name} benchmark failed in this run:**")
        add("")
        add("```")
        add(err.strip()[-1500:])
        add("```")
        add("")

    if b:
        L += build_section(b)
    if s:
        L += send_section(s)
    if p:
        L += preview_section(p)
    L += FINDINGS
    L += RUNNING
    return "\n".join(L) + "\n"


def build_section(b: dict) -> list[str]:
    L = ["## 1. Build", ""]
    add = L.append
    add(f"The example edition (`editions/2025-09`: {b['mjml_bytes'] / 1000:.0f} KB of MJML, {b['html_bytes'] / 1000:.0f} KB "
        "of inlined HTML). Whole processes, wall time:")
    add("")
    add("| command | time | vs the MJML CLI |")
    add("| --- | --- | --- |")
    proc = b["process"]
    for name, d in proc.items():
        ratio = b.get("ratios_vs_mjml", {}).get(name)
        add(f"| `{name}` | {fmt_sample(d)} | {fmt_ratio(ratio) if ratio else ''} |")
    add("")
    add("`newsletter build` does more than the MJML CLI: it loads and validates the YAML, renders the Jinja2 "
        "templates with Markdown and localised dates, compiles MJML twice (email and web page), inlines the CSS, "
        "writes the plain-text part and runs the offline checks. `mjml CLI` compiles the finished `email.mjml` only.")
    add("")
    add("In process, stage by stage (each run a fresh interpreter; the command run through click as the shell "
        "runs it). *Now* is the code as it is; *before* is the same code with premailer used as imported "
        "(without `render._premailer()`'s set-up), measured in the same rounds:")
    add("")
    add("| stage | now | before |")
    add("| --- | --- | --- |")
    st = b["stages"]
    for name in st["fixed"]:
        before = st["unpatched"].get(name)
        add(f"| {name} | {fmt_sample(st['fixed'][name])} | {fmt_sample(before) if before else ''} |")
    add("")
    add(f"premailer's import now takes {fmt_ratio(b['premailer_import_fixed_vs_unpatched'])} of what it took, and its "
        f"first transform {fmt_ratio(b['premailer_first_fixed_vs_unpatched'])}; the inlined HTML is byte-for-byte "
        "the same (checked by the bench on every run: "
        f"{'identical' if b.get('output_identical') else 'DIFFERENT — investigate'}).")
    add("")
    add("Warm rebuilds (same process, as `newsletter preview` does after each save), the median within each "
        "process and its spread across processes:")
    add("")
    add("| rebuild | time |")
    add("| --- | --- |")
    add(f"| `build()` again, edition unchanged | {fmt_sample(b['warm_build'])} |")
    add(f"| `build()` + offline checks, edition unchanged | {fmt_sample(b['warm_unchanged'])} |")
    add(f"| `build()` + offline checks, a title edited each time | {fmt_sample(b['warm_edited'])} |")
    add("")
    add("Where a warm rebuild with checks goes (edited):")
    add("")
    add("| stage | time |")
    add("| --- | --- |")
    for name, d in b["warm_stages"].items():
        add(f"| {name} | {fmt_sample(d)} |")
    add("")
    return L


def send_section(s: dict) -> list[str]:
    L = ["## 2. Send throughput", ""]
    add = L.append
    t = s.get("throughput")
    if t:
        add(f"{s['recipients']:,} recipients of the example edition ({t['wire_bytes_per_message'] / 1000:.0f} KB a message on "
            "the wire) to a minimal SMTP sink in its own process (`bench/smtp_sink.py`: asyncio, STARTTLS with a "
            "trustme certificate, AUTH PLAIN/LOGIN, DATA read with one `readuntil` and discarded), no rate limit "
            "(`SEND_RATE=0`). Whole processes, wall time, each checked against the sink's count of accepted messages:")
        add("")
        add("| sender | time for all | messages/s |")
        add("| --- | --- | --- |")
        for name, d in t["seconds"].items():
            rate = t["msgs_per_s"][name]
            add(f"| {name} | {fmt_sample(d)} | {fmt_sample(rate, fmt_rate)} |")
        add("")
        add("| ratio (peer time / our time: higher is faster for us) | median (min–max) |")
        add("| --- | --- |")
        for name, d in t["ratios"].items():
            add(f"| {name} | {fmt_ratio(d)} |")
        add("")
        for name, err in (t.get("errors") or {}).items():
            add(f"- **{name} did not run:** `{err.strip().splitlines()[-1][:400]}`")
        if t.get("errors"):
            add("")
    pz = s.get("personalisation")
    if pz:
        add("## 3. Personalisation")
        add("")
        add(f"One recipient's message, from the rendered edition to the bytes that go on the wire "
            f"({pz['message_bytes'] / 1000:.0f} KB), per message, over 1,000 recipients per batch:")
        add("")
        add("| how | per message |")
        add("| --- | --- |")
        add(f"| `MessageFactory.for_recipient` (encode once, splice per recipient) | {fmt_sample(pz['for_recipient'], fmt_us)} |")
        add(f"| standard library afresh (`EmailMessage`, `set_content` + `add_alternative`, SMTP policy) | "
            f"{fmt_sample(pz['stdlib_email_per_message'], fmt_us)} |")
        add(f"| ratio | {fmt_ratio(pz['ratio'])} |")
        add("")
    mem = s.get("memory")
    if mem:
        add("## 4. Memory")
        add("")
        add("Peak RSS (`ru_maxrss` of the child process alone, from `wait4`) of `newsletter send --dry-run --yes` "
            "in a fresh project (every message written to the outbox):")
        add("")
        add("| recipients | peak RSS | time |")
        add("| --- | --- | --- |")
        for k, d in mem["rss_kib"].items():
            add(f"| {int(k):,} | {fmt_sample(d, fmt_kib) if _ok(d) else 'n/a'} | {fmt_sample(mem['seconds'][k]) if _ok(mem['seconds'][k]) else 'n/a'} |")
        add("")
        if _ok(mem.get("ratio")):
            add(f"Ratio: {fmt_ratio(mem['ratio'])}.")
            add("")
        for k, err in (mem.get("errors") or {}).items():
            add(f"- **{k} recipients did not run:** `{err.strip().splitlines()[-1][:400]}`")
        if mem.get("errors"):
            add("")
    rl = s.get("rate")
    if rl:
        add("## 5. Rate limiting")
        add("")
        if "max_in_6s" in rl:
            add(f"`SEND_RATE=600` for {rl['run_seconds']:.0f} s against a fresh sink (the send stopped with Ctrl-C "
                f"after that): {rl['sent']} messages accepted; the most in any 6 s window: **{rl['max_in_6s']}**; in any "
                f"60 s window: {rl['max_in_60s']}. Messages per second from the first one: "
                f"{', '.join(map(str, rl['per_second']))}.")
        else:
            add(f"Did not run: `{rl.get('error', 'no message was accepted')}`")
        add("")
    return L


def preview_section(p: dict) -> list[str]:
    L = ["## 6. Preview", ""]
    add = L.append
    if "error" in p:
        add(f"Did not run: `{p['error']}`")
        add("")
        return L
    add("`newsletter preview 2025-09 --port 0 --no-open` in its own process, the page open in Debian's headless "
        "Chromium (Playwright, the flags in `bench/bench_preview.py`); the bench saves `edition.yaml` with a new "
        "title and polls the page every 5 ms until both the desktop and the phone frame show it:")
    add("")
    add("| | time |")
    add("| --- | --- |")
    add(f"| save → both frames show the new text | {fmt_sample(p['save_to_reloaded'])} |")
    if _ok(p.get("server_rebuild_reported")):
        add(f"| of which the server's rebuild (as it prints it, 10 ms resolution) | {fmt_sample(p['server_rebuild_reported'])} |")
    add("")
    return L


FINDINGS: list[str] = []  # filled in by hand-written analysis below (see ANALYSIS)
RUNNING = [
    "## Running it",
    "",
    "`make bench` (about 4 minutes; `--quick` in `bench/run.py` for a shorter run). It installs the MJML CLI with "
    "npm and mailmerge with pip into `bench/.peers/` (gitignored) on first use, and headless Chromium from "
    "Debian via `make chromium`. Raw numbers: `bench/.results/latest.json`; `bench/run.py --from-json FILE` "
    "rewrites this page from them.",
    "",
]
