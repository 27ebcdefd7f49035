"""Half-Space Trees over multivariate window aggregates (kind ``hst``), on
``river.anomaly.HalfSpaceTrees``.

One model scores a vector of window means (default HR, RR, SpO2) plus the
context (``active`` and ``night`` as 0/1 features), so "HR 110 while active"
and "HR 110 at rest at night" fall in different half-spaces. Feature limits
are fixed clinical spans (``DEFAULT_LIMITS``) instead of an online MinMaxScaler,
so a value outside them lands in the outermost half-space rather than
stretching the scale. The score is river's ``1 - mass / max_mass`` in [0, 1].

Sizing (measured with ``deep_sizeof`` after 500 updates, 3 features):

=========================  ==========  ===============
n_trees, height, window     live size   pickled snapshot
=========================  ==========  ===============
10, 8, 250 (river default)  1.24 MiB    166 KiB
10, 6, 100                  320 KiB     44 KiB
8, 5, 64                    131 KiB     20 KiB
5, 4, 48 (our default)      44 KiB      8.7 KiB
4, 3, 32                    20 KiB      5.8 KiB
=========================  ==========  ===============

Size grows as ``n_trees * 2 ** (height + 1)`` nodes (about 140 B of Python
objects each); fewer, shallower trees see coarser half-spaces, so only gross
multivariate departures score high. That is why HST runs on window aggregates
(one vector per patient per window, e.g. 5 min) and not on every reading, and
why the default is 5 trees of height 4: about 44 KiB per patient, 440 MiB for
10 000 patients, against 12 GiB with river's defaults.

Warm-up: river's HST scores 0 until its first window of ``window_size`` vectors
has been learned; the score says ``warmup=True`` (no population prior exists for
a joint vector; the univariate detectors cover that period). Only complete
vectors are learned (the trees are grown from the first one, so a missing
feature there would never be split on); anomalous vectors are not learned.

>>> from vitalstream.operators.anomaly.score import Context
>>> cfg = HalfSpaceTreesScore(window_size=8, seed=7)
>>> det = cfg.build()
>>> ctx = Context()
>>> for i in range(16):
...     s = det.process({"heart_rate": 70.0 + i % 3, "resp_rate": 15.0, "spo2": 97.0},
...                     i * 300_000_000_000, ctx)
>>> s.explanation.warmup, s.is_anomaly
(False, False)
>>> out = det.score_one({"heart_rate": 160.0, "resp_rate": 40.0, "spo2": 80.0},
...                     16 * 300_000_000_000, ctx)
>>> out.is_anomaly
True
>>> cfg.build(det.snapshot()).score_one({"heart_rate": 160.0, "resp_rate": 40.0, "spo2": 80.0},
...     16 * 300_000_000_000, ctx).score == out.score
True
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Mapping

from river import anomaly

from vitalstream.operators.anomaly.score import NIGHT, ACTIVE, Context, Explanation, Score

DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "heart_rate": (30.0, 200.0),
    "resp_rate": (4.0, 50.0),
    "spo2": (70.0, 100.0),
    "body_temp": (34.0, 42.0),
    "bp_systolic": (60.0, 220.0),
    "bp_diastolic": (30.0, 130.0),
    "bp_mean": (40.0, 160.0),
    "steps": (0.0, 200.0),
    "active": (0.0, 1.0),
    "night": (0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class HalfSpaceTreesScore:
    """Config of the Half-Space Trees detector (kind ``hst``)."""

    features: tuple[str, ...] = ("heart_rate", "resp_rate", "spo2")
    n_trees: int = 5
    height: int = 4
    window_size: int = 48
    threshold: float = 0.8  # normal windows: 99th percentile 0.2-0.69 over seeds 0-5
    with_context: bool = True
    seed: int = 42
    signal: str | None = "vitals"  # the name its scores carry
    kind: str = "hst"

    @property
    def warmup_n(self) -> int:
        return self.window_size

    def build(self, resume_state: dict | None = None, *,
              seed: int | None = None) -> "HalfSpaceTreesDetector":
        return HalfSpaceTreesDetector(self, resume_state, self.seed if seed is None else seed)


class HalfSpaceTreesDetector:
    __slots__ = ("cfg", "_model", "_n", "_first", "_last")
    kind = "hst"

    def __init__(self, cfg: HalfSpaceTreesScore, resume_state: dict | None, seed: int) -> None:
        self.cfg = cfg
        if resume_state is not None:
            self._model = pickle.loads(resume_state["model"])
            self._n, self._first, self._last = resume_state["n"], resume_state["first_ns"], \
                resume_state["last_ns"]
            return
        names = cfg.features + (("active", "night") if cfg.with_context else ())
        self._model = anomaly.HalfSpaceTrees(
            n_trees=cfg.n_trees, height=cfg.height, window_size=cfg.window_size,
            limits={f: DEFAULT_LIMITS.get(f, (0.0, 1.0)) for f in names}, seed=seed)
        self._n, self._first, self._last = 0, 0, 0

    def _vector(self, value: Mapping[str, float], ctx: Context) -> dict[str, float]:
        x = {f: float(value[f]) for f in self.cfg.features
             if f in value and math.isfinite(float(value[f]))}
        if self.cfg.with_context:
            x["active"] = 1.0 if ctx.activity == ACTIVE else 0.0
            x["night"] = 1.0 if ctx.period == NIGHT else 0.0
        return x

    def score_one(self, value: Mapping[str, float], event_ns: int, ctx: Context) -> Score:
        x = self._vector(value, ctx)
        warm = self._n < self.cfg.window_size
        note = "" if any(f in x for f in self.cfg.features) else "not_finite"
        s = 0.0 if (warm or note) else float(self._model.score_one(x))
        s = s if math.isfinite(s) else 0.0
        e = Explanation(self.cfg.signal or "", s, 0.0, self.cfg.threshold, self._n,
                        (self._last - self._first) / 1e9, f"{ctx.activity}/{ctx.period}",
                        warm, "none: first HST window" if warm else "personal", "hst",
                        note, x)
        return Score(event_ns, s, s > self.cfg.threshold, e)

    def learn_one(self, value: Mapping[str, float], event_ns: int, ctx: Context) -> None:
        x = self._vector(value, ctx)
        if len(x) < len(self.cfg.features) + (2 if self.cfg.with_context else 0):
            return
        self._model.learn_one(x)
        if self._n == 0:
            self._first = event_ns
        self._n += 1
        self._last = max(self._last, event_ns)

    def process(self, value: Mapping[str, float], event_ns: int, ctx: Context) -> Score:
        s = self.score_one(value, event_ns, ctx)
        if not s.is_anomaly:
            self.learn_one(value, event_ns, ctx)
        return s

    def snapshot(self) -> dict:
        return {"kind": "hst", "n": self._n, "first_ns": self._first, "last_ns": self._last,
                "model": pickle.dumps(self._model)}
