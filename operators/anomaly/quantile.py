"""Robust rolling-quantile z-score (kind ``quantile``), on ``river.stats.RollingQuantile``.

Per baseline three ``RollingQuantile`` (25th, 50th, 75th percentile) over the
last ``window_size`` learned readings. The score is a robust z::

    |x - median| / max(IQR / 1.349, min_sd)

(IQR / 1.349 is the standard deviation of a normal distribution with that IQR),
so the baseline ignores a few outliers entirely instead of averaging them in,
at the price of a fixed memory of ``window_size`` values per quantile. Warm-up,
priors, context split and the poisoning guard follow ``base.py``; an anomalous
reading is learned only when ``anomaly_weight > 0`` (then with full weight:
a window has no weights).

Snapshots hold the river objects pickled (river's Rust-backed statistics have
no public state accessor); ``build(snapshot)`` restores them exactly.
Measured (benchmarks/anomaly_eval.py): window 64, up to 13 KiB live and 12 KiB
of snapshot per patient-signal (HR, four contexts); about 4-5 us per update.

>>> from vitalstream.operators.anomaly.score import Context
>>> cfg = RollingQuantileScore(signal="resp_rate", window_size=32, warmup_n=4)
>>> det = cfg.build()
>>> ctx = Context()
>>> for i, rr in enumerate([12.0, 14.0, 16.0, 18.0, 40.0, 15.0]):
...     s = det.process(rr, i * 60_000_000_000, ctx)
>>> det.quantiles("rest")         # the 40 was flagged and not learned
(14.0, 15.0, 16.0)
>>> cfg.build(det.snapshot()).quantiles("rest")
(14.0, 15.0, 16.0)
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from river import stats

from vitalstream.operators.anomaly.base import UnivariateDetector
from vitalstream.operators.anomaly.priors import min_sd_for

_IQR_PER_SD = 1.349  # IQR of the standard normal distribution


@dataclass(frozen=True, slots=True)
class RollingQuantileScore:
    """Config of the robust rolling-quantile detector (kind ``quantile``)."""

    signal: str | None = None
    window_size: int = 64
    threshold: float = 4.0
    warmup_n: int = 30
    # Also a minimum baseline age: 30 readings 5 s apart of autocorrelated HR
    # noise say little about its spread (the shipped rules set 1 h).
    warmup_s: float = 0.0
    anomaly_weight: float = 0.0
    min_sd: float | None = None
    split: tuple[str, ...] | None = None
    direction: str | None = None  # "both", "low", "high"; None: DEFAULT_DIRECTION
    kind: str = "quantile"

    def build(self, resume_state: dict | None = None, *,
              seed: int | None = None) -> "RollingQuantileDetector":
        return RollingQuantileDetector(self, resume_state)


class RollingQuantileDetector(UnivariateDetector):
    __slots__ = ("_b", "_min_sd")
    kind = "quantile"

    def __init__(self, cfg: RollingQuantileScore, resume_state: dict | None = None) -> None:
        super().__init__(cfg)
        self._min_sd = cfg.min_sd if cfg.min_sd is not None else min_sd_for(cfg.signal)
        # key -> [n, first_ns, last_ns, q25, q50, q75]
        self._b: dict[str, list] = {}
        if resume_state is not None:
            self._b = {k: [n, f, last, *pickle.loads(qs)]
                       for k, (n, f, last, qs) in resume_state["baselines"].items()}

    def quantiles(self, key: str) -> tuple[float, float, float] | None:
        b = self._b.get(key)
        return None if b is None else (b[3].get(), b[4].get(), b[5].get())

    def _stats(self, key: str) -> tuple[int, int, int, float, float] | None:
        b = self._b.get(key)
        if b is None:
            return None
        iqr = b[5].get() - b[3].get()
        return b[0], b[1], b[2], b[4].get(), max(iqr / _IQR_PER_SD, self._min_sd)

    def _update(self, key: str, value: float, event_ns: int, weight: float) -> None:
        b = self._b.get(key)
        if b is None:
            w = self.cfg.window_size
            b = self._b[key] = [0, event_ns, event_ns, stats.RollingQuantile(0.25, w),
                                stats.RollingQuantile(0.5, w), stats.RollingQuantile(0.75, w)]
        b[0] += 1
        b[2] = max(b[2], event_ns)
        for q in b[3:]:
            q.update(value)

    def snapshot(self) -> dict:
        return {"kind": "quantile",
                "baselines": {k: (b[0], b[1], b[2], pickle.dumps(tuple(b[3:])))
                              for k, b in self._b.items()}}
