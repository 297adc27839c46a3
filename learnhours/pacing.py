"""Keeping requests apart: a portal asks for a pause between requests, a mail server for at most
so many messages a second. One pacer for both; the clock and the sleep are injectable for tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Pacer:
    """`wait()` before each request keeps request starts at least `interval` seconds apart, also
    when several threads share it (a mail server's connections side by side: its limit is on
    the sender, so one pacer for all of them)."""

    def __init__(
        self, interval: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None
        # Held while sleeping: the next thread's start is counted from this one's.
        self._lock = threading.Lock()

    @classmethod
    def per_second(
        cls, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Pacer:
        return cls(1.0 / rate if rate else 0.0, clock, sleep)

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            if self._next_at is not None and now < self._next_at:
                self._sleep(self._next_at - now)
                now = max(self._clock(), self._next_at)
            self._next_at = now + self.interval
