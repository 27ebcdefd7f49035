"""Clocks injected into operators.

Operators never read the wall clock themselves: they ask a ``Clock``. Runtimes
pass ``SystemClock``; tests pass ``FakeClock`` and move time by hand, so a
window that must close "when the patient goes silent" is tested in microseconds.

``EventClock`` is the watermark source used by windows and rules: event time
advances with the newest event seen and, between events, with the runtime's
clock, so windows of a silent patient still close (the same rule as bytewax's
EventClock). Neither clock here reads the system clock: the runtime hands its
time in, which is what makes operators replayable.
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
    """Event-time "now": newest event time seen, plus runtime-clock time elapsed since it arrived.

    It never reads a clock: the caller passes the runtime clock's time (``wall_ns``),
    normally the reading's *receive* time, because a reading that waited in a queue
    behind a backlog did not arrive late and must not be judged by when it was
    processed. Without a wall time (``None``) no time is taken to have passed.

    >>> ec = EventClock()
    >>> ec.observe(10_000, wall_ns=0); ec.now_ns(0)
    10000
    >>> ec.now_ns(5)                  # silence: event time moves with the runtime clock
    10005
    >>> ec.observe(9_000, wall_ns=5); ec.now_ns(5)   # an older event does not move it back
    10005
    >>> ec.observe(10_006, wall_ns=3); ec.now_ns(3)  # received at 3, processed later
    10006
    >>> ec.wall_time_of(10_020)       # when now_ns reaches 10_020 if nothing newer comes
    17
    """

    def __init__(self, state: EventClockState | None = None) -> None:
        self.state = state if state is not None else EventClockState()

    def observe(self, event_ns: int, wall_ns: int | None = None) -> None:
        st = self.state
        if wall_ns is None:
            wall_ns = st.wall_at_max_ns
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
            wall_ns = st.wall_at_max_ns
        now = st.max_event_ns + max(0, wall_ns - st.wall_at_max_ns)
        if st.last_now_ns is not None and now < st.last_now_ns:
            return st.last_now_ns
        if commit:
            st.last_now_ns = now
        return now

    def wall_time_of(self, event_ns: int) -> int | None:
        """Runtime-clock time at which ``now_ns()`` reaches ``event_ns`` if nothing newer arrives."""
        st = self.state
        if st.max_event_ns is None:
            return None
        if st.last_now_ns is not None and st.last_now_ns >= event_ns:
            return st.wall_at_max_ns  # already reached: due at once
        return st.wall_at_max_ns + max(0, event_ns - st.max_event_ns)

    def snapshot(self) -> EventClockState:
        st = self.state
        return EventClockState(st.max_event_ns, st.wall_at_max_ns, st.last_now_ns)


class FrontierClock:
    """Runtime time as far as the data has got: the newest receive time seen, or the
    system time less ``idle_grace_ns``, whichever is later.

    Under a backlog the newest receive time lags the system clock, so timers do
    not run patients' clocks ahead of readings still queued for them; when the
    input is idle, time still moves (``idle_grace_ns`` late). A runtime that can
    tell that its sources have nothing queued passes ``caught_up``: then the
    system time counts at once, so a sparse stream's alerts are not held back.
    It is given the system time (``system_ns``); it never reads a clock.

    >>> f = FrontierClock(idle_grace_ns=30)
    >>> f.saw(100); f.now_ns(system_ns=110)     # backlog: the data's frontier
    100
    >>> f.now_ns(system_ns=200)                 # idle: system time, 30 late
    170
    >>> f.to_system(180, system_ns=200)         # frontier 180 is reached at system 210
    210
    """

    def __init__(self, idle_grace_ns: int = 0, caught_up: Callable[[], bool] | None = None) -> None:
        self.idle_grace_ns = idle_grace_ns
        self.caught_up = caught_up
        self.frontier_ns: int | None = None
        self.last_system_ns: int | None = None  # the latest system time handed in

    def saw(self, recv_ns: int) -> None:
        if self.frontier_ns is None or recv_ns > self.frontier_ns:
            self.frontier_ns = recv_ns

    def now_ns(self, system_ns: int) -> int:
        self.last_system_ns = system_ns
        sys_ns = system_ns
        if self.caught_up is None or not self.caught_up():
            sys_ns -= self.idle_grace_ns
        f = self.frontier_ns
        return sys_ns if f is None or sys_ns > f else f

    def to_system(self, wall_ns: int, system_ns: int | None = None) -> int:
        """The system time at which this clock reaches ``wall_ns`` if data keeps arriving
        at the pace of the last ``system_ns`` handed in (timers of a runtime): a runtime
        asks again, a little later, when the data has not got there yet."""
        if system_ns is None:
            system_ns = self.last_system_ns
            if system_ns is None:
                return wall_ns
        lag = system_ns - self.now_ns(system_ns)
        return wall_ns + max(0, lag)
