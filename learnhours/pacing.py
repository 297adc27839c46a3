"""Keeping requests apart: a portal asks for a pause between requests, a mail server for at most
so many messages a second. One pacer for both; the clock and the sleep are injectable for tests."""

from __future__ import annotations

from collections.abc import Callable


class Pacer:
    """`wait()` before each request keeps request starts at least `interval` seconds apart."""

    def __init__(
        self, interval: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None

    @classmethod
    def per_second(
        cls, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Pacer:
        return cls(1.0 / rate if rate else 0.0, clock, sleep)

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self._sleep(self._next_at - now)
            now = max(self._clock(), self._next_at)
        self._next_at = now + self.interval
