"""Event-time tumbling windows with allowed lateness.

Aggregators follow the initialize/aggregate/result shape of Quix Streams: the
state is a small list, so a snapshot is cheap and pickles anywhere.

A window [start, end) closes when the patient's event clock reaches
``end + allowed_lateness``; a reading for a window that has closed is *late*:
it is still stored raw (nothing valid is lost) but no longer changes the
aggregate, which has been emitted. Readings flagged LOW_QUALITY (motion
artefact, special values) are stored raw but kept out of aggregates, so a
minute's mean is not dragged by a strap slipping. Because the event clock advances with wall
time between readings, a silent patient's windows still close on time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vitalstream.model import Quality, Reading, WindowAggregate
from vitalstream.signals import Signal

WindowKey = tuple[str, Signal, int]  # (device, signal, start_ns)


class Aggregator(Protocol):
    def initialize(self) -> list: ...
    def aggregate(self, state: list, value: float, event_ns: int) -> None: ...
    def result(self, state: list) -> dict[str, float]: ...


class VitalStats:
    """count, min, max, mean, last (value with the greatest event time).

    >>> a = VitalStats(); s = a.initialize()
    >>> for v, t in [(70.0, 2), (90.0, 1), (80.0, 3)]: a.aggregate(s, v, t)
    >>> a.result(s)
    {'count': 3, 'min': 70.0, 'max': 90.0, 'mean': 80.0, 'last': 80.0}
    """

    def initialize(self) -> list:
        # count, sum, min, max, last_event_ns, last_value
        return [0, 0.0, float("inf"), float("-inf"), -(2**63), 0.0]

    def aggregate(self, s: list, value: float, event_ns: int) -> None:
        s[0] += 1
        s[1] += value
        if value < s[2]:
            s[2] = value
        if value > s[3]:
            s[3] = value
        # `>=` would make `last` depend on arrival order for equal times; `>`
        # with a value tie-break does not.
        if event_ns > s[4] or (event_ns == s[4] and value > s[5]):
            s[4], s[5] = event_ns, value

    def result(self, s: list) -> dict[str, float]:
        return {"count": s[0], "min": s[2], "max": s[3], "mean": s[1] / s[0], "last": s[5]}


@dataclass(frozen=True, slots=True)
class TumblingWindow:
    """Config: window size and allowed lateness, in event-time nanoseconds.

    >>> w = TumblingWindow(size_ns=60, allowed_lateness_ns=10).build("p1")
    >>> from vitalstream.model import Reading
    >>> from vitalstream.signals import Signal
    >>> r = lambda t, v: Reading("p1", "d1", Signal.HEART_RATE, v, "/min", t, t)
    >>> w.on_item(r(5, 60.0), now_ns=5), w.on_item(r(59, 80.0), now_ns=59)
    (True, True)
    >>> w.close_due(now_ns=69)   # 60 + 10 not reached yet
    []
    >>> [(a.start_ns, a.count, a.mean) for a in w.close_due(now_ns=70)]
    [(0, 2, 70.0)]
    >>> w.on_item(r(30, 1.0), now_ns=71)   # its window has closed: late
    False
    """

    size_ns: int = 60 * 1_000_000_000
    allowed_lateness_ns: int = 10 * 1_000_000_000
    offset_ns: int = 0

    def window_start(self, event_ns: int) -> int:
        return event_ns - (event_ns - self.offset_ns) % self.size_ns

    def build(self, patient: str, resume_state: "WindowState | None" = None) -> "WindowLogic":
        return WindowLogic(self, patient, resume_state or WindowState())


@dataclass
class WindowState:
    open: dict[WindowKey, list] = field(default_factory=dict)
    seen: dict[WindowKey, set[int]] = field(default_factory=dict)


class WindowLogic:
    aggregator: Aggregator = VitalStats()

    def __init__(self, cfg: TumblingWindow, patient: str, state: WindowState) -> None:
        self.cfg = cfg
        self.patient = patient
        self.state = state

    def on_item(self, r: Reading, now_ns: int) -> bool:
        """Add a reading; False if it is late (its window has already closed)."""
        cfg = self.cfg
        start = cfg.window_start(r.event_ns)
        if start + cfg.size_ns + cfg.allowed_lateness_ns <= now_ns:
            return False
        if r.quality & Quality.LOW_QUALITY:
            return True
        key = (r.device, r.signal, start)
        st = self.state.open.get(key)
        if st is None:
            st = self.state.open[key] = self.aggregator.initialize()
            self.state.seen[key] = set()
        seen = self.state.seen[key]
        if r.event_ns in seen:  # a duplicate that reached us by another path
            return True
        seen.add(r.event_ns)
        self.aggregator.aggregate(st, r.value, r.event_ns)
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
            res = self.aggregator.result(self.state.open.pop(key))
            del self.state.seen[key]
            device, signal, start = key
            out.append(WindowAggregate(self.patient, signal, start, start + cfg.size_ns,
                                       res["count"], res["min"], res["max"], res["mean"],
                                       res["last"], device=device))
        return out

    def __len__(self) -> int:
        return len(self.state.open)

    def snapshot(self) -> WindowState:
        return WindowState({k: list(v) for k, v in self.state.open.items()},
                           {k: set(v) for k, v in self.state.seen.items()})
