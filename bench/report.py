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


def ratio_rows(throughput: dict, table, phases: bool = False) -> list[tuple[str, str, str, str]]:
    """One summary row per (label, ratio key, target, test): the measured ratio and whether it meets the target;
    with `phases`, also the sending phase alone (and its verdict when that differs)."""
    rows = []
    for label, key, target, test in table:
        d = _get(throughput, "ratios", key)
        ph = _get(throughput, "phase_ratios", key) if phases else None
        shown = fmt_ratio(d) if _ok(d) else "n/a"
        if _ok(ph):
            shown += f"; sending phase only: {fmt_ratio(ph)}"
        v = "not measured"
        if _ok(d):
            v = verdict(d["median"], test(d["median"]))
            if _ok(ph) and test(ph["median"]) != test(d["median"]):
                v += f" (sending phase: {'met' if test(ph['median']) else 'missed'})"
        rows.append((label, target, shown, v))
    return rows


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
    _heading(add, "# Performance")
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
        rows.append(("`newsletter build` (whole process) vs the MJML CLI alone", "≤ 0.6x",
                     fmt_ratio(bm), verdict(bm["median"], bm["median"] <= 0.6)))
        w = b["warm_build"]
        rows.append(("warm rebuild in the preview server: `build()`", "< 50 ms", fmt_sample(w),
                     verdict(w["median"], w["median"] < 0.05)))
        wc = b["warm_edited"]
        rows.append(("warm rebuild + offline checks (what preview runs per save)", "(< 50 ms)", fmt_sample(wc),
                     verdict(wc["median"], wc["median"] < 0.05)))
        hp = b.get("help_vs_python")
        if hp:
            rows.append(("`newsletter --help` vs `python -c pass`", "< 1.8x", fmt_ratio(hp),
                         verdict(hp["median"], hp["median"] < 1.8)))
    if s:
        t = s.get("throughput") or {}
        rows += ratio_rows(t, (
            ("send vs mailmerge (throughput, instant sink: see 2b)", "newsletter (1) vs mailmerge", "≥ 3x", lambda v: v >= 3),
            ("send, 1 connection, vs bare smtplib loop", "newsletter (1) vs bare loop", "≥ 0.8x", lambda v: v >= 0.8),
            ("send, SEND_CONNECTIONS=3, vs bare smtplib loop", "newsletter (3) vs bare loop", "> 1x", lambda v: v > 1),
        ), phases=True)
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
    rows += send_real_rows(r.get("send_real") or {})
    if p and "save_to_reloaded" in p:
        d = p["save_to_reloaded"]
        rows.append(("preview: save edition.yaml → reloaded page in Chromium", "< 1 s", fmt_sample(d),
                     verdict(d["median"], d["median"] < 1)))
    _heading(add, "## Summary")
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
    if r.get("send_real"):
        L += send_real_section(r["send_real"])
    if p:
        L += preview_section(p)
    L += findings(r)
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
        label = f"`{name}`" if " (" not in name else f"`{name.split(' (', 1)[0]}` ({name.split(' (', 1)[1]}"
        add(f"| {label} | {fmt_sample(d)} | {fmt_ratio(ratio) if ratio else ''} |")
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
        add("| sender | whole process | messages/s (whole process) | sending phase (sink's first to last message) |")
        add("| --- | --- | --- | --- |")
        for name, d in t["seconds"].items():
            rate = t["msgs_per_s"][name]
            ph = t.get("send_phase_seconds", {}).get(name)
            add(f"| {name} | {fmt_sample(d)} | {fmt_sample(rate, fmt_rate)} | {fmt_sample(ph) if ph else ''} |")
        add("")
        add("| ratio (peer time / our time: higher is faster for us) | whole process | sending phase |")
        add("| --- | --- | --- |")
        for name, d in t["ratios"].items():
            ph = t.get("phase_ratios", {}).get(name)
            add(f"| {name} | {fmt_ratio(d)} | {fmt_ratio(ph) if ph else ''} |")
        add("")
        add("The *sending phase* is what the sink saw between the first and the last accepted message (scaled to "
            "n intervals); the whole process adds start-up, for `newsletter send` also the build of the edition, "
            "reading the recipients and opening the journal (about "
            f"{fmt_time(_startup(t))} here), and for the bare loop reading the pre-serialized messages. The sink "
            "offers PIPELINING, as Microsoft 365, Exchange and Postfix do: `newsletter send` uses it, the bare "
            "loop (`smtplib.sendmail`) does not.")
        add("")
        _did_not_run(add, t.get("errors"), "{} did not run")
    pz = s.get("personalisation")
    if pz:
        _heading(add, "## 3. Personalisation")
        add(f"One recipient's message, from the rendered edition to the bytes that go on the wire "
            f"({pz['message_bytes'] / 1000:.0f} KB), per message, over 1,000 recipients per batch:")
        add("")
        add("| how | per message |")
        add("| --- | --- |")
        add(f"| `MessageFactory.for_recipient` (encode once, splice per recipient) | {fmt_sample(pz['for_recipient'], fmt_us)} |")
        add(f"| standard library afresh (`EmailMessage`, `set_content` + `add_alternative`, SMTP policy) | "
            f"{fmt_sample(pz['stdlib_email_per_message'], fmt_us)} |")
        add(f"| `for_recipient` is faster by | {1 / pz['ratio']['median']:.0f}x (paired per batch) |")
        add("")
    mem = s.get("memory")
    if mem:
        _heading(add, "## 4. Memory")
        add("Peak RSS of `newsletter send --dry-run --yes` alone (`ru_maxrss` from `wait4`, the process started from "
            "a small launcher so that the bench's own memory does not count) in a fresh project (every message "
            "written to the outbox):")
        add("")
        add("| recipients | peak RSS | time |")
        add("| --- | --- | --- |")
        for k, d in mem["rss_kib"].items():
            add(f"| {int(k):,} | {fmt_sample(d, fmt_kib) if _ok(d) else 'n/a'} | {fmt_sample(mem['seconds'][k]) if _ok(mem['seconds'][k]) else 'n/a'} |")
        add("")
        if _ok(mem.get("ratio")):
            add(f"Ratio: {fmt_ratio(mem['ratio'])}.")
            add("")
        _did_not_run(add, mem.get("errors"), "{} recipients did not run")
    rl = s.get("rate")
    if rl:
        _heading(add, "## 5. Rate limiting")
        if "max_in_6s" in rl:
            add(f"`SEND_RATE=600` for {rl['run_seconds']:.0f} s against a fresh sink (the send stopped with Ctrl-C "
                f"after that): {rl['sent']} messages accepted; the most in any 6 s window: **{rl['max_in_6s']}**; in any "
                f"60 s window: {rl['max_in_60s']}. Messages per second from the first one: "
                f"{', '.join(map(str, rl['per_second']))}.")
        else:
            add(f"Did not run: `{rl.get('error', 'no message was accepted')}`")
        add("")
    return L


MEMORY_TEXT = (
    "The messages are streamed (one at a time, written or sent, then dropped), and so is the recipient list: "
    "`read_recipients` checks the file row by row and hands each valid row to a sink, which for a send (and a "
    "dry run, into a throwaway journal) is the journal's `loading()` transaction: the rows go into "
    "`editions/<id>/journal.sqlite` with their place in the list and their merge fields, rows no longer in the "
    "list are marked unlisted. The send then reads the members still to do from the journal 500 at a time "
    "(`send.JournalQueue`), and the connections take them from one shared iterator, with a small heap for "
    "greylisted members waiting for their retry. (The earlier design kept a compressed snapshot of the CSV "
    "with a CRC-32 per valid row and parsed it again while sending; the journal replaced it.) What still grows "
    "with the list: the set of addresses seen while checking it (for duplicates, about 6 MiB at 50,000) and "
    "the SQLite page cache."
)


def send_real_rows(sr: dict) -> list[tuple[str, str, str, str]]:
    """Summary rows of bench_send_real: the honest ratios, against a server that takes its time."""
    if not sr:
        return []
    t = sr.get("throughput") or {}
    rows = ratio_rows(t, (
        ("send vs mailmerge, realistic server, 1 connection", "newsletter (1) vs mailmerge", "(≥ 2x)", lambda v: v >= 2),
        ("send vs mailmerge, realistic server, 3 connections", "newsletter (3) vs mailmerge", "(≥ 3x)", lambda v: v >= 3),
        ("send, 3 connections vs 1, realistic server", "3 connections vs 1", "(> 2x)", lambda v: v > 2),
    ))
    g = _get(sr, "greylist", "seconds", "10% greylisted once")
    rows.append(("100 members, 10 greylisted once, default retry delays, 3 connections", "< 15 s",
                 fmt_sample(g) if _ok(g) else "n/a", verdict(g["median"], g["median"] < 15) if _ok(g) else "not measured"))
    mr = _get(sr, "memory", "ratio")
    big = _get(sr, "memory", "big") or 50000
    rows.append((f"peak RSS of a real send from the journal queue, {big:,} vs 1,000 members", "≤ 1.2x",
                 fmt_ratio(mr) if _ok(mr) else "n/a",
                 verdict(mr["median"], mr["median"] <= 1.2) if _ok(mr) else "not measured"))
    return rows


def send_real_section(sr: dict) -> list[str]:
    """Send against a server that answers like a real one (bench/bench_send_real.py)."""
    L: list[str] = []
    add = L.append
    t = sr.get("throughput") or {}
    add("## 2b. Send against a realistic server")
    add("")
    add(f"The sink of section 2 answers at once, which flatters pipelining and hides what connections are for. "
        f"Here the same sink answers like a nearby Microsoft 365 would: {sr.get('server')} "
        f"(`bench/smtp_sink.py --rtt 0.01 --data-delay 0.03,0.08`). {sr.get('recipients')} recipients of the example "
        "edition, `SEND_RATE=0`, whole processes, each checked against the sink's count (`bench/bench_send_real.py`).")
    add("")
    add("| sender | whole process | messages/s |")
    add("| --- | --- | --- |")
    for name, sample in (t.get("seconds") or {}).items():
        add(f"| {name} | {fmt_sample(sample) if _ok(sample) else 'n/a'} | "
            f"{fmt_sample(t['msgs_per_s'][name], fmt_rate) if _ok(t['msgs_per_s'].get(name)) else 'n/a'} |")
    add("")
    add("| ratio (peer time / our time: higher is faster for us) | whole process |")
    add("| --- | --- |")
    for label, d in (t.get("ratios") or {}).items():
        add(f"| {label} | {fmt_ratio(d) if _ok(d) else 'n/a'} |")
    for name, err in (t.get("errors") or {}).items():
        add(f"\n{name} could not be measured: `{err[-300:]}`")
    add("")
    add("Against this server the time is the server's: a message costs its DATA reply (30-80 ms) plus a round "
        "trip, and the sender's own work (about 1 ms a message, section 2) hardly counts. PIPELINING saves two "
        "round trips a message against smtplib's one-command-at-a-time, three connections keep three "
        "messages waiting on the server at once, and mailmerge opens a new connection (STARTTLS, AUTH) for "
        "every message. The 50-80x over mailmerge of section 2 is what an instant sink shows; these are the "
        "ratios a secretariat will see.")
    add("")
    g = sr.get("greylist") or {}
    if g:
        add(f"**Greylisting.** {g.get('members')} members, {g.get('connections')} connections, retry delays "
            f"{g.get('retry_delays')}; every 10th address answered `451 4.7.1 Greylisted` once:")
        add("")
        add("| | whole send |")
        add("| --- | --- |")
        for label, sample in (g.get("seconds") or {}).items():
            add(f"| {label} | {fmt_sample(sample) if _ok(sample) else 'n/a'} |")
        add("")
        add("A greylisted member goes on a retry queue, due 5 s later, and the connection goes on with the next "
            "member; the send ends when the last greylisted member's retry (5 s after its first try) is "
            "accepted. Before the deferred queue a 451 made its connection sleep 5, 30 and 120 s while the others "
            "waited.")
        add("")
    mem = sr.get("memory") or {}
    if mem:
        add(f"**Memory.** Peak RSS of a real `newsletter send --limit {mem.get('sent')}` (3 connections, the sink "
            "without delays) from a list of 1,000 and one of "
            f"{mem.get('big', 0):,} members: every run reads the checked list into the journal "
            "(`editions/<id>/journal.sqlite`) and sends from a query over it, a batch of 500 at a time, so the "
            "list is never held in memory:")
        add("")
        add("| members in the list | peak RSS | whole process |")
        add("| --- | --- | --- |")
        for count in (str(mem.get("small")), str(mem.get("big"))):
            rss, sec = _get(mem, "rss_kib", count), _get(mem, "seconds", count)
            add(f"| {int(count):,} | {fmt_sample(rss, fmt_kib) if _ok(rss) else 'n/a'} | "
                f"{fmt_sample(sec) if _ok(sec) else 'n/a'} |")
        add("")
        if _ok(mem.get("ratio")):
            add(f"Ratio: {fmt_ratio(mem['ratio'])}. The longer process time at 50,000 is mostly checking the "
                "addresses (email-validator, measured by hand: about 10 s for 50,000 on this loaded machine); "
                "writing the rows into the journal in one transaction adds about 2 s.")
            add("")
    return L


def _share(imports: float, proc: dict) -> str:
    try:
        return f"{(imports + proc['python -c pass']['median']) / proc['mjml CLI']['median']:.2f}x"
    except (KeyError, TypeError, ZeroDivisionError):
        return "n/a"


def _state(code: dict, still_there: str) -> str:
    """'open' while the code still has the pattern the finding is about (as run.py read it), else 'changed since'."""
    if still_there not in code:
        return "open"
    return "open" if code[still_there] else "changed since: re-profile"


def _fmt_r(d) -> str:
    return fmt_ratio(d) if _ok(d) else "n/a"


def _startup(t: dict) -> float:
    name = "newsletter send (1 connection)"
    try:
        return t["seconds"][name]["median"] - t["send_phase_seconds"][name]["median"]
    except (KeyError, TypeError):
        return float("nan")


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


def _med(d, fmt=fmt_time, default="n/a") -> str:
    return fmt(d["median"]) if _ok(d) else default


def _med_num(t: dict, name: str) -> float:
    """Whole process minus sending phase, for one contender (its time outside the sending phase)."""
    try:
        return t["seconds"][name]["median"] - t["send_phase_seconds"][name]["median"]
    except (KeyError, TypeError):
        return float("nan")


def findings(r: dict) -> list[str]:
    """What bounds each figure and what to change: the analysis, with this run's numbers where they apply."""
    b, s, p = r.get("build") or {}, r.get("send") or {}, r.get("preview") or {}
    st = _get(b, "stages", "fixed") or {}
    un = _get(b, "stages", "unpatched") or {}
    proc = b.get("process", {})
    imports = sum(st[k]["median"] for k in st if k.startswith("import")) if st else float("nan")
    t = s.get("throughput") or {}
    sec = t.get("msgs_per_s", {})
    L = ["## Findings: what bounds each figure, and what to change", ""]
    add = L.append

    _heading(add, "### premailer's first transform and import (fixed, `newsletter_cli/compose/render.py`)")
    add("Profiled with cProfile: of premailer's first `transform()` (~160 ms under the profiler) ~120 ms was "
        "`re.compile`, called from cssutils' `Property.validate()` → `profiles.validateWithProfile`: cssutils "
        "compiles the regular expression of a property's grammar the first time it validates that property. "
        "`disable_validation=True` does not reach two of premailer's calls: `merge_styles()` parses every "
        "element's existing inline style with `csstext_to_pairs(style)` (whose `validate` defaults to True), "
        "and `align_floating_images` calls `cssutils.parseStyle(style)` for every `<img style>` on every "
        "transform. MRML puts an inline style on nearly every element, so the first build compiled the grammar "
        "of every property MRML uses. Validation only logs (premailer's log is silenced at CRITICAL); it never "
        "changes a parsed value.")
    add("")
    add("Fix: `render._premailer()` imports premailer once per process and gives its two modules a view of "
        "cssutils whose `parseStyle`/`parseString` never validate. premailer stays the inliner, with the same "
        "options. While premailer is imported, `requests` (which premailer imports at module level but only "
        "uses to fetch external stylesheets, which the build forbids) is a stand-in that imports the real package "
        "on first attribute access, and is removed from `sys.modules` right after, so any other `import "
        "requests` gets the real one. Effect in this run: first transform "
        f"{_med(un.get('inline CSS (premailer)'))} → {_med(st.get('inline CSS (premailer)'))}, import "
        f"{_med(un.get('import premailer (cssutils, lxml, requests)'))} → "
        f"{_med(st.get('import premailer (cssutils, lxml, requests)'))}. The HTML is byte-for-byte the same: "
        "checked by this bench on every run, by `pytest -k 'render or build'`, and once by hand on an edition "
        "with five images (where the `<img style>` path matters).")
    add("")

    bm = b.get("build_vs_mjml")
    _heading(add, f"### `newsletter build` against the MJML CLI ({'met' if _ok(bm) and bm['median'] <= 0.5 else 'target missed: what bounds it'})")
    add(f"The official CLI here is MJML {r['peers']['mjml']} run directly: {_med(proc.get('mjml CLI'))} for the "
        "whole Node process (MJML 4.15.3, measured once by hand, took 0.33 s; starting it through `npx` adds "
        f"~0.25 s: {_med(proc.get('npx mjml (the same CLI as the MJML docs start it)'))} in this run). The "
        "issue's orientation figure of about 1.2 s is not what this machine shows, so 0.6x of it means about "
        f"{_med({'n': 1, 'median': proc['mjml CLI']['median'] * 0.6}) if _ok(proc.get('mjml CLI')) else 'n/a'} "
        "for all of `newsletter build`.")
    add("")
    add(f"`newsletter build` spends {_med({'n': 1, 'median': imports})} importing its stack before any work "
        f"(the stage table above: click, pydantic with the edition model, PyYAML, Jinja2, markdown-it, Babel, "
        f"premailer with cssutils and lxml, the checks), plus {_med(proc.get('python -c pass'))} starting the "
        f"interpreter: {_share(imports, proc)} of the MJML CLI's whole run before any work. The first build then pays first-use costs a warm "
        f"rebuild does not: templates {_med(st.get('templates (Jinja2, Markdown, dates; email + web)'))} cold vs "
        f"{_med(_get(b, 'warm_stages', 'templates (Jinja2, Markdown, dates; email + web)'))} warm (Jinja2 loads the "
        "compiled templates from its bytecode cache, Babel loads its locale data), and the offline checks "
        f"{_med(st.get('offline checks (build prints them)'))}. MRML itself takes "
        f"{_med(st.get('MJML -> HTML (MRML; email + web)'))} for both documents.")
    add("")
    add("What was done about it (issue 15):")
    add("")
    add("- **Jinja2 bytecode cache** (`compose/render.bytecode_cache()`: `jinja2.FileSystemBytecodeCache` in the "
        "user's cache folder from platformdirs): a new process loads the compiled templates instead of compiling "
        "them (Jinja checks each template's source, so an edited template is compiled anew).")
    add("- **Markdown is parsed once per distinct text** (`compose/markdown.py` caches the tokens keyed on (text, "
        "allow_html), shared by the HTML, the plain text, the loader's link check and the checks).")
    add("- **No email_validator in `build` and `check`**: their mailto: links are checked with the standard "
        "library (`check/links.address_problem`); email_validator is loaded by `send` and `recipients` only.")
    add("- **No interpreter teardown**: after a success `main()` flushes the output and ends with `os._exit(0)` "
        "(one place, `cli.main`); a failure exits the normal way.")
    add("")
    add("What is left is the stack itself: pydantic (the edition model's classes are built at import), premailer "
        "with cssutils and lxml, Babel's locale data, and starting Python.")
    add("")

    wb = b.get("warm_build")
    hr = b.get("help_vs_python")
    both = _ok(wb) and wb["median"] < 0.05 and _ok(hr) and hr["median"] < 1.8
    _heading(add, f"### Warm rebuild and `newsletter --help` ({'met' if both else 'see the summary'})")
    add(f"A warm `build()` takes {_med(b.get('warm_build'))}; the preview server also runs the offline checks per "
        f"save, {_med(b.get('warm_edited'))} together, of which the checks "
        f"{_med(_get(b, 'warm_stages', 'offline checks (build prints them)'))} (their Markdown comes from the "
        "parse cache, see above). `newsletter --help` imports click and the CLI module only (every command imports "
        f"its heavy modules inside its function): {_med(proc.get('newsletter --help'))} against "
        f"{_med(proc.get('python -c pass'))} for an empty interpreter "
        f"({fmt_ratio(hr) if _ok(hr) else 'n/a'}, side by side). `import click` alone costs about as much again as "
        "starting Python (measured by hand: 2.1x of `python -c pass`), so under 1.8x is out of reach while the "
        "command line is click.")
    add("")

    ratios = [_get(t, "ratios", k) for k in ("newsletter (1) vs mailmerge", "newsletter (1) vs bare loop",
                                             "newsletter (3) vs bare loop")]
    goals = [3, 0.8, 1.0000001]
    missed = [d is None or not _ok(d) or d["median"] < g for d, g in zip(ratios, goals)]
    code = r.get("code", {})
    _heading(add, f"### Send throughput ({'met' if not any(missed) else 'targets missed: what bounds them below'})")
    nagle = sec.get(NAGLE_NAME)
    bare = sec.get("bare smtplib loop (1 connection, TCP_NODELAY)")
    ph = t.get("send_phase_seconds", {})
    add("Before the changes below (the run of 2026-11-26 17:18 UTC) `newsletter send` reached 0.52x the bare loop "
        "with one connection and 0.55x with three; side by side by hand the sending phase of 1,000 messages took "
        "1.24–1.31 s against the bare loop's 0.88–0.91 s. What was done, in the order of the profile "
        "(py-spy on the sending thread, 1,000 messages against the bench sink):")
    add("")
    add(f"1. **Nagle's algorithm against delayed ACKs** ({'fixed earlier: `mailer.py` sets `TCP_NODELAY`' if code.get('mailer_sets_nodelay') else 'open'}). "
        "smtplib does not set `TCP_NODELAY`; each message's last partial TCP segment then waits for the server's "
        "delayed ACK (up to 40 ms on Linux): "
        f"the bare loop shows it alone, {_med(nagle, fmt_rate)} with smtplib's defaults against {_med(bare, fmt_rate)} "
        "with `TCP_NODELAY` (before that fix `newsletter send` ran at 40 messages/s).")
    add(f"2. **Dot-stuffing** ({'fixed' if code.get('mailer_dot_regex') is False else _state(code, 'mailer_dot_regex')}, `mailer._dot_stuffed`). "
        "`re.sub(rb\"(?m)^\\.\", ...)` has no literal for the regex engine to scan for, so it is tried at every "
        "byte: 330 µs per 102 KB message (27 % of the sending thread; smtplib's own `_quote_periods`, which the "
        "bare loop pays in `sendmail`, is the same regex). The proposed shortcut (`b\"\\n.\" in data`, then "
        "`bytes.replace`) would not have been enough: the example edition's messages do have lines starting with "
        "a dot (a quoted-printable soft line break can fall just before a '.'; three per message), and "
        "`bytes.replace` takes 146 µs. Now: the leading dot checked by hand and `rb\"\\n\\.\"` (a literal the engine "
        "scans for quickly) substituted: 36 µs, byte-for-byte what the old regex gives (checked against it on "
        "20,000 random inputs, and against the aiosmtpd test server with a lone `.` line, a dot as the very first "
        "byte and no final line break: `test_dot_stuffing_reaches_the_server_intact`).")
    add(f"3. **The build fingerprint per message** ({'fixed' if code.get('fingerprint_per_call') is False else _state(code, 'fingerprint_per_call')}): "
        "`Plan.fingerprint` hashed the HTML and text for every `mark_sending` (6 % of the sending thread); now a "
        "`functools.cached_property`. With 2 and 3 the sending phase went to 0.96–1.00 s (side by side by hand).")
    add(f"4. **Four round trips per message** ({'fixed: PIPELINING' if code.get('mailer_pipelining') else 'open'}, "
        "`mailer.Connection._send_pipelined`). When the server offers PIPELINING (RFC 2920: Microsoft 365, "
        "Exchange, Postfix and this sink do), MAIL FROM, RCPT TO and DATA go in one write and their three replies "
        "are read in order: two round trips a message instead of four. The order of events the journal relies "
        "on is unchanged: the message goes only after the server's 354, and only after its `sending` mark is on "
        "disk. A refusal of MAIL or RCPT is reported as before (a quota reply followed by a hang-up still stops the "
        "send as a quota); a DATA accepted after a refused RCPT (which RFC 2920 forbids) is ended empty. Servers "
        "without PIPELINING get the one-by-one exchange as before; the fault tests run both ways. Sending phase "
        "side by side by hand: 0.65–0.67 s against the bare loop's 0.86–0.87 s; against a real server 10–30 ms "
        "away, where round trips are the cost, it roughly halves the time per message on each connection.")
    add("5. **The fsync per message is kept.** `journal.mark_sending` is committed durably at the 354 point, "
        "before the message goes out, and nothing is marked ahead of its own transaction: a recipient is "
        "`uncertain` after a crash only if its process died with its message in flight. Measured by hand: "
        "0.17–0.25 ms for each durable mark and 0.02 ms for the unsynced `sent` mark. A group commit (marks from "
        "several connections waiting at the same moment sharing one fsync) was tried and measured no faster "
        "here, so it was left out; the journal now only skips re-issuing `PRAGMA synchronous` when unchanged.")
    add("6. **The interpreter's exit** (fixed, `cli.send`). From the sink's last message to the end of the "
        "process took 55–85 ms, most of it the garbage collection Python runs at exit over every object of the "
        "modules a send imports (pydantic, lxml, Babel, ...). The send command now calls `gc.freeze()` once "
        "everything is written, closed and unlocked: 14–16 ms (measured by hand).")
    add("")
    add(f"What bounds the figures now. The whole `newsletter send` process also starts Python, imports its stack, "
        f"builds the edition (the same work as `newsletter build`, section 1), reads and validates the recipients "
        f"and creates the journal before the first message: about {fmt_time(_startup(t))} outside the sending "
        f"phase in this run, against about "
        f"{fmt_time(_med_num(t, 'bare smtplib loop (1 connection, TCP_NODELAY)'))} for the bare loop, which only "
        "starts Python and reads a file of finished messages; that start-up (imports and the build, bounded as "
        "section 1 explains; validating 1,000 addresses is ~22 ms of it) is what keeps the one-connection "
        "whole-process ratio below the sending-phase ratio. The sender process is CPU-bound: measured by hand "
        "with `wait4`, about 0.8 s of CPU (user ~0.6 s, system ~0.2 s: TLS, the socket copies, the fsyncs) for "
        "about 1.05 s of wall time, while the sink takes the other core. So with "
        "`SEND_CONNECTIONS=3` on this 2-core machine the three connections share one core's worth of the "
        "sender's Python and TLS work; their gain over one connection is small here "
        f"({_med(ph.get('newsletter send (SEND_CONNECTIONS=3)'))} against "
        f"{_med(ph.get('newsletter send (1 connection)'))} for the sending phase) and would be large against a "
        "real server, where each connection mostly waits for replies.")
    add("")
    pz = _get(s, "personalisation", "for_recipient")
    add(f"Personalisation ({'met' if _ok(pz) and pz['median'] < 0.001 else 'missed or not measured'}): `for_recipient` splices pre-encoded quoted-printable pieces, so one message costs "
        f"{_med(_get(s, 'personalisation', 'for_recipient'), fmt_us)} against "
        f"{_med(_get(s, 'personalisation', 'stdlib_email_per_message'), fmt_us)} for building it with the standard "
        "library's email package (whose quoted-printable encoder is pure Python).")
    add("")
    mr = _get(s, "memory", "ratio")
    mem_ok = _ok(mr) and mr["median"] <= 1.2
    add(f"Memory ({'met' if mem_ok else 'missed'}{': fixed in `recipients.py`/`send.py`' if code.get('recipients_streamed') else ''}). "
        + MEMORY_TEXT +
        f" In this run (dry run, section 4): {_med(_get(s, 'memory', 'rss_kib', '1000'), fmt_kib)} at 1,000 and "
        f"{_med(_get(s, 'memory', 'rss_kib', str(_get(s, 'memory', 'big') or 50000)), fmt_kib)} at "
        f"{_get(s, 'memory', 'big') or 50000:,}; a real send: section 2b.")
    add("")
    rl = s.get("rate") or {}
    rate_ok = "max_in_6s" in rl and 57 <= rl["max_in_6s"] <= 60
    _heading(add, f"### Rate limiting ({'met: fixed in `ratelimit.py`' if rate_ok else 'the scaled check missed: cause in `ratelimit.py`'})")
    if rate_ok:
        add("`RateLimiter` used to be only a 60-second sliding window: it let `SEND_RATE` messages go as fast as "
            "the connection allowed, then waited (the run of 2026-11-26 17:18 UTC: all 600 in the first second, "
            "600 in one 6-s window). It now also paces: never sooner than `window / rate` after the previous send "
            "(100 ms at 600/min, 2 s at the default 30/min), still never more than `rate` in any window. Over "
            f"{rl.get('run_seconds', 20):.0f} s the sender was paced: at most {rl.get('max_in_6s')} messages in any 6 s and "
            f"{rl.get('max_in_60s')} in any 60 s ({rl.get('sent')} sent).")
        add("")
    elif "max_in_6s" not in rl:
        add("Not measured in this run.")
        add("")
    else:
        add("`RateLimiter` is an exact 60-second sliding window: it lets `SEND_RATE` messages go as fast as the "
            "connection allows, then waits until the oldest leaves the window. It never exceeds 600 in any 60 s "
            f"(here: {rl.get('max_in_60s', 'n/a')}), which is what a provider such as Microsoft 365 enforces, but over "
            f"20 s it sent {rl.get('sent', 'n/a')} messages with up to {rl.get('max_in_6s', 'n/a')} in one 6-s window "
            "(with `TCP_NODELAY`, all 600 go within a second or two). **Fix**: pace as well as cap: never send sooner than `window / rate` after the "
            "previous send (100 ms at 600/min, 2 s at the default 30/min), e.g. in `_wait_locked` also return "
            "`last + window / rate - now` when positive. That keeps every 60-s window at or under the limit and "
            "gives 60 in any 6 s (the scaled target), and is kinder to a provider's throttling than a burst of 30 "
            "followed by a minute of silence.")
        add("")
    if p and "save_to_reloaded" in p:
        pv = p["save_to_reloaded"]
        _heading(add, f"### Preview ({'met' if _ok(pv) and pv['median'] < 1 else 'missed'})")
        add(f"Save to both frames showing the change: {_med(p['save_to_reloaded'])}, of which the rebuild with "
            f"checks {_med(p.get('server_rebuild_reported'))}; the rest is the file watcher (watchfiles, grouping "
            "changes for up to 400 ms) and the page reloading itself and its two frames. The Markdown fix above "
            "would shorten the rebuild part.")
        add("")
    return L


NAGLE_NAME = "bare smtplib loop (1 connection, smtplib defaults; 200 messages, scaled)"
RUNNING = [
    "## Running it",
    "",
    "`make bench` (about 5 minutes; `--quick` in `bench/run.py` for a shorter run). It installs the MJML CLI with "
    "npm and mailmerge with pip into `bench/.peers/` (gitignored) on first use, and headless Chromium from "
    "Debian via `make chromium`. Raw numbers: `bench/.results/latest.json`; `bench/run.py --from-json FILE` "
    "rewrites this page from them.",
    "",
]


def _did_not_run(add, errors: dict | None, label: str) -> None:
    """One line per benchmark that failed, with the last line of its error."""
    for name, err in (errors or {}).items():
        add(f"- **{label.format(name)}:** `{err.strip().splitlines()[-1][:400]}`")
    if errors:
        add("")


def _heading(add, title: str) -> None:
    add(title)
    add("")
