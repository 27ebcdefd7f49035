"""Clocks injected into operators.

Operators never read the wall clock themselves: they ask a ``Clock``. Runtimes
pass ``SystemClock``; tests pass ``FakeClock`` and move time by hand, so a
window that must close "when the patient goes silent" is tested in microseconds.

``EventClock`` is the watermark source used by windows and rules: event time
advances with the newest event seen and, between events, with wall time, so
windows of a silent patient still close (the same rule as bytewax's EventClock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vitalstream.clock import Clock, FakeClock, SystemClock

__all__ = ["Clock", "EventClock", "EventClockState", "FakeClock", "FrontierClock", "SystemClock"]


@dataclass
class EventClockState:
    max_event_ns: int | None = None
    wall_at_max_ns: int = 0
    last_now_ns: int | None = None  # never report an earlier "now" than once reported


class EventClock:
    """Event-time "now": newest event time seen, plus wall time elapsed since it arrived.

    The wall time of an observation is the reading's *receive* time when the
    caller passes it: a reading that waited in a queue behind a backlog did not
    arrive late, and must not be judged by when it was processed.

    >>> wall = FakeClock(0)
    >>> ec = EventClock(wall)
    >>> ec.observe(10_000); ec.now_ns()
    10000
    >>> wall.advance(5); ec.now_ns()   # silence: event time moves with the wall
    10005
    >>> ec.observe(9_000); ec.now_ns()  # an older event does not move it back
    10005
    >>> ec.observe(10_006, wall_ns=3); ec.now_ns(wall_ns=3)  # received at 3, processed at 5
    10006
    """

    def __init__(self, wall: Clock, state: EventClockState | None = None) -> None:
        self.wall = wall
        self.state = state or EventClockState()

    def observe(self, event_ns: int, wall_ns: int | None = None) -> None:
        st = self.state
        if wall_ns is None:
            wall_ns = self.wall.now_ns()
        # Re-anchor on every newer event, not only on events ahead of "now": a patient
        # whose readings are processed slower than real time would otherwise see its
        # clock run ahead of its own data (``now_ns`` stays monotonic either way).
        if st.max_event_ns is None or event_ns > st.max_event_ns:
            st.max_event_ns = event_ns
            st.wall_at_max_ns = max(wall_ns, st.wall_at_max_ns)

    def now_ns(self, wall_ns: int | None = None, *, commit: bool = False) -> int | None:
        """Event-time now. ``commit=True`` (callers that act on it: windows closed,
        rules released) makes it a floor for later answers; a mere query does not,
        so asking for a timer's deadline cannot change what happens next."""
        st = self.state
        if st.max_event_ns is None:
            return None
        if wall_ns is None:
            wall_ns = self.wall.now_ns()
        now = st.max_event_ns + max(0, wall_ns - st.wall_at_max_ns)
        if st.last_now_ns is not None and now < st.last_now_ns:
            return st.last_now_ns
        if commit:
            st.last_now_ns = now
        return now

    def wall_time_of(self, event_ns: int) -> int | None:
        """Wall time at which ``now_ns()`` will reach ``event_ns`` if nothing newer arrives."""
        now = self.now_ns()
        if now is None:
            return None
        return self.wall.now_ns() + max(0, event_ns - now)

    def snapshot(self) -> EventClockState:
        st = self.state
        return EventClockState(st.max_event_ns, st.wall_at_max_ns, st.last_now_ns)


class FrontierClock:
    """Wall time as far as the data has got: the newest receive time seen, or the
    system time less ``idle_grace_ns``, whichever is later.

    Under a backlog the newest receive time lags the system clock, so timers do
    not run patients' clocks ahead of readings still queued for them; when the
    input is idle, time still moves (``idle_grace_ns`` late). A runtime that can
    tell that its sources have nothing queued passes ``caught_up``: then the
    system time counts at once, so a sparse stream's alerts are not held back.
    """

    def __init__(self, system: Clock, idle_grace_ns: int = 0,
                 caught_up: Callable[[], bool] | None = None) -> None:
        self.system = system
        self.idle_grace_ns = idle_grace_ns
        self.caught_up = caught_up
        self.frontier_ns: int | None = None

    def saw(self, recv_ns: int) -> None:
        if self.frontier_ns is None or recv_ns > self.frontier_ns:
            self.frontier_ns = recv_ns

    def now_ns(self) -> int:
        sys_ns = self.system.now_ns()
        if self.caught_up is None or not self.caught_up():
            sys_ns -= self.idle_grace_ns
        f = self.frontier_ns
        return sys_ns if f is None or sys_ns > f else f

    def to_system(self, wall_ns: int) -> int:
        """The system time at which this clock reaches ``wall_ns`` (timers of a runtime)."""
        return wall_ns + (self.system.now_ns() - self.now_ns())
