"""Clocks injected into operators.

Operators never read the wall clock themselves: they ask a ``Clock``. Runtimes
pass ``SystemClock``; tests pass ``FakeClock`` and move time by hand, so a
window that must close "when the patient goes silent" is tested in microseconds.

``EventClock`` is the watermark source used by windows and rules: event time
advances with the newest event seen and, between events, with wall time, so
windows of a silent patient still close (the same rule as bytewax's EventClock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass
class EventClockState:
    max_event_ns: int | None = None
    wall_at_max_ns: int = 0


class EventClock:
    """Event-time "now": newest event time seen, plus wall time elapsed since it arrived.

    >>> wall = FakeClock(0)
    >>> ec = EventClock(wall)
    >>> ec.observe(10_000); ec.now_ns()
    10000
    >>> wall.advance(5); ec.now_ns()   # silence: event time moves with the wall
    10005
    >>> ec.observe(9_000); ec.now_ns()  # an older event does not move it back
    10005
    """

    def __init__(self, wall: Clock, state: EventClockState | None = None) -> None:
        self.wall = wall
        self.state = state or EventClockState()

    def observe(self, event_ns: int) -> None:
        st = self.state
        if st.max_event_ns is None or event_ns > self.now_ns():
            st.max_event_ns = event_ns
            st.wall_at_max_ns = self.wall.now_ns()

    def now_ns(self) -> int | None:
        st = self.state
        if st.max_event_ns is None:
            return None
        return st.max_event_ns + (self.wall.now_ns() - st.wall_at_max_ns)

    def wall_time_of(self, event_ns: int) -> int | None:
        """Wall time at which ``now_ns()`` will reach ``event_ns`` if nothing newer arrives."""
        now = self.now_ns()
        if now is None:
            return None
        return self.wall.now_ns() + max(0, event_ns - now)

    def snapshot(self) -> EventClockState:
        return EventClockState(self.state.max_event_ns, self.state.wall_at_max_ns)
