"""The signal catalogue: names, canonical units, accepted units, plausible ranges.

Names are the ones used in payloads, in the InfluxDB ``signal`` tag and in rules.
Conversions to the canonical unit happen once, at the edge (the normaliser), so
every operator downstream sees one unit per signal.

Units come in two kinds, kept apart so that the catalogue says which is which:

- ``SignalSpec.units``: standard codes, each a UCUM case-sensitive code
  (``UCUM``) or a unit of the SenML units registry, RFC 8428 section 12.1
  (``SENML``); several are both. Case matters: in UCUM and in SenML ``C`` is
  the coulomb and ``F`` the farad, so neither is a temperature (degrees
  Celsius are ``Cel``, Fahrenheit ``[degF]``, kelvin ``K``).
- ``SignalSpec.aliases``: tolerated spellings that are in neither standard but
  that devices and vocabularies send (``degC``, ``degF``, ``mmHg``, ``bpm``,
  Open mHealth's ``beats/min``...). Each alias names the standard code it stands
  for and converts exactly as that code does.

A unit that is neither is an ``unknown_unit`` dead letter. Connectors whose
source has a vocabulary of its own (Open mHealth's ``C``/``F``/``K``, GATT's
flags) translate it to standard codes themselves; aliases are for payloads
that arrive as free text (native JSON, SenML).

Conversion factors and their sources:

- 1 mm[Hg] = 133.322387415 Pa (conventional millimetre of mercury, BIPM SI
  brochure 9th ed., Table 8 / NIST SP 811 B.8: 1.333224 E+02 Pa), so
  1 kPa = 7.50061576 mm[Hg].
- [degF] -> Cel: (F - 32) * 5/9; K -> Cel: K - 273.15 (SI definitions).
- Glucose: molar mass of D-glucose C6H12O6 = 180.156 g/mol (IUPAC 2013 standard
  atomic weights), so 1 mmol/L = 18.0156 mg/dL; 1 kg/L = 1e5 mg/dL (Bluetooth
  Glucose Measurement concentration unit); 1 mol/L = 18015.6 mg/dL.
- SpO2: SenML ``/`` is a ratio (0.97 is 97 %), RFC 8428 section 12.1.
- Rates: ``beat/min``, ``1/min`` (RFC 8428), UCUM ``/min``; ``Hz`` * 60 = ``/min``.
- 1 [lb_av] = 0.45359237 kg exactly (international yard and pound, 1959).

Plausible ranges reject physically impossible values (HR 0 or 400, SpO2 > 100),
not clinically abnormal ones: a HR of 35 is an alarm, not a decoding error.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

MMHG_PER_PA = 1.0 / 133.322387415
MG_DL_PER_MMOL_L = 18.0156
KG_PER_LB = 0.45359237

# The standard codes the catalogue uses, by the standard that defines them.
# UCUM: c/s codes of The Unified Code for Units of Measure (curly-brace
# annotations such as {beats} are part of UCUM's grammar and do not change the unit).
UCUM: frozenset[str] = frozenset({
    "/min", "1/min", "{beats}/min", "{breaths}/min", "Hz", "%", "mm[Hg]", "Pa", "kPa", "hPa",
    "Cel", "[degF]", "K", "mg/dL", "mmol/L", "mol/L", "kg/L", "g/L", "1", "{steps}", "{count}",
    "kg", "g", "[lb_av]",
})
# SenML: names of the RFC 8428 section 12.1 units registry (not all are UCUM:
# "beat/min", "/" and "count" are SenML's own).
SENML: frozenset[str] = frozenset({
    "1/min", "beat/min", "Hz", "%", "/", "Pa", "Cel", "K", "count", "kg", "g",
})


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
    # Charted observations NEWS2 needs besides the vital signs, coded as numbers so
    # they travel like any reading: oxygen 0 = air, 1 = supplemental oxygen;
    # consciousness ACVPU 0 = Alert, 1 = new Confusion, 2 = Voice, 3 = Pain,
    # 4 = Unresponsive; spo2_scale 1 or 2 (NEWS2 SpO2 scale, a clinical decision).
    OXYGEN = "oxygen"
    CONSCIOUSNESS = "consciousness"
    SPO2_SCALE = "spo2_scale"
    # Device state where the source reports it (BLE Battery Level 0x2A19, a JSON field):
    # stored like any reading, and the packaged battery_low rule is a technical alarm.
    BATTERY = "battery"

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
    unit: str  # canonical unit, one of ``units``
    plausible_min: float
    plausible_max: float
    units: Mapping[str, Convert] = field(default_factory=dict)  # standard code -> to canonical
    aliases: Mapping[str, str] = field(default_factory=dict)  # tolerated spelling -> standard code
    # units and aliases resolved into one table: a single dict lookup per reading
    accepts: Mapping[str, Convert] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.unit not in self.units:
            raise ValueError(f"{self.signal}: canonical unit {self.unit!r} is not in its units")
        for code in self.units:
            if code not in UCUM and code not in SENML:
                raise ValueError(f"{self.signal}: {code!r} is neither UCUM nor SenML: make it an alias")
        table = dict(self.units)
        for alias, code in self.aliases.items():
            if alias in self.units or code not in self.units:
                raise ValueError(f"{self.signal}: alias {alias!r} -> {code!r} is not an alias of a unit")
            table[alias] = self.units[code]
        object.__setattr__(self, "accepts", table)

    def standard_unit(self, unit: str) -> str:
        """The standard code ``unit`` stands for (itself, or what its alias names); KeyError if unknown."""
        if unit in self.units:
            return unit
        return self.aliases[unit]

    def to_canonical(self, value: float, unit: str | None) -> float:
        """Convert ``value`` given in ``unit`` (None: already canonical); KeyError if unknown."""
        if unit is None or unit == self.unit:
            return value
        conv = self.accepts.get(unit)
        if conv is None:
            raise KeyError(unit)
        return conv(value)

    def plausible(self, value: float) -> bool:
        # NaN compares False both ways, so it is implausible too.
        return self.plausible_min <= value <= self.plausible_max


def _f_to_cel(f: float) -> float:
    return (f - 32.0) * 5.0 / 9.0


def _k_to_cel(k: float) -> float:
    return k - 273.15


_RATE = {"/min": _identity, "1/min": _identity, "beat/min": _identity,
         "{beats}/min": _identity, "Hz": _scale(60.0)}
_RATE_ALIASES = {"bpm": "/min", "beats/min": "{beats}/min"}  # beats/min: Open mHealth heart-rate
_BREATH = {"/min": _identity, "1/min": _identity, "{breaths}/min": _identity, "Hz": _scale(60.0)}
_BREATH_ALIASES = {"breaths/min": "{breaths}/min"}  # Open mHealth respiratory-rate
_PRESSURE = {"mm[Hg]": _identity, "Pa": _scale(MMHG_PER_PA),
             "kPa": _scale(1000.0 * MMHG_PER_PA), "hPa": _scale(100.0 * MMHG_PER_PA)}
_PRESSURE_ALIASES = {"mmHg": "mm[Hg]"}  # Open mHealth, GATT, most device documentation
_TEMP = {"Cel": _identity, "[degF]": _f_to_cel, "K": _k_to_cel}
_TEMP_ALIASES = {"degC": "Cel", "degF": "[degF]"}
_GLUCOSE = {"mg/dL": _identity, "mmol/L": _scale(MG_DL_PER_MMOL_L),
            "mol/L": _scale(MG_DL_PER_MMOL_L * 1000.0), "kg/L": _scale(1e5),
            "g/L": _scale(100.0)}
_COUNT = {"count": _identity, "1": _identity, "{steps}": _identity, "{count}": _identity}
_COUNT_ALIASES = {"steps": "{steps}"}  # Open mHealth step-count
_MASS = {"kg": _identity, "[lb_av]": _scale(KG_PER_LB), "g": _scale(1e-3)}
_MASS_ALIASES = {"lb": "[lb_av]"}

CATALOGUE: dict[Signal, SignalSpec] = {
    s.signal: s
    for s in (
        SignalSpec(Signal.HEART_RATE, "/min", 20.0, 300.0, _RATE, _RATE_ALIASES),
        SignalSpec(Signal.SPO2, "%", 40.0, 100.0, {"%": _identity, "/": _scale(100.0)}),
        SignalSpec(Signal.BP_SYSTOLIC, "mm[Hg]", 40.0, 300.0, _PRESSURE, _PRESSURE_ALIASES),
        SignalSpec(Signal.BP_DIASTOLIC, "mm[Hg]", 15.0, 200.0, _PRESSURE, _PRESSURE_ALIASES),
        SignalSpec(Signal.BP_MEAN, "mm[Hg]", 20.0, 250.0, _PRESSURE, _PRESSURE_ALIASES),
        SignalSpec(Signal.RESP_RATE, "/min", 2.0, 80.0, _BREATH, _BREATH_ALIASES),
        SignalSpec(Signal.BODY_TEMP, "Cel", 25.0, 45.0, _TEMP, _TEMP_ALIASES),
        SignalSpec(Signal.GLUCOSE, "mg/dL", 10.0, 1000.0, _GLUCOSE),
        SignalSpec(Signal.STEPS, "count", 0.0, 100_000.0, _COUNT, _COUNT_ALIASES),
        SignalSpec(Signal.BODY_WEIGHT, "kg", 0.5, 500.0, _MASS, _MASS_ALIASES),
        SignalSpec(Signal.ANOMALY_SCORE, "1", 0.0, float("inf"), {"1": _identity}),
        SignalSpec(Signal.OXYGEN, "1", 0.0, 1.0, {"1": _identity}),
        SignalSpec(Signal.CONSCIOUSNESS, "1", 0.0, 4.0, {"1": _identity}),
        SignalSpec(Signal.SPO2_SCALE, "1", 1.0, 2.0, {"1": _identity}),
        SignalSpec(Signal.BATTERY, "%", 0.0, 100.0, {"%": _identity}),
    )
}


def spec(signal: Signal | str) -> SignalSpec:
    """The catalogue entry of a signal given by enum or wire name (KeyError if unknown)."""
    try:
        return CATALOGUE[Signal(signal)]
    except ValueError:
        raise KeyError(signal) from None


def finite_number(what: str, value: object) -> float:
    """``value`` as a float if it is a finite JSON/Python number, else ValueError naming ``what``
    (``bool`` is refused: True breaths/min is a caller's mistake, not a measurement).

    >>> finite_number("resp_rate", 12)
    12.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what}: not a finite number: {value!r}")
    return v
