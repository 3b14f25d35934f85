"""Shared helpers: robust statistics, interleaved timing of whole processes, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NEWSLETTER = str(VENV_BIN / "newsletter")


@dataclass
class Sample:
    """Several measurements of one thing (seconds, bytes, ... as `unit` says)."""

    values: list[float] = field(default_factory=list)
    unit: str = "s"

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def as_dict(self) -> dict:
        return {"median": self.median, "min": self.low, "max": self.high, "n": len(self.values),
                "unit": self.unit, "values": self.values}


def fmt_time(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "n/a"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_sample(sample: Sample | dict, fmt=fmt_time) -> str:
    d = sample.as_dict() if isinstance(sample, Sample) else sample
    if not d["n"]:
        return "n/a"
    return f"{fmt(d['median'])} ({fmt(d['min'])}–{fmt(d['max'])}, n={d['n']})"


def ratio_sample(a: Sample, b: Sample) -> Sample:
    """Per-round ratios a/b of two interleaved samples (the same round ran both back to back)."""
    return Sample([x / y for x, y in zip(a.values, b.values) if y], unit="x")


def fmt_ratio(sample: Sample | dict) -> str:
    d = sample.as_dict() if isinstance(sample, Sample) else sample
    if not d["n"]:
        return "n/a"
    return f"{d['median']:.2f}x ({d['min']:.2f}–{d['max']:.2f})"


def time_process(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                 check: bool = True, input: bytes | None = None, own_rss: bool = False) -> tuple[float, int]:
    """Wall time of one whole process and its peak RSS in KiB (ru_maxrss from wait4).

    Linux carries a process's peak RSS across fork and exec, so a child of this (large) bench process reports
    at least the bench's own RSS when it was started. With `own_rss` the command is started from a small
    launcher (`python -S`, a few MiB), which forks and execs it and passes back its ru_maxrss: the command's
    own peak (what the memory figures use; the launcher's start-up is then part of the wall time).
    """
    read_fd = write_fd = None
    if own_rss:
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-S", "-c", _LAUNCHER, str(write_fd), *map(str, cmd)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_fd,) if own_rss else ())
    if own_rss:
        os.close(write_fd)
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    peak = usage.ru_maxrss
    if own_rss:
        with os.fdopen(read_fd, "rb") as fh:
            peak = int(fh.read() or b"0")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}: {stderr.decode(errors='replace')[-2000:]}")
    return elapsed, peak


_LAUNCHER = """
import os, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def interleave(commands: dict[str, callable], rounds: int, warmup: int = 1) -> dict[str, Sample]:
    """Run each callable (returning seconds) once per round, alternating the order every round, so that
    background load on this shared machine hits all peers alike. Warm-up rounds are discarded."""
    names = list(commands)
    samples = {name: Sample() for name in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            value = commands[name]()
            if r >= warmup:
                samples[name].add(value)
    return samples


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "platform": platform.platform(), "load": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
