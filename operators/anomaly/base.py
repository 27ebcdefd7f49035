"""The shape every detector shares (river's ``score_one``/``learn_one`` plus bytewax-style
``snapshot``/``build(resume_state)``) and the univariate scoring rules common to them.

Rules shared by the univariate detectors (``ewz``, ``quantile``):

- Score first, then learn (``process``). A value that is not finite or outside
  the signal's physically plausible range (``vitalstream.signals``) is neither
  scored as an anomaly nor learned: it is not a measurement.
- One baseline per context key: heart rate splits on activity and day/night,
  blood pressure on day/night, respiratory rate on activity, other signals keep
  one baseline (``DEFAULT_SPLIT``). In an active context the value is also scored
  against the rest baseline and the lower score wins (activity explains a
  value, it never makes one suspect; bout edges and recovery are uncertain);
  the reading is then learned into the baseline that scored it.
- Direction: ``both`` by default; SpO2 is one-sided ``low`` (``DEFAULT_DIRECTION``),
  the unused bound of the expected range is then infinite.
- Warm-up: until a baseline has learned ``warmup_n`` readings over at least
  ``warmup_s`` seconds it scores against
  the population prior (``priors.py``) and says so (``warmup=True``, ``source``).
  During warm-up every plausible reading is learned, even one the prior calls
  anomalous: a patient whose normal HR is 125 /min must still get a baseline.
- Poisoning guard: once warm, a reading scored anomalous is learned with weight
  ``anomaly_weight`` (default 0, i.e. not learned). A burst then leaves the
  baseline exactly where it was; the price is that a lasting shift keeps being
  flagged until the baseline is reset or the weight raised, which for vital
  signs is the wanted behaviour (a sustained tachycardia stays a tachycardia).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from vitalstream.operators.anomaly.priors import prior_for
from vitalstream.operators.anomaly.score import (ACTIVE, REST, Context, Explanation, Score,
                                                  clamp_score)
from vitalstream.signals import CATALOGUE, Signal

DEFAULT_SPLIT: dict[str, tuple[str, ...]] = {
    "heart_rate": ("activity", "period"),
    "bp_systolic": ("period",),
    "bp_diastolic": ("period",),
    "bp_mean": ("period",),
    "resp_rate": ("activity",),  # breathing speeds up with exercise
}
# One-sided signals: SpO2 is capped at 100 %, only a fall is a concern.
DEFAULT_DIRECTION: dict[str, str] = {"spo2": "low"}


class Detector(Protocol):
    def score_one(self, value: Any, event_ns: int, ctx: Context) -> Score: ...
    def learn_one(self, value: Any, event_ns: int, ctx: Context) -> None: ...
    def process(self, value: Any, event_ns: int, ctx: Context) -> Score: ...
    def snapshot(self) -> dict: ...


class DetectorConfig(Protocol):
    kind: str
    signal: str | None
    threshold: float

    def build(self, resume_state: dict | None = None, *, seed: int | None = None) -> Detector: ...


def resolve_split(signal: str | None, split: tuple[str, ...] | None) -> tuple[str, ...]:
    if split is not None:
        return tuple(split)
    return DEFAULT_SPLIT.get(signal or "", ())


_SPECS = {s.value: spec for s, spec in CATALOGUE.items()}  # by wire name: no Enum call per value


def plausible(signal: str | None, value: float) -> bool:
    if not math.isfinite(value):
        return False
    sp = _SPECS.get(signal) if signal else None
    # a signal name outside the catalogue: finiteness is all we know
    return True if sp is None else sp.plausible(value)


class UnivariateDetector:
    """Shared scoring for one signal of one patient. Subclasses keep the baselines and
    implement ``_stats(key) -> (n, first_ns, last_ns, center, scale) | None`` and
    ``_update(key, value, event_ns, weight)``."""

    __slots__ = ("cfg", "split", "direction")
    kind = "?"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.split = resolve_split(cfg.signal, cfg.split)
        self.direction = cfg.direction or DEFAULT_DIRECTION.get(cfg.signal or "", "both")

    def _stats(self, key: str) -> tuple[int, int, int, float, float] | None:
        raise NotImplementedError

    def _update(self, key: str, value: float, event_ns: int, weight: float) -> None:
        raise NotImplementedError

    def _unscored(self, value: float, event_ns: int, key: str, note: str) -> Score:
        st = self._stats(key)
        n, age = (st[0], (st[2] - st[1]) / 1e9) if st else (0, 0.0)
        e = Explanation(self.cfg.signal or "", value, -math.inf, math.inf, n, age, key,
                        n < self.cfg.warmup_n or age < getattr(self.cfg, "warmup_s", 0.0), "",
                        self.kind, note)
        return Score(event_ns, 0.0, False, e)

    def score_one(self, value: float, event_ns: int, ctx: Context) -> Score:
        s = self._score_key(float(value), event_ns, ctx.key(self.split), ctx.activity)
        if ctx.activity == ACTIVE and "activity" in self.split and not s.explanation.note:
            # Activity only ever explains a value: near the edges of a bout (recovery,
            # a walk that has not raised HR yet) the rest baseline may fit better.
            rest = self._score_key(float(value), event_ns,
                                   Context(REST, ctx.period).key(self.split), REST)
            if rest.score < s.score:
                return rest
        return s

    def _score_key(self, value: float, event_ns: int, key: str, activity: str) -> Score:
        cfg = self.cfg
        if not plausible(cfg.signal, value):
            return self._unscored(value, event_ns, key, "not_finite" if not math.isfinite(value)
                                  else "implausible")
        st = self._stats(key)
        n = st[0] if st else 0
        age = (st[2] - st[1]) / 1e9 if st else 0.0
        if n >= cfg.warmup_n and age >= getattr(cfg, "warmup_s", 0.0):
            center, scale, source, warm = st[3], st[4], "personal", False
        else:
            prior = prior_for(cfg.signal, activity)
            if prior is None:
                return self._unscored(value, event_ns, key, "no_prior")
            center, scale, source, warm = prior.mean, prior.sd, prior.source, True
        thr = cfg.threshold
        low, high = center - thr * scale, center + thr * scale
        z = (value - center) / scale
        if self.direction == "low":
            z, high = max(0.0, -z), math.inf
        elif self.direction == "high":
            z, low = max(0.0, z), -math.inf
        z = clamp_score(z)
        e = Explanation(cfg.signal or "", value, low, high, n, age, key, warm, source, self.kind,
                        center=center, spread=scale)
        return Score(event_ns, z, z > thr, e)

    def learn_one(self, value: float, event_ns: int, ctx: Context, weight: float = 1.0) -> None:
        value = float(value)
        if weight > 0.0 and plausible(self.cfg.signal, value):
            self._update(ctx.key(self.split), value, event_ns, weight)

    def process(self, value: float, event_ns: int, ctx: Context) -> Score:
        """Score, then learn with the poisoning guard (see module docstring)."""
        s = self.score_one(value, event_ns, ctx)
        if s.explanation.note and s.explanation.note != "no_prior":
            return s
        weight = self.cfg.anomaly_weight if (s.is_anomaly and not s.explanation.warmup) else 1.0
        if weight > 0.0:
            self._update(s.explanation.context, float(value), event_ns, weight)
        return s
