"""A rate limit shared by all connections: never more than `rate` sends in any `window` seconds.

Sends are also spread evenly (one every `window / rate` seconds) instead of a burst of `rate` followed by
a long pause: servers such as Microsoft 365 count per minute, and a steady pace never trips them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


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
        self._lock = threading.Lock()

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
            with self._lock:
                now = self.clock()
                wait = self._wait_locked(now)
                if wait <= 0:
                    self._sent.append(now)
                    return True
            self.sleep(min(wait, 1.0) if stop is not None else wait)

    def seconds_for(self, count: int) -> float:
        """Roughly how long `count` sends take at this rate (for the summary)."""
        if self.rate <= 0 or count <= 1:
            return 0.0
        return (count - 1) * self.spacing
