"""Personalised online anomaly detection (issue 5): per patient and signal, score each
reading against the patient's own baseline, learned online (score first, then learn).

Detectors (config dataclass -> ``.build(resume_state=None)`` -> detector):

- ``EwZScore`` (kind ``ewz``, the default): exponentially weighted mean/variance z-score.
- ``RollingQuantileScore`` (kind ``quantile``): robust median/IQR z on river RollingQuantile.
- ``HalfSpaceTreesScore`` (kind ``hst``): river Half-Space Trees on window-aggregate vectors.

``build_detector(dict)`` / ``build_detectors(mapping)`` read the rule file's
``detectors:`` section; ``PatientAnomalyLogic`` holds one patient's detectors.
"""

from vitalstream.operators.anomaly.base import DEFAULT_SPLIT, Detector, DetectorConfig
from vitalstream.operators.anomaly.config import KINDS, build_detector, build_detectors
from vitalstream.operators.anomaly.ewz import EwZDetector, EwZScore
from vitalstream.operators.anomaly.hst import HalfSpaceTreesDetector, HalfSpaceTreesScore
from vitalstream.operators.anomaly.patient import PatientAnomalyLogic
from vitalstream.operators.anomaly.priors import PRIORS, Prior, prior_for
from vitalstream.operators.anomaly.quantile import RollingQuantileDetector, RollingQuantileScore
from vitalstream.operators.anomaly.score import (ACTIVE, DAY, MAX_SCORE, NIGHT, REST, Context,
                                                  DayNight, Explanation, Score)
from vitalstream.operators.anomaly.sizing import deep_sizeof

__all__ = [
    "ACTIVE", "DAY", "DEFAULT_SPLIT", "Detector", "DetectorConfig", "EwZDetector", "EwZScore",
    "Explanation", "HalfSpaceTreesDetector", "HalfSpaceTreesScore", "KINDS", "MAX_SCORE",
    "NIGHT", "PRIORS", "PatientAnomalyLogic", "Prior", "REST", "RollingQuantileDetector",
    "RollingQuantileScore", "Context", "DayNight", "Score", "build_detector",
    "build_detectors", "deep_sizeof", "prior_for",
]
