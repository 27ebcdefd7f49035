"""What a detector says about one value: the ``Score`` and its ``Explanation``.

Also the scoring ``Context`` (rest/active, day/night) and the classifier that
turns an event time into day or night in the patient's local time.

>>> dn = DayNight(utc_offset_s=3600)           # UTC+1
>>> dn(6 * 3600 * NS_PER_S)                    # 06:00 UTC is 07:00 local
'day'
>>> DayNight()(6 * 3600 * NS_PER_S)            # default: UTC hours 07-22 are day
'night'
>>> Context("active", "night").key(("activity", "period"))
'active/night'
>>> Context().key(())
'all'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from vitalstream.model import NS_PER_S

REST = "rest"
ACTIVE = "active"
DAY = "day"
NIGHT = "night"
# Detectors clamp scores so that a wild input still gives a finite, orderable score.
MAX_SCORE = 1e9


@dataclass(frozen=True, slots=True)
class Context:
    """The circumstances a value is scored in; each distinct key gets its own baseline."""

    activity: str = REST  # REST or ACTIVE
    period: str = DAY  # DAY or NIGHT (patient-local)

    def key(self, split: tuple[str, ...]) -> str:
        """Baseline key for the context parts a detector splits on (e.g. HR: both)."""
        if not split:
            return "all"
        return "/".join(getattr(self, part) for part in split)


@dataclass(frozen=True, slots=True)
class DayNight:
    """Day/night by patient-local hour: ``day_start_h <= local hour < day_end_h`` is day.

    The offset is fixed (no DST rules): the patient's registry gives it, or the
    caller passes its own ``Callable[[int], str]`` instead of this class.
    """

    utc_offset_s: int = 0
    day_start_h: int = 7
    day_end_h: int = 22

    def __call__(self, event_ns: int) -> str:
        local_s = event_ns // NS_PER_S + self.utc_offset_s
        hour = (local_s // 3600) % 24
        return DAY if self.day_start_h <= hour < self.day_end_h else NIGHT


PeriodClassifier = Callable[[int], str]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a score is what it is, in the signal's canonical unit."""

    signal: str
    observed: float
    expected_low: float  # values inside [low, high] are not anomalous
    expected_high: float
    baseline_n: int  # readings the baseline has learned from
    baseline_age_s: float  # event-time span of those readings
    context: str  # baseline key, e.g. "rest/day"
    warmup: bool  # True: scored against population priors, not the patient
    source: str  # "personal" or the prior's citation
    detector: str  # detector kind, e.g. "ewz"
    note: str = ""  # e.g. "not_finite": the value was not scored
    features: dict[str, float] | None = field(default=None)  # multivariate input
    center: float = math.nan  # the usual value scored against (baseline or prior mean)
    spread: float = math.nan  # its standard deviation (after the floor ``min_sd``)


@dataclass(frozen=True, slots=True)
class Score:
    """Anomaly score of one value: larger is more anomalous, always finite."""

    event_ns: int
    score: float
    is_anomaly: bool
    explanation: Explanation

    @property
    def signal(self) -> str:
        return self.explanation.signal

    def to_fields(self) -> dict[str, object]:
        """Flat fields for a sink (the lead writes these as the ``anomaly_score`` signal);
        an infinite bound (one-sided or unscored) becomes None, which line protocol omits."""
        e = self.explanation
        return {
            "signal": e.signal, "event_ns": self.event_ns, "score": self.score,
            "is_anomaly": self.is_anomaly, "observed": e.observed,
            "expected_low": _finite_or_none(e.expected_low),
            "expected_high": _finite_or_none(e.expected_high),
            "baseline_n": e.baseline_n, "baseline_age_s": e.baseline_age_s,
            "context": e.context, "warmup": e.warmup, "source": e.source,
            "detector": e.detector, "note": e.note,
        }


def clamp_score(z: float) -> float:
    """|z| bounded to MAX_SCORE; a non-finite z (overflow) becomes MAX_SCORE."""
    z = abs(z)
    if not math.isfinite(z) or z > MAX_SCORE:
        return MAX_SCORE
    return z


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
