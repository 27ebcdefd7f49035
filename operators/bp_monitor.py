"""``BpMonitor``: a patient's blood pressure class by guideline, from repeated readings.

The guideline tables and ``classify`` are in ``operators.bp``; this is the per-patient
streaming operator (under the operator contract) that pairs a cuff's systolic and
diastolic readings into measurements, keeps a window of them, and classifies their mean
once there are enough readings on enough occasions.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vitalstream.model import Quality, Reading
from vitalstream.operators.bp import (GUIDELINES, BpClass, category_rank, classify,
                                      classify_means, guideline_named)
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.signals import Signal, finite_number

NS = 1_000_000_000

# The grade from which a rise alerts: ACC/AHA stage 2, China and ESC/ESH grade 2. Stage 1 /
# grade 1 is managed in clinic (lifestyle, repeat measurement); these call for drug treatment
# and review without delay. One reading above the crisis threshold is the
# ``hypertensive_crisis`` rule's job: it must not wait for a mean over occasions.
DEFAULT_ALERT_FROM: dict[str, str | None] = {"acc-aha-2017": "stage-2", "china-2018": "grade-2",
                                             "esc-esh-2018": "grade-2"}

_BP_SIGNALS = (Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC)
# The same policy as News2 and the rules: an artefact or special value is not a measurement,
# and a back-filled or replayed reading is not live (never alerted on).
_IGNORED_QUALITY = int(Quality.MOTION_ARTEFACT | Quality.SPECIAL_VALUE | Quality.HISTORICAL)

Key = tuple[str, str, int]  # Reading.dedup_key(): (device, signal, event_ns)
Measurement = tuple[int, str, float, float]  # (event_ns, device, systolic, diastolic)


@dataclass(frozen=True, slots=True)
class BpContext:
    """The guideline for one patient from ``event_ns`` on (the site's is the config's).

    The context with the newest ``event_ns`` holds, whatever order contexts arrive in; it
    does not expire. An unknown guideline is refused here, where it is made, rather than
    ignored in the stream.
    """

    patient: str
    event_ns: int
    guideline: str

    def __post_init__(self) -> None:
        guideline_named(self.guideline)

    def __deepcopy__(self, memo: dict) -> "BpContext":
        return self


@dataclass(frozen=True, slots=True)
class BpResult:
    """The class changed, or was first given.

    ``bp`` is ``None`` when a class given before lapses: the window no longer holds
    ``min_readings`` measurements on ``min_occasions`` occasions (old ones dropped out), so
    the last class is not to be shown as current. ``occasions`` counts the window's.
    """

    patient: str
    event_ns: int  # the patient's event time when the class changed
    bp: BpClass | None
    occasions: int

    def __deepcopy__(self, memo: dict) -> "BpResult":
        return self


@dataclass(frozen=True, slots=True)
class BpAlert:
    """The class rose into the guideline's alert category (``alert_from``) or above it.

    ``previous`` is the class before, read under ``guideline`` (``None``: no class was
    given, or it had lapsed).
    """

    patient: str
    event_ns: int
    category: str
    previous: str | None
    guideline: str
    sbp_mean: float
    dbp_mean: float

    def __deepcopy__(self, memo: dict) -> "BpAlert":
        return self


@dataclass
class BpMonitorState:
    # The systolic and diastolic readings of the window by dedup key, so a re-sent reading
    # is one entry. Readings, not measurements: which readings pair is decided afresh from
    # the set (see ``pair``), so a late partner cannot be paired differently by arrival order.
    readings: dict[Key, float] = field(default_factory=dict)
    now_ns: int | None = None  # newest event time of a reading or context used
    guideline: tuple[int, str] | None = None  # (event_ns, name) of the newest BpContext
    last: BpClass | None = None  # the class at the last re-reading; None: no class given


@dataclass(frozen=True, slots=True)
class BpMonitor:
    """Config of the per-patient blood pressure operator: the class of the mean of repeated
    measurements, never of one.

    Items are ``Reading`` of ``bp_systolic`` and ``bp_diastolic`` (other signals, readings
    flagged ``MOTION_ARTEFACT``, ``SPECIAL_VALUE`` or ``HISTORICAL``, and non-finite values
    are ignored) and ``BpContext`` (the patient's guideline).

    - Measurement: a systolic and a diastolic reading of the same device at most
      ``pair_within_s`` apart (cuffs send both with one timestamp, in either order). Each
      reading pairs once, nearest partner first; the measurement's time is the earlier of
      the two. A reading without a partner is not a measurement.
    - Window: the measurements of the last ``window_s`` of event time (older than
      ``now - window_s`` drop out, and their readings are freed: the state is bounded by
      the window).
    - Occasions: an occasion starts at the first measurement more than ``occasion_gap_s``
      after the start of the one before, so measurements more than that apart are
      different occasions (guidelines: >= 2 readings on >= 2 occasions).
    - Class: ``classify`` of the mean of the window's measurements, once it holds
      ``min_readings`` measurements on ``min_occasions`` occasions. Before that nothing is
      output (no provisional class: a screening value is what this operator exists to
      avoid); a class given before that lapses is retracted with ``BpResult(bp=None)``.
    - ``BpResult`` when the class (guideline and category) changes; ``BpAlert`` before it
      when the class rises to ``alert_from[guideline]`` or above (again on each further
      rise; not while it stays, nor on a fall). A guideline switch re-reads the same means:
      it gives a ``BpResult`` but never an alert by itself, as the pressure did not rise.

    Hypertensive crisis is not this operator's job: the ``hypertensive_crisis`` rule
    alerts on one reading, at once. (A mean above ACC/AHA's crisis threshold is classed
    ``crisis`` here too, days later, as a confirmation.)

    Time is the data's, as in ``News2``: no timers, measurements drop out when a later item
    of the patient arrives, and results follow arrival order (feed it after the patient's
    reorder buffer). The class is re-read on a reading that may complete a measurement (a
    partner is there) and on a ``BpContext``; a reading still waiting for its partner moves
    the time but gives no result, so a pair arriving one reading at a time gives one. What
    it computes does not depend on arrival order: readings are paired, sorted and averaged
    from the set in the window, and a re-sent reading (same device, signal and event time)
    counts once; the first one stays, as in ``Dedup``.
    State is the window's readings: made for cuff readings (a few a day), not for an
    arterial line at 1 Hz.

    >>> from vitalstream.operators.contract import drive
    >>> DAY = 86400 * NS
    >>> def cuff(t, sbp, dbp):
    ...     return [Reading("p1", "cuff", Signal.BP_SYSTOLIC, sbp, "mm[Hg]", t, t),
    ...             Reading("p1", "cuff", Signal.BP_DIASTOLIC, dbp, "mm[Hg]", t, t)]
    >>> drive(BpMonitor().build(key="p1"), cuff(0, 142, 85))   # one measurement: no class
    []
    >>> alert, result = drive(BpMonitor().build(key="p1"), cuff(0, 142, 85) + cuff(DAY, 138, 83))
    >>> alert.category, alert.previous, (alert.sbp_mean, alert.dbp_mean)
    ('stage-2', None, (140.0, 84.0))
    >>> result.bp.category, result.bp.n_readings, result.occasions
    ('stage-2', 2, 2)
    >>> [r.bp.category for r in drive(BpMonitor("esc-esh-2018").build(key="p1"),
    ...                                cuff(0, 142, 85) + cuff(DAY, 138, 83))]   # no alert
    ['grade-1']
    """

    guideline: str = "acc-aha-2017"  # the site's; a BpContext overrides it per patient
    window_s: float = 7 * 86400
    min_readings: int = 2  # measurements (systolic/diastolic pairs)
    min_occasions: int = 2
    occasion_gap_s: float = 3600
    pair_within_s: float = 120
    # guideline -> the category from which a rise alerts (None: never); merged over the
    # defaults, so naming one guideline keeps the others'
    alert_from: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ALERT_FROM))

    def __post_init__(self) -> None:
        guideline_named(self.guideline)
        for name in ("min_readings", "min_occasions"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a whole number >= 1, got {v!r}")
        if finite_number("window_s", self.window_s) <= 0:
            raise ValueError(f"window_s: expected > 0, got {self.window_s!r}")
        for name in ("occasion_gap_s", "pair_within_s"):
            if finite_number(name, getattr(self, name)) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")
        if self.min_occasions >= 2 and self.occasion_gap_s >= self.window_s:
            # two measurements more than the gap apart never fit in the window: no class, ever
            raise ValueError(f"occasion_gap_s ({self.occasion_gap_s!r}) must be shorter than "
                             f"window_s ({self.window_s!r}) for {self.min_occasions} occasions")
        for g, cat in self.alert_from.items():
            guideline_named(g, "guideline in alert_from")
            if cat is not None:
                category_rank(g, cat)  # a misspelt category would never alert

    def build(self, resume_state: BpMonitorState | None = None, *,
              key: str = "") -> "BpMonitorLogic":
        return BpMonitorLogic(self, resume_state if resume_state is not None else BpMonitorState(),
                              key)


def pair(readings: Mapping[Key, float], within_ns: int) -> list[Measurement]:
    """Measurements from systolic and diastolic readings, in time order: per device, the
    closest systolic/diastolic pairs at most ``within_ns`` apart first (ties: the earlier),
    each reading used once. A function of the set alone, so of no arrival order.

    >>> s, d = Signal.BP_SYSTOLIC.value, Signal.BP_DIASTOLIC.value
    >>> pair({("c", s, 0): 140.0, ("c", d, 0): 90.0, ("c", s, 100): 150.0}, 120)
    [(0, 'c', 140.0, 90.0)]
    """
    return [m[:4] for m in pair_keyed(readings, within_ns)]


KeyedMeasurement = tuple[int, str, float, float, Key, Key]  # + the systolic and diastolic keys


def pair_keyed(readings: Mapping[Key, float], within_ns: int) -> list[KeyedMeasurement]:
    """``pair``, with the keys of the two readings of each measurement."""
    by_device: dict[str, tuple[list[tuple[int, float, Key]], list[tuple[int, float, Key]]]] = {}
    for k, v in readings.items():
        device, signal, t = k
        sys_, dia = by_device.setdefault(device, ([], []))
        (sys_ if signal == Signal.BP_SYSTOLIC.value else dia).append((t, v, k))
    out: list[KeyedMeasurement] = []
    for device, (sys_, dia) in by_device.items():
        sys_.sort()
        dia.sort()
        candidates = []
        lo = 0
        for i, (ts, _, _) in enumerate(sys_):
            while lo < len(dia) and dia[lo][0] < ts - within_ns:
                lo += 1
            j = lo
            while j < len(dia) and dia[j][0] <= ts + within_ns:
                candidates.append((abs(dia[j][0] - ts), ts, dia[j][0], i, j))
                j += 1
        candidates.sort()
        used_s: set[int] = set()
        used_d: set[int] = set()
        for _, ts, td, i, j in candidates:
            if i not in used_s and j not in used_d:
                used_s.add(i)
                used_d.add(j)
                out.append((min(ts, td), device, sys_[i][1], dia[j][1], sys_[i][2], dia[j][2]))
    out.sort(key=lambda m: m[:4])
    return out


def _occasions_at_least(ms: Sequence[KeyedMeasurement], gap_ns: int, n: int) -> bool:
    """``count_occasions(times) >= n``, stopping as soon as it is."""
    k, start = 0, None
    for m in ms:
        t = m[0]
        if start is None or t - start > gap_ns:
            k, start = k + 1, t
            if k >= n:
                return True
    return k >= n


def count_occasions(times_ns: Sequence[int], gap_ns: int) -> int:
    """Occasions among sorted measurement times: one starts at the first time more than
    ``gap_ns`` after the start of the one before.

    >>> H = 3600
    >>> count_occasions([0, 60, 50 * 60, 65 * 60, 24 * H], H)   # 0-50 min, 65 min, next day
    3
    """
    n, start = 0, None
    for t in times_ns:
        if start is None or t - start > gap_ns:
            n, start = n + 1, t
    return n


class BpMonitorLogic(Stateless[BpMonitorState]):
    """The state is the window's readings; the rest is derived and rebuilt on resume: an
    expiry heap, per device and signal the sorted reading times, and the measurements.

    Pairing is local: readings more than ``pair_within`` apart are never candidates, so a
    reading that arrives after all others of its device (the usual case) can only change
    the pairing of the readings within ``pair_within`` of it. That part is paired again and
    the rest of the measurements kept; anything else (a late reading in the middle, a
    measurement losing one reading to the window) pairs the whole window again, so the
    measurements always equal ``pair_keyed`` of the window's readings."""

    def __init__(self, cfg: BpMonitor, st: BpMonitorState, key: str) -> None:
        self.cfg, self.st, self.key = cfg, st, key
        self._window_ns = int(cfg.window_s * NS)
        self._gap_ns = int(cfg.occasion_gap_s * NS)
        self._pair_ns = int(cfg.pair_within_s * NS)
        self._alert_from = {**DEFAULT_ALERT_FROM, **cfg.alert_from}
        self._expiry = sorted((k[2], k) for k in st.readings)  # a heap: sorted is one
        self._times: dict[tuple[str, str], list[int]] = {}
        for k in st.readings:
            self._times.setdefault((k[0], k[1]), []).append(k[2])
        for v in self._times.values():
            v.sort()
        self._ms: list[KeyedMeasurement] | None = None  # None: pair the window again
        self._by_key: dict[Key, KeyedMeasurement] = {}

    def guideline(self) -> str:
        return self.cfg.guideline if self.st.guideline is None else self.st.guideline[1]

    def _advance(self, t: int) -> bool:
        """Move the patient's event time to ``t`` if later; drop what left the window."""
        st = self.st
        if st.now_ns is not None and t <= st.now_ns:
            return False
        st.now_ns = t
        horizon = t - self._window_ns
        dropped: set[Key] = set()
        while self._expiry and self._expiry[0][0] <= horizon:
            _, k = heapq.heappop(self._expiry)
            if st.readings.pop(k, None) is not None:
                dropped.add(k)
                times = self._times[(k[0], k[1])]
                del times[bisect.bisect_left(times, k[2])]
        if dropped and self._ms is not None:
            gone = {self._by_key[k] for k in dropped if k in self._by_key}
            if any(m[4] not in dropped or m[5] not in dropped for m in gone):
                self._ms = None  # a reading lost its partner: it may pair with another
            elif gone:
                self._ms = [m for m in self._ms if m not in gone]
                for m in gone:
                    del self._by_key[m[4]], self._by_key[m[5]]
        return True

    def _near(self, device: str, signal: str, t: int, lo: int, hi: int) -> list[int]:
        times = self._times.get((device, signal), [])
        return times[bisect.bisect_left(times, t + lo):bisect.bisect_right(times, t + hi)]

    def _insert(self, key: Key, value: float) -> bool:
        """Store a reading; True if it has a partner (a measurement may have changed)."""
        st, w = self.st, self._pair_ns
        device, signal, t = key
        other = (Signal.BP_DIASTOLIC if signal == Signal.BP_SYSTOLIC.value
                 else Signal.BP_SYSTOLIC).value
        partnered = bool(self._near(device, other, t, -w, w))
        st.readings[key] = value
        heapq.heappush(self._expiry, (t, key))
        bisect.insort(self._times.setdefault((device, signal), []), t)
        if not partnered or self._ms is None:
            return partnered  # no candidate involves it: the pairing is unchanged
        sigs = (Signal.BP_SYSTOLIC.value, Signal.BP_DIASTOLIC.value)
        later = any(self._near(device, s_, t, w + 1, 1 << 62) for s_ in sigs)
        chained = any(self._near(device, s_, t, -2 * w, -w - 1) for s_ in sigs)
        if later or chained:
            self._ms = None
            return True
        part = {(device, s_, u): st.readings[(device, s_, u)]
                for s_ in sigs for u in self._near(device, s_, t, -w, w)}
        old = {self._by_key[k] for k in part if k in self._by_key}
        for m in old:
            del self._by_key[m[4]], self._by_key[m[5]]
        ms = [m for m in self._ms if m not in old] if old else self._ms
        for m in pair_keyed(part, w):
            bisect.insort(ms, m, key=lambda x: x[:4])
            self._by_key[m[4]] = self._by_key[m[5]] = m
        self._ms = ms
        return True

    def measurements(self) -> list[KeyedMeasurement]:
        if self._ms is None:
            self._ms = pair_keyed(self.st.readings, self._pair_ns)
            self._by_key = {}
            for m in self._ms:
                self._by_key[m[4]] = self._by_key[m[5]] = m
        return self._ms

    def on_item(self, item: Reading | BpContext) -> Emit:
        st = self.st
        if isinstance(item, BpContext):
            if item.guideline not in GUIDELINES:
                return [], RETAIN  # bypassed validation (e.g. an old pickle): not evidence
            choice = (item.event_ns, item.guideline)
            switched = st.guideline is None or choice > st.guideline
            if switched:
                st.guideline = choice
            if not (self._advance(item.event_ns) or switched):
                return [], RETAIN
        elif isinstance(item, Reading):
            if (item.signal not in _BP_SIGNALS or int(item.quality) & _IGNORED_QUALITY
                    or not math.isfinite(item.value)):
                return [], RETAIN
            key = item.dedup_key()
            if key in st.readings:
                return [], RETAIN  # re-sent: the first stays, as Dedup keeps the first
            if st.now_ns is not None and item.event_ns <= st.now_ns - self._window_ns:
                return [], RETAIN  # already outside the window
            partnered = self._insert(key, float(item.value))
            self._advance(item.event_ns)
            if not partnered:
                # Completes no measurement: the time (and window) moved, but the class is
                # re-read only with a measurement, so the systolic arriving just before its
                # diastolic cannot flicker the class (a lapse, then back).
                return [], RETAIN
        else:
            return [], RETAIN
        assert st.now_ns is not None  # _advance set it, or an earlier item did
        return self._evaluate(item.patient, st.now_ns)

    def _evaluate(self, patient: str, now: int) -> Emit:
        st, cfg = self.st, self.cfg
        ms = self.measurements()
        cls = None
        if len(ms) >= cfg.min_readings and _occasions_at_least(ms, self._gap_ns, cfg.min_occasions):
            cls = classify_means(sum(m[2] for m in ms) / len(ms), sum(m[3] for m in ms) / len(ms),
                                 len(ms), self.guideline())
        prev, st.last = st.last, cls  # kept every time: a switch re-reads the current means
        if (prev is None and cls is None) or (
                prev is not None and cls is not None
                and (prev.guideline, prev.category) == (cls.guideline, cls.category)):
            return [], RETAIN
        out: list[Any] = []
        if cls is not None:
            alert = self._alert(patient, now, cls, prev)
            if alert is not None:
                out.append(alert)
        out.append(BpResult(patient, now, cls, count_occasions([m[0] for m in ms], self._gap_ns)))
        return out, RETAIN

    def _alert(self, patient: str, now: int, cls: BpClass,
               prev: BpClass | None) -> BpAlert | None:
        threshold = self._alert_from.get(cls.guideline)
        if threshold is None:
            return None
        rank = category_rank(cls.guideline, cls.category)
        if rank < category_rank(cls.guideline, threshold):
            return None
        before = None
        if prev is not None:
            # ranks compare within one guideline: a previous class under another guideline
            # is re-read under this one from its means
            before = prev.category if prev.guideline == cls.guideline else classify(
                [(prev.sbp_mean, prev.dbp_mean)], cls.guideline).category
            if category_rank(cls.guideline, before) >= rank:
                return None
        return BpAlert(patient, now, cls.category, before, cls.guideline,
                       cls.sbp_mean, cls.dbp_mean)

    def snapshot(self) -> BpMonitorState:
        return snapshot_of(self.st)
