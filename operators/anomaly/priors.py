"""Population priors: what a detector scores against until it knows the patient.

A prior is a normal adult range ``[low, high]`` read as a 95 % reference
interval, i.e. mean ``(low + high) / 2`` and standard deviation
``(high - low) / 4`` (reference intervals are the central 95 %, CLSI EP28-A3c).
``min_sd`` is a floor on any baseline's standard deviation: devices report
integers and a very steady patient would otherwise give a near-zero spread and
enormous z-scores for a 1-unit change.

Sources (adults, at rest unless said):

- heart_rate rest 60-100 /min: American Heart Association, "All About Heart
  Rate (Pulse)" (resting heart rate for adults).
- heart_rate active 75-170 /min: AHA "Target Heart Rates Chart": 50-85 % of
  the age-predicted maximum 220 - age, spanning ages 20-70.
- spo2 95-100 %: WHO Pulse Oximetry Training Manual (2011), normal SpO2.
- resp_rate 12-20 /min: Royal College of Physicians NEWS2 (2017), the band
  scoring 0.
- body_temp 36.1-37.2 Cel: MedlinePlus "Body temperature norms"
  (97 to 99 degF).
- bp_systolic 90-120, bp_diastolic 60-80 mm[Hg]: upper bounds AHA/ACC 2017
  guideline "normal" (<120/<80, Whelton et al., Hypertension 2018;71:e13);
  lower bounds AHA "Low blood pressure" (90/60).
- bp_mean 70-100 mm[Hg]: MAP = DBP + (SBP - DBP)/3 over the ranges above
  (70-93), widened to the commonly quoted 100.
- glucose 70-99 mg/dL: American Diabetes Association Standards of Care
  (normal fasting plasma glucose).

No prior is given for steps (activity is context, not a vital sign): such a
detector reports ``warmup`` with no anomaly until it has its own baseline.

>>> p = prior_for("heart_rate", "rest")
>>> p.mean, p.sd
(80.0, 10.0)
>>> prior_for("heart_rate", "active").low
75.0
>>> prior_for("steps", "rest") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prior:
    low: float
    high: float
    min_sd: float
    source: str

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def sd(self) -> float:
        return (self.high - self.low) / 4.0


_AHA_HR = "prior: AHA resting adult HR 60-100 /min"
PRIORS: dict[tuple[str, str], Prior] = {
    ("heart_rate", "rest"): Prior(60.0, 100.0, 2.0, _AHA_HR),
    ("heart_rate", "active"): Prior(75.0, 170.0, 2.0, "prior: AHA target HR 50-85% of 220-age"),
    ("spo2", "*"): Prior(95.0, 100.0, 0.5, "prior: WHO SpO2 95-100 %"),
    ("resp_rate", "*"): Prior(12.0, 20.0, 1.0, "prior: NEWS2 RR 12-20 /min"),
    ("body_temp", "*"): Prior(36.1, 37.2, 0.1, "prior: MedlinePlus 36.1-37.2 Cel"),
    ("bp_systolic", "*"): Prior(90.0, 120.0, 3.0, "prior: AHA/ACC 2017 SBP 90-120 mm[Hg]"),
    ("bp_diastolic", "*"): Prior(60.0, 80.0, 2.0, "prior: AHA/ACC 2017 DBP 60-80 mm[Hg]"),
    ("bp_mean", "*"): Prior(70.0, 100.0, 2.0, "prior: MAP 70-100 mm[Hg]"),
    ("glucose", "*"): Prior(70.0, 99.0, 3.0, "prior: ADA fasting glucose 70-99 mg/dL"),
}

# Floors for signals without a prior (and for unknown signals).
DEFAULT_MIN_SD = 1e-6


def prior_for(signal: str | None, activity: str) -> Prior | None:
    """The prior for a signal in an activity context (rest/active), or None."""
    if signal is None:
        return None
    return PRIORS.get((signal, activity)) or PRIORS.get((signal, "*")) or (
        PRIORS.get((signal, "rest")) if activity != "rest" else None)


def min_sd_for(signal: str | None) -> float:
    p = prior_for(signal, "rest")
    return p.min_sd if p is not None else DEFAULT_MIN_SD
