"""Clocks: what operators are given instead of reading the wall clock.

Runtimes pass ``SystemClock``; tests pass ``FakeClock`` and move time by hand,
so a window that must close "when the patient goes silent" is tested in
microseconds. Event-time clocks built on these live in ``vitalstream.operators.clock``.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int: ...


class SystemClock:
    """Wall-clock time in integer nanoseconds (UTC epoch)."""

    def now_ns(self) -> int:
        return time.time_ns()


class FakeClock:
    """A clock that moves only when told to.

    >>> c = FakeClock(1_000)
    >>> c.advance(500); c.now_ns()
    1500
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, delta_ns: int) -> None:
        if delta_ns < 0:
            raise ValueError("a clock does not go backwards")
        self._now += delta_ns

    def set(self, now_ns: int) -> None:
        if now_ns < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = now_ns
