"""Exponentially weighted mean/variance z-score: the default detector.

Each baseline holds six numbers ``[n, w, mean, var, first_ns, last_ns]``. A
reading ``x`` at time ``t`` with weight ``u`` (1, or ``anomaly_weight`` for an
anomalous one) updates it as a weighted mean/variance whose older weights decay
by half every ``half_life_s`` of event time (West 1979 / Finch 2009, the
formula of ``river.stats.EWVar``, with a time-based instead of per-reading
fading factor so irregular sampling is handled)::

    d     = 2 ** (-(t - last_ns) / half_life_s)
    w     = w * d + u              # total weight still remembered
    a     = u / w                  # 1, 1/2, 1/3 ... at first: the plain mean
    delta = x - mean
    mean  = mean + a * delta
    var   = (1 - a) * (var + a * delta ** 2)

so ``mean``/``var`` equal the batch weighted mean and (population) variance
with weights ``u_i * 2 ** (-(t - t_i) / half_life_s)``. The score is
``|x - mean| / max(sqrt(var), min_sd)``; it is an anomaly above ``threshold``.
With a regular interval ``dt`` the weight settles at ``1 / (1 - d)``, the same
smoothing as ``river.stats.EWMean(fading_factor=1 - d)``.

Measured (benchmarks/anomaly_eval.py, 2 days of 1/min HR with walks): at most
1.5 KiB live (config not counted: it is shared) and 1.5 KiB as a snapshot with
all four HR contexts; about 4 us per update (score then learn), CPython 3.11.

>>> from vitalstream.operators.anomaly.score import Context
>>> cfg = EwZScore(signal="heart_rate", half_life_s=3600.0, threshold=4.0, warmup_n=3)
>>> det = cfg.build()
>>> rest = Context("rest", "day")
>>> for i, hr in enumerate([60.0, 64.0, 60.0, 64.0]):
...     s = det.process(hr, i * 60_000_000_000, rest)
>>> s.explanation.warmup, s.explanation.baseline_n      # scored before learning it
(False, 3)
>>> s = det.process(100.0, 240_000_000_000, rest)
>>> s.is_anomaly, s.explanation.source
(True, 'personal')
>>> det2 = cfg.build(det.snapshot())                     # resume: same baseline
>>> det2.score_one(63.0, 300_000_000_000, rest) == det.score_one(63.0, 300_000_000_000, rest)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vitalstream.operators.anomaly.base import UnivariateDetector
from vitalstream.operators.anomaly.priors import min_sd_for

_LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class EwZScore:
    """Config of the EW z-score detector (kind ``ewz``)."""

    signal: str | None = None
    half_life_s: float = 21_600.0  # 6 h: a day/night baseline still forgets last week
    threshold: float = 4.0
    warmup_n: int = 30
    # Also a minimum baseline age: 30 readings 5 s apart of autocorrelated HR
    # noise say little about its spread (the shipped rules set 1 h).
    warmup_s: float = 0.0
    anomaly_weight: float = 0.0
    min_sd: float | None = None  # None: the signal's floor from priors.py
    split: tuple[str, ...] | None = None
    direction: str | None = None  # "both", "low", "high"; None: DEFAULT_DIRECTION  # None: DEFAULT_SPLIT for the signal
    kind: str = "ewz"

    def build(self, resume_state: dict | None = None, *, seed: int | None = None) -> "EwZDetector":
        """A detector for one patient-signal; ``seed`` is unused (nothing is random)."""
        return EwZDetector(self, resume_state)


class EwZDetector(UnivariateDetector):
    __slots__ = ("_b", "_k", "_min_sd")
    kind = "ewz"

    def __init__(self, cfg: EwZScore, resume_state: dict | None = None) -> None:
        super().__init__(cfg)
        self._k = _LN2 / (cfg.half_life_s * 1e9)  # decay exponent per nanosecond
        self._min_sd = cfg.min_sd if cfg.min_sd is not None else min_sd_for(cfg.signal)
        self._b: dict[str, list] = {}
        if resume_state is not None:
            self._b = {k: list(v) for k, v in resume_state["baselines"].items()}

    def _stats(self, key: str) -> tuple[int, int, int, float, float] | None:
        b = self._b.get(key)
        if b is None:
            return None
        return b[0], b[4], b[5], b[2], max(math.sqrt(b[3]), self._min_sd)

    def _update(self, key: str, value: float, event_ns: int, weight: float) -> None:
        b = self._b.get(key)
        if b is None:
            self._b[key] = [1, weight, value, 0.0, event_ns, event_ns]
            return
        n, w, mean, var, first, last = b
        dt = event_ns - last
        w = w * math.exp(-self._k * dt) + weight if dt > 0 else w + weight
        a = weight / w
        delta = value - mean
        new_var = (1.0 - a) * (var + a * delta * delta)
        if not math.isfinite(new_var):  # an extreme value would overflow the baseline
            return
        b[0] = n + 1
        b[1] = w
        b[2] = mean + a * delta
        b[3] = new_var
        b[5] = max(last, event_ns)

    def mean_var(self, key: str) -> tuple[float, float] | None:
        """The baseline's current mean and variance (for inspection and tests)."""
        b = self._b.get(key)
        return None if b is None else (b[2], b[3])

    def snapshot(self) -> dict:
        return {"kind": "ewz", "baselines": {k: tuple(v) for k, v in self._b.items()}}
