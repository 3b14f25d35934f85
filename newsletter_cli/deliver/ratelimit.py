"""A rate limit shared by all connections: never more than `rate` sends in any `window` seconds.

Sends are also spread evenly (one every `window / rate` seconds) instead of a burst of `rate` followed by
a long pause: servers such as Microsoft 365 count per minute, and a steady pace never trips them.
`shared_limiter` keeps the limit per sending account across processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import filelock

from newsletter_cli.settings import Settings


class RateLimiter:
    """`acquire()` blocks until one more send keeps the last `window` seconds at or under `rate`
    and at least `window / rate` seconds have passed since the previous send.

    The clock and the sleep are injectable, so tests run with a fake clock. rate 0 means no limit.
    """

    def __init__(self, rate: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate, self.window = rate, window
        self.clock, self.sleep = clock, sleep
        self.spacing = window / rate if rate > 0 else 0.0
        self._sent: deque[float] = deque()
        self._lock: threading.Lock | threading.RLock = threading.Lock()

    def wait_time(self) -> float:
        """Seconds until the next send is allowed (0 when it is allowed now)."""
        with self._lock:
            return self._wait_locked(self.clock())

    def _wait_locked(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        paced = self._sent[-1] + self.spacing - now if self._sent else 0.0
        full = self._sent[0] + self.window - now if len(self._sent) >= self.rate else 0.0
        return max(paced, full, 0.0)

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a slot and take it; False when `stop` was set while waiting."""
        if self.rate <= 0:
            return not (stop and stop.is_set())
        while True:
            if stop is not None and stop.is_set():
                return False
            wait = self._take()
            if wait <= 0:
                return True
            self.sleep(min(wait, 1.0) if stop is not None else wait)

    def _take(self) -> float:
        """Take a slot if one is free now (returns 0), else return the seconds to wait."""
        with self._lock:
            now = self.clock()
            wait = self._wait_locked(now)
            if wait <= 0:
                self._sent.append(now)
            return wait

    def seconds_for(self, count: int) -> float:
        """Roughly how long `count` sends take at this rate (for the summary)."""
        if self.rate <= 0 or count <= 1:
            return 0.0
        return (count - 1) * self.spacing


class SharedRateLimiter(RateLimiter):
    """The same limit, shared by every process that sends from one account (two editions at once, or a send
    and a test send): the recent send times live in a small file, read and written under a file lock that
    works on every platform. Wall-clock times, since monotonic clocks are not comparable between processes."""

    def __init__(self, rate: int, path: Path, window: float = 60.0):
        super().__init__(rate, window, clock=time.time)
        self._lock = threading.RLock()
        self.path = path
        self.file_lock = filelock.FileLock(str(path) + ".lock")

    def _load(self) -> deque[float]:
        try:
            times = json.loads(self.path.read_text(encoding="utf-8"))
            return deque(sorted(float(t) for t in times))
        except (OSError, ValueError, TypeError):
            return deque()  # no file yet, or damaged: start afresh (this process still paces itself)

    def _save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(list(self._sent)), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass  # the shared state is a courtesy to other processes; this one keeps its own pace

    def _take(self) -> float:
        with self._lock, self.file_lock:
            self._sent = self._load()
            wait = super()._take()  # the base class's lock is re-entered: it is an RLock here
            if wait <= 0:
                self._save()
            return wait


def state_dir(override: Path | None = None) -> Path:
    """Where the per-account send times live: the user's data folder, or `override` (cli.py passes
    NEWSLETTER_STATE_DIR)."""
    if override is not None:
        return override
    import platformdirs

    return Path(platformdirs.user_data_dir("newsletter", appauthor=False))


def shared_limiter(settings: Settings, folder: Path | None = None) -> RateLimiter:
    """SEND_RATE for the sending account (server and login), shared across processes where possible; its
    state lives in `state_dir(folder)`."""
    if settings.send_rate <= 0:
        return RateLimiter(0)
    account = f"{settings.smtp_host}:{settings.smtp_port}:{settings.smtp_username or settings.from_address}"
    rates = state_dir(folder) / "rate"
    try:
        rates.mkdir(parents=True, exist_ok=True)
    except OSError:
        return RateLimiter(settings.send_rate)
    name = hashlib.sha256(account.lower().encode("utf-8")).hexdigest()[:16]
    return SharedRateLimiter(settings.send_rate, rates / f"{name}.json")
