"""The anomaly stage of the per-patient flow: detectors from the rule file's ``detectors:``.

Each reading a detector covers is scored (score, then learn) in event-time order,
after the rules' reorder buffer. A score leaves the stage twice: as a
``PatientScore`` for the ``anomaly`` measurement (with its explanation), and as
a reading of signal ``anomaly_score`` that rules use like any other signal. That
reading is patient-level: the highest of the latest scores of each signal seen
in the last ``score_max_age_s``, so a calm SpO2 score between two alarming heart
rate scores does not reset "score > 4.5 for 5 minutes"::

    rules:
      - {name: unusual_for_patient, signal: anomaly_score, op: ">", threshold: 4.5,
         clear: 3, for_s: 300, severity: info}
    detectors:
      heart_rate: {kind: ewz, half_life_s: 21600, threshold: 4.0}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from vitalstream.model import Reading, WindowAggregate
from vitalstream.operators.anomaly.base import DetectorConfig
from vitalstream.operators.anomaly.config import build_detectors
from vitalstream.operators.anomaly.patient import PatientAnomalyLogic
from vitalstream.operators.anomaly.score import DayNight, Score
from vitalstream.operators.contract import RETAIN, Emit, Stateless
from vitalstream.signals import Signal


@dataclass(frozen=True, slots=True)
class PatientScore:
    patient: str
    score: Score


@dataclass(frozen=True)
class AnomalyStage:
    detectors: Mapping[str, DetectorConfig]
    utc_offset_s: int = 0
    activity_window_s: float = 300.0
    seed: int = 0
    score_windows: bool = True
    score_max_age_s: float = 120.0

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> "AnomalyStage":
        """``{signal: {kind: ewz, ...}, ...}``; an ``options:`` entry sets the stage itself."""
        mapping = dict(mapping)
        options = mapping.pop("options", None) or {}
        return cls(build_detectors(mapping), **options)

    def build(self, resume_state: dict | None = None, *, key: str = "") -> "AnomalyLogic":
        """The detectors of one patient (``key``)."""
        st = resume_state or {}
        inner = PatientAnomalyLogic(
            key, self.detectors, period=DayNight(utc_offset_s=self.utc_offset_s),
            activity_window_s=self.activity_window_s, seed=self.seed,
            resume_state=st.get("detectors"))
        return AnomalyLogic(self, inner, dict(st.get("latest", {})))


@dataclass
class AnomalyLogic(Stateless[dict]):
    """Scores readings (in event-time order) and window aggregates of one patient.

    ``on_item`` takes a ``Reading`` or a ``WindowAggregate``; a reading gives
    ``[PatientScore, anomaly_score Reading]`` when a detector covers it."""

    cfg: AnomalyStage
    inner: PatientAnomalyLogic
    latest: dict[str, tuple[float, int]] = field(default_factory=dict)  # signal -> (score, ns)

    def on_item(self, item: Reading | WindowAggregate) -> Emit:
        if type(item) is WindowAggregate:
            return self.on_aggregates([item]), RETAIN
        return self.on_reading(item), RETAIN

    def on_reading(self, r: Reading) -> list[object]:
        """[PatientScore, patient-level anomaly_score Reading] for a scored reading, else []."""
        s = self.inner.on_reading(r)
        if s is None:
            return []
        self.latest[s.signal] = (s.score, r.event_ns)
        horizon = r.event_ns - round(self.cfg.score_max_age_s * 1e9)
        level = max(v for v, t in self.latest.values() if t >= horizon)
        derived = Reading(r.patient, r.device, Signal.ANOMALY_SCORE, level, "1", r.event_ns,
                          r.recv_ns, f"anomaly:{s.signal}", r.quality)
        return [PatientScore(r.patient, s), derived]

    def on_aggregates(self, aggs: list[WindowAggregate]) -> list[PatientScore]:
        if not self.cfg.score_windows:
            return []
        out = []
        for a in aggs:
            out.extend(PatientScore(a.patient, s) for s in self.inner.on_aggregate(a))
        return out

    def snapshot(self) -> dict:
        # The detectors are estimators whose snapshots are fresh structures already;
        # ``latest`` holds (score, ns) tuples.
        return {"detectors": self.inner.snapshot(), "latest": dict(self.latest)}
