"""Experiment outcomes per exposed patient, from the stream (``OutcomeTracker``) or in batch.

An ``Exposure`` starts a patient's outcome window for each metric: the readings of the
metric's signal with ``exposed_ns < event_ns <= exposed_ns + horizon_ns`` (strictly after
the exposure, up to and including the horizon's end). When the window has closed the
outcome is one ``OutcomeRecord``. The metrics:

- ``MeasuredWithin(signal, within_s)``: 1.0 if any reading fell in the window, else 0.0;
- ``TrendAfter(signal, days)``: the ordinary least-squares slope of value on time, in the
  signal's unit per day; ``None`` unless the readings fall on at least 2 different days
  after exposure (day ``k`` is ``[exposed + k d, exposed + (k+1) d)``);
- ``TimeInRange(signal, low, high, days)``: the fraction of readings with
  ``low <= value <= high``; ``None`` without readings.

Both implementations compute these exactly (rational arithmetic, one rounding at the end),
so the streaming figures equal the batch ones bit for bit whatever the arrival order.

Duplicates: a reading is identified by ``Reading.dedup_key()`` (device, signal, event
time); a patient's exposure to an experiment by (experiment, patient), the earliest
``(at_ns, variant)`` winning if two ever disagree.

>>> from vitalstream.care import Exposure
>>> from vitalstream.model import Reading
>>> from vitalstream.signals import Signal
>>> D = 86_400 * 10**9
>>> ev = [Exposure("bp-reminder", "sms", "p1", "bp-missing", 0)]
>>> ev += [Reading("p1", "cuff", Signal.BP_SYSTOLIC, v, "mm[Hg]", k * D + 3600 * 10**9, 0)
...        for k, v in enumerate((150.0, 148.0, 146.0))]
>>> [(r.metric, r.value) for r in batch_outcomes(ev, (MeasuredWithin(), TrendAfter()))]
[('measured_within_86400s:bp_systolic', 1.0), ('trend_30d:bp_systolic', -2.0)]
>>> out = drive(OutcomeTracker(metrics=(MeasuredWithin(), TrendAfter())).build(key="p1"), ev)
>>> sorted((r.metric, r.value) for r in out)
[('measured_within_86400s:bp_systolic', 1.0), ('trend_30d:bp_systolic', -2.0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence, Union

from vitalstream.care import Exposure
from vitalstream.model import Reading
from vitalstream.operators.contract import DISCARD, RETAIN, Emit, drive, earliest, snapshot_of  # noqa: F401

NS = 1_000_000_000
DAY_NS = 86_400 * NS


# -- metric definitions (shared by both implementations: constants only) --


@dataclass(frozen=True)
class MeasuredWithin:
    """Binary: did the patient measure ``signal`` within ``within_s`` after exposure."""

    signal: str = "bp_systolic"
    within_s: int = 86_400
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"measured_within_{self.within_s}s:{self.signal}")

    @property
    def horizon_ns(self) -> int:
        return self.within_s * NS


@dataclass(frozen=True)
class TrendAfter:
    """OLS slope of ``signal`` (unit per day) over ``days`` after exposure."""

    signal: str = "bp_systolic"
    days: int = 30
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"trend_{self.days}d:{self.signal}")

    @property
    def horizon_ns(self) -> int:
        return self.days * DAY_NS


@dataclass(frozen=True)
class TimeInRange:
    """Fraction of ``signal`` readings in ``[low, high]`` over ``days`` after exposure."""

    signal: str = "glucose"
    low: float = 70.0
    high: float = 180.0
    days: int = 14
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name",
                               f"time_in_range_{self.low:g}-{self.high:g}_{self.days}d:{self.signal}")

    @property
    def horizon_ns(self) -> int:
        return self.days * DAY_NS


Metric = Union[MeasuredWithin, TrendAfter, TimeInRange]
DEFAULT_METRICS: tuple[Metric, ...] = (MeasuredWithin(), TrendAfter(), TimeInRange())


@dataclass(slots=True, frozen=True)
class OutcomeRecord:
    """One patient's outcome on one metric. ``closed_ns`` is the end of the outcome window
    (``exposed_ns + horizon``, event time): the same however late the stream closed it."""

    experiment: str
    variant: str
    patient: str
    metric: str
    value: float | None
    exposed_ns: int
    closed_ns: int

    def __deepcopy__(self, memo: dict) -> "OutcomeRecord":
        return self

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "variant": self.variant, "patient": self.patient,
                "metric": self.metric, "value": self.value, "exposed_ns": self.exposed_ns,
                "closed_ns": self.closed_ns}


def _signal_of(r: Reading) -> str:
    return getattr(r.signal, "value", r.signal)


# -- streaming --


@dataclass(frozen=True)
class OutcomeTracker:
    """Config of the streaming outcome operator (key: patient).

    ``experiment``: only that experiment's exposures (None: all). ``lateness_s``: how late
    an item may arrive (behind the newest event time, or behind the runtime clock at
    ``on_notify``) and still count; a window closes once the watermark (newest time minus
    the lateness) is past its end. Items later than that are dropped: an exposure whose
    time is behind the watermark, or a reading whose window has already closed.
    """

    metrics: tuple[Metric, ...] = DEFAULT_METRICS
    experiment: str | None = None
    lateness_s: int = 3600

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"outcome metrics need distinct names, got {names!r}")

    @property
    def lateness_ns(self) -> int:
        return self.lateness_s * NS

    def build(self, resume_state: "OutcomeState | None" = None, *, key: str = "") -> "OutcomeLogic":
        return OutcomeLogic(self, resume_state or OutcomeState(), key)


@dataclass
class OutcomeState:
    newest_ns: int | None = None  # newest event time or runtime clock seen
    # (signal, device, event_ns) -> value, for the signals the metrics use
    readings: dict[tuple[str, str, int], float] = field(default_factory=dict)
    exposures: dict[str, Exposure] = field(default_factory=dict)  # experiment -> exposure
    closed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # experiment -> metrics done
    prune_at: int = 64  # prune the readings when they outgrow this (amortised O(1) per item)


class OutcomeLogic:
    def __init__(self, cfg: OutcomeTracker, st: OutcomeState, key: str) -> None:
        self.cfg, self.st, self.key = cfg, st, key
        self._signals = {m.signal for m in cfg.metrics}
        self._max_h = max(m.horizon_ns for m in cfg.metrics)
        # the newest reading time kept (notify_at asks it at every call: kept, not scanned)
        self._newest_r = max((k[2] for k in st.readings), default=None)

    def _watermark(self) -> int | None:
        n = self.st.newest_ns
        return None if n is None else n - self.cfg.lateness_ns

    def _advance(self, t: int) -> None:
        if self.st.newest_ns is None or t > self.st.newest_ns:
            self.st.newest_ns = t

    def on_item(self, item: Exposure | Reading) -> Emit:
        st, wm = self.st, self._watermark()
        if isinstance(item, Exposure):
            if self.cfg.experiment is not None and item.experiment != self.cfg.experiment:
                return [], RETAIN
            if wm is not None and item.at_ns < wm:
                return [], RETAIN  # later than the lateness allows (or a re-send of a closed one)
            old = st.exposures.get(item.experiment)
            if old is None or (item.at_ns, item.variant) < (old.at_ns, old.variant):
                st.exposures[item.experiment] = item
            self._advance(item.at_ns)
        elif isinstance(item, Reading):
            sig = _signal_of(item)
            if sig in self._signals:
                k = (sig, item.device, item.event_ns)
                if k not in st.readings:
                    st.readings[k] = item.value
                    if self._newest_r is None or item.event_ns > self._newest_r:
                        self._newest_r = item.event_ns
            self._advance(item.event_ns)
        else:
            return [], RETAIN
        return self._close(False, len(st.readings) > st.prune_at), RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        self._advance(now_ns)
        out = self._close(False, True)
        st = self.st
        return out, DISCARD if not st.exposures and not st.readings else RETAIN

    def notify_at(self) -> int | None:
        st, lat = self.st, self.cfg.lateness_ns
        # a window's end plus the lateness has passed on the clock (strictly: an item
        # arriving exactly then still counts)
        due = [e.at_ns + m.horizon_ns + lat + 1 for x, e in st.exposures.items()
               for m in self.cfg.metrics if m.name not in st.closed.get(x, ())]
        if not st.exposures and st.readings:
            # readings older than the watermark can serve no future exposure: drop them then
            due.append(self._newest_r + lat)
        return earliest(*due)

    def on_eof(self) -> Emit:
        return self._close(True, True), RETAIN

    def snapshot(self) -> OutcomeState:
        return snapshot_of(self.st)

    def _close(self, flush: bool, prune: bool) -> list[OutcomeRecord]:
        st, wm, out = self.st, self._watermark(), []
        for x in sorted(st.exposures):
            e = st.exposures[x]
            done = st.closed.get(x, ())
            for m in self.cfg.metrics:
                end = e.at_ns + m.horizon_ns
                if m.name in done or not (flush or (wm is not None and wm > end)):
                    continue
                vals = [(t, v) for (s, _, t), v in st.readings.items()
                        if s == m.signal and e.at_ns < t <= end]
                out.append(OutcomeRecord(e.experiment, e.variant, self.key or e.patient, m.name,
                                         _stream_value(m, e.at_ns, vals), e.at_ns, end))
                done = done + (m.name,)
            if len(done) == len(self.cfg.metrics):
                del st.exposures[x]
                st.closed.pop(x, None)
            elif done:
                st.closed[x] = done
        # prune readings no window can use: older than every open exposure and the watermark
        if wm is not None and (prune or out):
            floor = min([wm] + [e.at_ns for e in st.exposures.values()])
            for k in [k for k in st.readings if k[2] <= floor]:
                del st.readings[k]
            self._newest_r = max((k[2] for k in st.readings), default=None)
            st.prune_at = max(64, 2 * len(st.readings))
        return out


def _stream_value(m: Metric, exposed_ns: int, vals: list[tuple[int, float]]) -> float | None:
    """The metric over one window, from running sums (exact rationals)."""
    if isinstance(m, MeasuredWithin):
        return 1.0 if vals else 0.0
    if isinstance(m, TimeInRange):
        if not vals:
            return None
        inside = sum(1 for _, v in vals if m.low <= v <= m.high)
        return inside / len(vals)
    days = {(t - exposed_ns) // DAY_NS for t, _ in vals}
    if len(days) < 2:
        return None
    n, sx, sy, sxx, sxy = 0, Fraction(0), Fraction(0), Fraction(0), Fraction(0)
    for t, v in vals:
        x, y = Fraction(t - exposed_ns, DAY_NS), Fraction(v)
        n += 1
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
    return float((n * sxy - sx * sy) / (n * sxx - sx * sx))


# -- batch (written apart from the streaming code: it checks it) --


def batch_outcomes(events: Iterable[object], metrics: Sequence[Metric] = DEFAULT_METRICS,
                   experiment: str | None = None, until_ns: int | None = None) -> list[OutcomeRecord]:
    """Every exposure's outcomes over the full list of events, sorted by
    (experiment, patient, metric); with ``until_ns``, only windows ended by then."""
    exposures: dict[tuple[str, str], Exposure] = {}
    seen: set[tuple[str, str, int]] = set()
    by_patient: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for x in events:
        if isinstance(x, Exposure):
            if experiment is not None and x.experiment != experiment:
                continue
            k = (x.experiment, x.patient)
            if k not in exposures or (x.at_ns, x.variant) < (exposures[k].at_ns, exposures[k].variant):
                exposures[k] = x
        elif isinstance(x, Reading):
            if x.dedup_key() in seen:
                continue
            seen.add(x.dedup_key())
            by_patient.setdefault((x.patient, _signal_of(x)), []).append((x.event_ns, x.value))
    out = []
    for (_, patient), e in exposures.items():
        for m in metrics:
            end = e.at_ns + m.horizon_ns
            if until_ns is not None and end > until_ns:
                continue
            window = [(t, v) for t, v in by_patient.get((patient, m.signal), [])
                      if t > e.at_ns and t <= end]
            out.append(OutcomeRecord(e.experiment, e.variant, patient, m.name,
                                     _batch_value(m, e.at_ns, window), e.at_ns, end))
    out.sort(key=lambda r: (r.experiment, r.patient, r.metric))
    return out


def _batch_value(m: Metric, e: int, window: list[tuple[int, float]]) -> float | None:
    if isinstance(m, MeasuredWithin):
        return float(len(window) > 0)
    if isinstance(m, TimeInRange):
        if len(window) == 0:
            return None
        return len([v for _, v in window if v >= m.low and v <= m.high]) / len(window)
    if len({int((t - e) // DAY_NS) for t, _ in window}) < 2:
        return None
    # centred form of the slope, exactly: sum((x - mx)(y - my)) / sum((x - mx)^2)
    xs = [Fraction(t - e, DAY_NS) for t, _ in window]
    ys = [Fraction(v) for _, v in window]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    den = sum((x - mx) ** 2 for x in xs)
    return float(num / den)


# -- per variant --


@dataclass(frozen=True)
class VariantSummary:
    """A variant's outcomes on one metric: ``n`` patients with a value (``missing``: None),
    mean, sample standard deviation (ddof 1) and a Student-t CI of the mean."""

    variant: str
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    missing: int = 0


def summarise(records: Iterable[OutcomeRecord], metric: str | None = None,
              alpha: float = 0.05) -> dict[str, VariantSummary]:
    """Per variant (sorted by name): n, mean, sd and the (1 - alpha) t-interval of the mean.

    ``metric`` picks one metric; without it the records must hold one metric only.

    >>> rs = [OutcomeRecord("x", v, f"p{i}", "m", y, 0, 1)
    ...       for i, (v, y) in enumerate([("a", 1.0), ("a", 3.0), ("b", 2.0), ("b", None)])]
    >>> s = summarise(rs)
    >>> s["a"].n, s["a"].mean, round(s["a"].sd, 4), s["b"].missing
    (2, 2.0, 1.4142, 1)
    """
    from scipy import stats as st

    recs = [r for r in records if metric is None or r.metric == metric]
    if metric is None and len({r.metric for r in recs}) > 1:
        raise ValueError("records of several metrics: name the one to summarise")
    by: dict[str, list[float | None]] = {}
    for r in recs:
        by.setdefault(r.variant, []).append(r.value)
    out = {}
    for v in sorted(by):
        ys = [y for y in by[v] if y is not None]
        n = len(ys)
        mean = math.fsum(ys) / n if n else math.nan
        sd = math.sqrt(math.fsum((y - mean) ** 2 for y in ys) / (n - 1)) if n > 1 else math.nan
        half = st.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
        out[v] = VariantSummary(v, n, mean, sd, mean - half, mean + half, len(by[v]) - n)
    return out
