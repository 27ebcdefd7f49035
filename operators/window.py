"""Event-time tumbling windows with allowed lateness, and composable aggregators.

An aggregator is a small object with ``initialize() -> acc``, ``aggregate(acc,
value, event_ns) -> acc`` and ``result(acc) -> number`` (the shape of Quix
Streams' windows). A window holds one accumulator per aggregator *by name*, so
adding a percentile or a time-in-range is one more entry in ``aggregators``,
never an edit of a positional list.

A window [start, end) closes when the patient's event clock reaches
``end + allowed_lateness``; a reading for a window that has closed is *late*:
it is still stored raw (nothing valid is lost) but no longer changes the
aggregate, which has been emitted. Readings flagged LOW_QUALITY (motion
artefact, special values) are stored raw but kept out of aggregates, so a
minute's mean is not dragged by a strap slipping. Because the event clock
advances with the runtime's clock between readings, a silent patient's windows
still close on time.

Out of order and duplicates: any order inside the lateness gives the same
aggregate (min, max, sum and count commute; ``last`` is the value with the
greatest event time, ties broken by value), and a reading seen twice in a window
(same device, signal and event time) counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from vitalstream.model import Quality, Reading, WindowAggregate
from vitalstream.operators.clock import EventClock, EventClockState
from vitalstream.operators.contract import RETAIN, Emit, snapshot_of
from vitalstream.operators.dedup import Dedup, DedupState
from vitalstream.signals import Signal

WindowKey = tuple[str, Signal, int]  # (device, signal, start_ns)


class Aggregator(Protocol):
    def initialize(self) -> Any: ...
    def aggregate(self, acc: Any, value: float, event_ns: int) -> Any: ...
    def result(self, acc: Any) -> float | int: ...


class Count:
    def initialize(self) -> int:
        return 0

    def aggregate(self, acc: int, value: float, event_ns: int) -> int:
        return acc + 1

    def result(self, acc: int) -> int:
        return acc


class Min:
    def initialize(self) -> float:
        return float("inf")

    def aggregate(self, acc: float, value: float, event_ns: int) -> float:
        return value if value < acc else acc

    def result(self, acc: float) -> float:
        return acc


class Max:
    def initialize(self) -> float:
        return float("-inf")

    def aggregate(self, acc: float, value: float, event_ns: int) -> float:
        return value if value > acc else acc

    def result(self, acc: float) -> float:
        return acc


class Mean:
    def initialize(self) -> tuple[int, float]:
        return (0, 0.0)

    def aggregate(self, acc: tuple[int, float], value: float, event_ns: int) -> tuple[int, float]:
        return (acc[0] + 1, acc[1] + value)

    def result(self, acc: tuple[int, float]) -> float:
        return acc[1] / acc[0]


class Last:
    """The value with the greatest event time; equal times keep the larger value, so the
    result does not depend on arrival order."""

    def initialize(self) -> tuple[int, float]:
        return (-(2**63), 0.0)

    def aggregate(self, acc: tuple[int, float], value: float, event_ns: int) -> tuple[int, float]:
        if event_ns > acc[0] or (event_ns == acc[0] and value > acc[1]):
            return (event_ns, value)
        return acc

    def result(self, acc: tuple[int, float]) -> float:
        return acc[1]


class TimeInRange:
    """Share of readings (0..1) with ``low <= value <= high``, e.g. glucose 70-180 mg/dL
    (International Consensus on Time in Range, Battelino et al., Diabetes Care 2019)."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def initialize(self) -> tuple[int, int]:
        return (0, 0)

    def aggregate(self, acc: tuple[int, int], value: float, event_ns: int) -> tuple[int, int]:
        return (acc[0] + (self.low <= value <= self.high), acc[1] + 1)

    def result(self, acc: tuple[int, int]) -> float:
        return acc[0] / acc[1]


VITAL_STATS: Mapping[str, Aggregator] = {
    "count": Count(), "min": Min(), "max": Max(), "mean": Mean(), "last": Last()}


@dataclass(frozen=True)
class TumblingWindow:
    """Config: window size and allowed lateness, in event-time nanoseconds.

    >>> w = TumblingWindow(size_ns=60, allowed_lateness_ns=10).build(key="p1")
    >>> from vitalstream.model import Reading
    >>> from vitalstream.signals import Signal
    >>> r = lambda t, v: Reading("p1", "d1", Signal.HEART_RATE, v, "/min", t, t)
    >>> w.on_item(r(5, 60.0)), w.on_item(r(59, 80.0))
    (([], False), ([], False))
    >>> w.notify_at()            # runtime time at which 60 + 10 is reached
    70
    >>> w.on_notify(69)[0]
    []
    >>> [(a.start_ns, a.count, a.mean) for a in w.on_notify(70)[0]]
    [(0, 2, 70.0)]
    >>> w.on_item(r(30, 1.0))[0], w.state.late     # its window has closed: late
    ([], 1)
    """

    size_ns: int = 60 * 1_000_000_000
    allowed_lateness_ns: int = 10 * 1_000_000_000
    offset_ns: int = 0
    aggregators: Mapping[str, Aggregator] = field(default_factory=lambda: dict(VITAL_STATS))

    def window_start(self, event_ns: int) -> int:
        return event_ns - (event_ns - self.offset_ns) % self.size_ns

    def dedup(self) -> Dedup:
        """Remembers readings as long as a window they fall in can be open."""
        return Dedup(self.size_ns + self.allowed_lateness_ns, self.size_ns, store_keys=True)

    def build(self, resume_state: "WindowState | None" = None, *, key: str = "",
              clock: EventClock | None = None, dedup: bool = True) -> "WindowLogic":
        """``clock``: a host that owns the key's event clock (the patient) shares it;
        standalone, the window keeps its own in its state. ``dedup=False``: the host
        has already dropped duplicates."""
        return WindowLogic(self, key, resume_state or WindowState(), clock, dedup)


@dataclass
class WindowState:
    open: dict[WindowKey, dict[str, Any]] = field(default_factory=dict)  # name -> accumulator
    seen: DedupState = field(default_factory=DedupState)
    late: int = 0
    clock: EventClockState = field(default_factory=EventClockState)  # standalone use only


class WindowLogic:
    def __init__(self, cfg: TumblingWindow, patient: str, state: WindowState,
                 clock: EventClock | None = None, dedup: bool = True) -> None:
        self.cfg = cfg
        self.patient = patient
        self.state = state
        self.clock = clock if clock is not None else EventClock(state.clock)
        self.dedup = cfg.dedup().build(state.seen) if dedup else None
        self._aggs = tuple(cfg.aggregators.items())

    # -- the operator contract (standalone: the window owns its event clock) --

    def on_item(self, r: Reading) -> Emit:
        at = r.recv_ns if r.recv_ns > 0 else None
        self.clock.observe(r.event_ns, at)
        now = self.clock.now_ns(at, commit=True)
        if not self.add(r, now):
            self.state.late += 1
        return self.close_due(now), RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        now = self.clock.now_ns(now_ns, commit=True)
        return ([] if now is None else self.close_due(now)), RETAIN

    def notify_at(self) -> int | None:
        close = self.next_close_ns()
        return None if close is None else self.clock.wall_time_of(close)

    def on_eof(self) -> Emit:
        now = self.clock.now_ns()
        return self.close_due(0 if now is None else now, all_=True), RETAIN

    def snapshot(self) -> WindowState:
        return snapshot_of(self.state)

    # -- what a host with its own clock calls --

    def add(self, r: Reading, now_ns: int) -> bool:
        """Add a reading; False if it is late (its window has already closed)."""
        cfg = self.cfg
        start = cfg.window_start(r.event_ns)
        if start + cfg.size_ns + cfg.allowed_lateness_ns <= now_ns:
            return False
        if self.dedup is not None and self.dedup.seen_before(r.dedup_key()):
            return True  # a duplicate that reached us by another path
        if r.quality and r.quality & Quality.LOW_QUALITY:
            return True
        key = (r.device, r.signal, start)
        accs = self.state.open.get(key)
        if accs is None:
            accs = self.state.open[key] = {n: a.initialize() for n, a in self._aggs}
        value, t = r.value, r.event_ns
        for name, agg in self._aggs:
            accs[name] = agg.aggregate(accs[name], value, t)
        return True

    def next_close_ns(self) -> int | None:
        """Event time at which the earliest open window closes."""
        if not self.state.open:
            return None
        cfg = self.cfg
        return min(k[2] for k in self.state.open) + cfg.size_ns + cfg.allowed_lateness_ns

    def close_due(self, now_ns: int, *, all_: bool = False) -> list[WindowAggregate]:
        cfg = self.cfg
        horizon = now_ns - cfg.size_ns - cfg.allowed_lateness_ns
        due = [k for k in self.state.open if all_ or k[2] <= horizon]
        due.sort(key=lambda k: (k[2], k[1].value, k[0]))
        out = []
        for key in due:
            accs = self.state.open.pop(key)
            device, signal, start = key
            values = {n: a.result(accs[n]) for n, a in self._aggs}
            out.append(WindowAggregate(self.patient, signal, start, start + cfg.size_ns, values,
                                       device=device, partial=start > horizon))
        return out

    def __len__(self) -> int:
        return len(self.state.open)
