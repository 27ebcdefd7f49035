"""The signal catalogue: names, canonical UCUM units, accepted units, plausible ranges.

Names are the ones used in payloads, in the InfluxDB ``signal`` tag and in rules.
Conversions to the canonical unit happen once, at the edge, so every operator
downstream sees one unit per signal.

Conversion factors and their sources:

- 1 mm[Hg] = 133.322387415 Pa (conventional millimetre of mercury, BIPM SI
  brochure 9th ed., Table 8 / NIST SP 811 B.8: 1.333224 E+02 Pa), so
  1 kPa = 7.50061576 mm[Hg].
- degF -> Cel: (F - 32) * 5/9; K -> Cel: K - 273.15 (SI definitions).
- Glucose: molar mass of D-glucose C6H12O6 = 180.156 g/mol (IUPAC 2013 standard
  atomic weights), so 1 mmol/L = 18.0156 mg/dL; 1 kg/L = 1e5 mg/dL (Bluetooth
  Glucose Measurement concentration unit); 1 mol/L = 18015.6 mg/dL.
- SpO2: SenML ``/`` is a ratio (0.97 is 97 %), RFC 8428 section 12.1.
- Rates: ``beat/min``, ``1/min`` (RFC 8428), UCUM ``/min``; ``Hz`` * 60 = ``/min``.

Plausible ranges reject physically impossible values (HR 0 or 400, SpO2 > 100),
not clinically abnormal ones: a HR of 35 is an alarm, not a decoding error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

MMHG_PER_PA = 1.0 / 133.322387415
MG_DL_PER_MMOL_L = 18.0156


class Signal(str, Enum):
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    BP_SYSTOLIC = "bp_systolic"
    BP_DIASTOLIC = "bp_diastolic"
    BP_MEAN = "bp_mean"
    RESP_RATE = "resp_rate"
    BODY_TEMP = "body_temp"
    GLUCOSE = "glucose"
    STEPS = "steps"
    BODY_WEIGHT = "body_weight"
    # Derived series: the anomaly detector's score is a signal like any other,
    # so rules can use it (issue 5).
    ANOMALY_SCORE = "anomaly_score"

    def __str__(self) -> str:  # the wire name, also in f-strings
        return self.value


Convert = Callable[[float], float]


def _scale(k: float) -> Convert:
    return lambda v: v * k


def _identity(v: float) -> float:
    return v


@dataclass(frozen=True, slots=True)
class SignalSpec:
    signal: Signal
    unit: str  # canonical UCUM unit
    plausible_min: float
    plausible_max: float
    accepts: dict[str, Convert] = field(default_factory=dict)

    def to_canonical(self, value: float, unit: str | None) -> float:
        """Convert ``value`` given in ``unit`` (None: already canonical)."""
        if unit is None or unit == self.unit:
            return value
        conv = self.accepts.get(unit)
        if conv is None:
            raise KeyError(unit)
        return conv(value)

    def plausible(self, value: float) -> bool:
        # NaN compares False both ways, so it is implausible too.
        return self.plausible_min <= value <= self.plausible_max


_RATE = {"/min": _identity, "1/min": _identity, "beat/min": _identity, "beats/min": _identity,
         "{beats}/min": _identity, "bpm": _identity, "Hz": _scale(60.0)}
_BREATH = {"/min": _identity, "1/min": _identity, "breaths/min": _identity,
           "{breaths}/min": _identity, "Hz": _scale(60.0)}
_PRESSURE = {"mm[Hg]": _identity, "mmHg": _identity, "Pa": _scale(MMHG_PER_PA),
             "kPa": _scale(1000.0 * MMHG_PER_PA), "hPa": _scale(100.0 * MMHG_PER_PA)}
_TEMP = {"Cel": _identity, "C": _identity, "degC": _identity,
         "[degF]": lambda f: (f - 32.0) * 5.0 / 9.0, "degF": lambda f: (f - 32.0) * 5.0 / 9.0,
         "F": lambda f: (f - 32.0) * 5.0 / 9.0, "K": lambda k: k - 273.15}
_GLUCOSE = {"mg/dL": _identity, "mmol/L": _scale(MG_DL_PER_MMOL_L),
            "mol/L": _scale(MG_DL_PER_MMOL_L * 1000.0), "kg/L": _scale(1e5),
            "g/L": _scale(100.0)}
_COUNT = {"count": _identity, "1": _identity, "{steps}": _identity, "steps": _identity,
          "{count}": _identity}
_MASS = {"kg": _identity, "[lb_av]": _scale(0.45359237), "lb": _scale(0.45359237), "g": _scale(1e-3)}

CATALOGUE: dict[Signal, SignalSpec] = {
    s.signal: s
    for s in (
        SignalSpec(Signal.HEART_RATE, "/min", 20.0, 300.0, _RATE),
        SignalSpec(Signal.SPO2, "%", 40.0, 100.0, {"%": _identity, "/": _scale(100.0)}),
        SignalSpec(Signal.BP_SYSTOLIC, "mm[Hg]", 40.0, 300.0, _PRESSURE),
        SignalSpec(Signal.BP_DIASTOLIC, "mm[Hg]", 15.0, 200.0, _PRESSURE),
        SignalSpec(Signal.BP_MEAN, "mm[Hg]", 20.0, 250.0, _PRESSURE),
        SignalSpec(Signal.RESP_RATE, "/min", 2.0, 80.0, _BREATH),
        SignalSpec(Signal.BODY_TEMP, "Cel", 25.0, 45.0, _TEMP),
        SignalSpec(Signal.GLUCOSE, "mg/dL", 10.0, 1000.0, _GLUCOSE),
        SignalSpec(Signal.STEPS, "count", 0.0, 100_000.0, _COUNT),
        SignalSpec(Signal.BODY_WEIGHT, "kg", 0.5, 500.0, _MASS),
        SignalSpec(Signal.ANOMALY_SCORE, "1", 0.0, float("inf"), {"1": _identity}),
    )
}

def spec(signal: Signal | str) -> SignalSpec:
    """The catalogue entry of a signal given by enum or wire name (KeyError if unknown)."""
    try:
        return CATALOGUE[Signal(signal)]
    except ValueError:
        raise KeyError(signal) from None
