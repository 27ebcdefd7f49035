"""``PatientAnomalyLogic``: all anomaly detectors of one patient, fed ``Reading``s and
``WindowAggregate``s, returning ``Score``s. Engine-free: the dataflow keys by patient
and calls it; it uses event time only and is deterministic given its seed.

- Readings: the detector configured under the reading's signal name scores it
  (score, then learn). Low-quality (``Quality.LOW_QUALITY``), non-finite and
  implausible readings are neither scored nor learned (``None`` is returned).
- Activity context: a ``steps`` reading at walking cadence (>= 60 steps/min
  over ``steps_interval_s``) marks the patient active for ``activity_window_s``
  around its event time; HR is then scored
  against the "active" baseline. A caller that knows better passes ``ctx``.
- Day/night: ``period(event_ns)``, by default ``DayNight()`` (UTC 07-22 = day).
- Window aggregates: a univariate detector also scores the window mean against
  a separate baseline (key ``<signal>@window``: a mean of many readings varies
  less than one reading). ``hst`` detectors receive one vector per window: the
  means of their features, scored when all features of the window have come
  or when a later window starts (``flush()`` scores what is pending).

>>> from vitalstream.model import Reading
>>> from vitalstream.signals import Signal
>>> from vitalstream.operators.anomaly.ewz import EwZScore
>>> logic = PatientAnomalyLogic("p1", {"heart_rate": EwZScore("heart_rate", warmup_n=5)})
>>> def hr(v, t_s): return Reading("p1", "d1", Signal.HEART_RATE, v, "/min", t_s * 10**9, t_s * 10**9)
>>> [logic.on_reading(hr(v, 43200 + 60 * i)).explanation.warmup for i, v in enumerate([70, 72, 71, 69, 70, 71])]
[True, True, True, True, True, False]
>>> s = logic.on_reading(hr(130.0, 43200 + 600))
>>> s.is_anomaly, s.explanation.context
(True, 'rest/day')
>>> logic.on_reading(Reading("p1", "d1", Signal.STEPS, 95.0, "count", (43200 + 630) * 10**9, 0))
>>> logic.on_reading(hr(130.0, 43200 + 660)).explanation.context   # walking: other baseline
'active/day'
"""

from __future__ import annotations

import hashlib
import math
from typing import Mapping

from vitalstream.errors import IdentityError
from vitalstream.model import NS_PER_S, Quality, Reading, WindowAggregate
from vitalstream.operators.anomaly.base import Detector, DetectorConfig, plausible
from vitalstream.operators.anomaly.score import ACTIVE, REST, Context, DayNight, \
    PeriodClassifier, Score

WINDOW_SUFFIX = "@window"


def _seed(seed: int, patient: str, key: str) -> int:
    # Python's hash() of a str changes per process; blake2b does not.
    digest = hashlib.blake2b(f"{seed}|{patient}|{key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


class PatientAnomalyLogic:
    def __init__(self, patient: str, detectors: Mapping[str, DetectorConfig], *,
                 period: PeriodClassifier = DayNight(), activity_window_s: float = 300.0,
                 active_cadence_per_min: float = 60.0, steps_interval_s: float = 60.0,
                 seed: int = 0, resume_state: dict | None = None) -> None:
        self.patient = patient
        self.configs = dict(detectors)
        self.period = period
        self.activity_window_ns = int(activity_window_s * NS_PER_S)
        # Walking, not fidgeting: cadence >= 60 steps/min is "slow walking" in
        # Tudor-Locke et al. 2018 (Br J Sports Med 52:776); a few steps a minute
        # must not move a patient onto the exercise baseline.
        self.active_steps = active_cadence_per_min * steps_interval_s / 60.0
        self.seed = seed
        self._dets: dict[str, Detector] = {}
        self._last_active_ns: int | None = None
        # hst name -> [start_ns, end_ns, {feature: mean}, active]
        self._pending: dict[str, list] = {}
        if resume_state is not None:
            self._last_active_ns = resume_state["last_active_ns"]
            self._pending = {k: [a, b, dict(c), d]
                             for k, (a, b, c, d) in resume_state["pending"].items()}
            for key, st in resume_state["detectors"].items():
                self._dets[key] = self._config_of(key).build(st, seed=_seed(seed, patient, key))

    def _config_of(self, key: str) -> DetectorConfig:
        return self.configs[key.removesuffix(WINDOW_SUFFIX)]

    def _detector(self, key: str) -> Detector:
        det = self._dets.get(key)
        if det is None:
            det = self._dets[key] = self._config_of(key).build(
                seed=_seed(self.seed, self.patient, key))
        return det

    def _active(self, start_ns: int, end_ns: int) -> bool:
        last = self._last_active_ns
        w = self.activity_window_ns
        return last is not None and start_ns - w <= last <= end_ns + w

    def context(self, event_ns: int) -> Context:
        """The context a reading at ``event_ns`` is scored in."""
        return Context(ACTIVE if self._active(event_ns, event_ns) else REST,
                       self.period(event_ns))

    def _mark_active(self, event_ns: int) -> None:
        if self._last_active_ns is None or event_ns > self._last_active_ns:
            self._last_active_ns = event_ns

    def on_reading(self, r: Reading, ctx: Context | None = None) -> Score | None:
        if r.patient != self.patient:
            raise IdentityError("anomaly", r.device, "wrong_patient",
                                f"{r.patient!r} sent to the logic of {self.patient!r}")
        value = r.value
        # quality is 0 for nearly every reading: skip the flag arithmetic then
        if (r.quality and r.quality & Quality.LOW_QUALITY) or not plausible(r.signal.value, value):
            return None
        name = r.signal.value
        if name == "steps" and value >= self.active_steps:
            self._mark_active(r.event_ns)
        cfg = self.configs.get(name)
        if cfg is None or cfg.kind == "hst":
            return None
        return self._detector(name).process(value, r.event_ns, ctx or self.context(r.event_ns))

    def on_aggregate(self, agg: WindowAggregate, ctx: Context | None = None) -> list[Score]:
        name = agg.signal.value
        if agg.count <= 0 or not math.isfinite(agg.mean):
            return []
        if name == "steps" and agg.max >= self.active_steps:
            self._mark_active(agg.end_ns - 1)
        out: list[Score] = []
        if ctx is None:
            ctx = Context(ACTIVE if self._active(agg.start_ns, agg.end_ns - 1) else REST,
                          self.period(agg.end_ns - 1))
        cfg = self.configs.get(name)
        if cfg is not None and cfg.kind != "hst" and plausible(name, agg.mean):
            out.append(self._detector(name + WINDOW_SUFFIX).process(agg.mean, agg.end_ns, ctx))
        for hname, hcfg in self.configs.items():
            if hcfg.kind == "hst" and name in hcfg.features:
                out.extend(self._to_vector(hname, hcfg, agg, ctx))
        return out

    def _to_vector(self, hname: str, hcfg: DetectorConfig, agg: WindowAggregate,
                   ctx: Context) -> list[Score]:
        out: list[Score] = []
        p = self._pending.get(hname)
        if p is not None and agg.start_ns > p[0]:
            out.extend(self._flush_one(hname))
            p = None
        elif p is not None and agg.start_ns < p[0]:
            return out  # a late aggregate of a window already being scored: dropped
        if p is None:
            p = self._pending[hname] = [agg.start_ns, agg.end_ns, {}, False]
        p[2][agg.signal.value] = agg.mean
        p[3] = p[3] or ctx.activity == ACTIVE
        if all(f in p[2] for f in hcfg.features):
            out.extend(self._flush_one(hname))
        return out

    def _flush_one(self, hname: str) -> list[Score]:
        p = self._pending.pop(hname, None)
        if p is None:
            return []
        start, end, vec, active = p
        active = active or self._active(start, end - 1)
        ctx = Context(ACTIVE if active else REST, self.period(end - 1))
        return [self._detector(hname).process(vec, end, ctx)]

    def flush(self) -> list[Score]:
        """Score the pending multivariate windows (e.g. at end of stream)."""
        return [s for name in sorted(self._pending) for s in self._flush_one(name)]

    def snapshot(self) -> dict:
        return {"last_active_ns": self._last_active_ns,
                "pending": {k: (a, b, dict(c), d) for k, (a, b, c, d) in self._pending.items()},
                "detectors": {k: d.snapshot() for k, d in self._dets.items()}}
