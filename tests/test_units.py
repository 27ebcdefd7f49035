"""Unit conversions and plausibility bounds of the signal catalogue.

Expected values come from the defining constants, not from the code:
1 mm[Hg] = 133.322387415 Pa (NIST SP 811 B.8 / BIPM SI brochure), degF and K by
their SI definitions, glucose 180.156 g/mol (so 1 mmol/L = 18.0156 mg/dL),
1 lb = 0.45359237 kg exactly (international yard and pound agreement, 1959),
SenML ``/`` is a ratio (RFC 8428 section 12.1), 1 Hz = 60 /min.
"""

from __future__ import annotations

import pytest

from vitalstream.errors import PlausibilityError, UnitError
from vitalstream.model import Quality, RawReading
from vitalstream.operators.normalise import Normaliser
from vitalstream.signals import Signal, spec

PA_PER_MMHG = 133.322387415
NS = 1_000_000_000


def _norm(signal: str, value: float, unit: str | None, *, skew: int | None = None, event_ns=0,
          recv_ns=0, patient: str | None = "p1"):
    n = Normaliser(max_clock_skew_ns=skew)
    return n.normalise(RawReading("d1", patient, signal, value, unit, event_ns), recv_ns=recv_ns)


@pytest.mark.parametrize("unit,value,expected_mmhg", [
    # 16 kPa = 16000 Pa; 16000 / 133.322387415 = 120.0098... mm[Hg]
    ("kPa", 16.0, 16000.0 / PA_PER_MMHG),
    ("Pa", 16000.0, 16000.0 / PA_PER_MMHG),
    ("hPa", 160.0, 16000.0 / PA_PER_MMHG),
    ("mmHg", 120.0, 120.0),
    ("mm[Hg]", 120.0, 120.0),
])
def test_pressure_to_mmhg_nist_sp811(unit, value, expected_mmhg):
    r = _norm("bp_systolic", value, unit)
    assert r.unit == "mm[Hg]"
    assert r.value == pytest.approx(expected_mmhg, rel=1e-12)


def test_one_kpa_is_7_50061576_mmhg():
    # 1000 / 133.322387415 = 7.500615758... (long division); the often quoted
    # 7.50061683 belongs to the rounded 133.3224 Pa and is not this constant.
    assert spec(Signal.BP_DIASTOLIC).to_canonical(1.0, "kPa") == pytest.approx(7.50061576, abs=5e-9)


def test_mmhg_reference_point_133_322387415_pa_is_one_mmhg():
    assert spec(Signal.BP_MEAN).to_canonical(PA_PER_MMHG, "Pa") == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("unit,value,expected_cel", [
    ("[degF]", 98.6, 37.0),
    ("degF", 100.4, 38.0),             # a tolerated alias of [degF]
    ("degC", 36.6, 36.6),              # a tolerated alias of Cel
    ("K", 310.15, 37.0),
    ("K", 311.15, 38.0),
    ("Cel", 36.6, 36.6),
    (None, 36.6, 36.6),
])
def test_temperature_to_celsius(unit, value, expected_cel):
    r = _norm("body_temp", value, unit)
    assert r.unit == "Cel"
    assert r.value == pytest.approx(expected_cel, abs=1e-9)


def test_fahrenheit_fixed_points_without_plausibility():
    s = spec("body_temp")
    assert s.to_canonical(212.0, "degF") == pytest.approx(100.0, abs=1e-12)
    assert s.to_canonical(32.0, "degF") == 0.0
    assert s.to_canonical(-40.0, "degF") == pytest.approx(-40.0, abs=1e-12)
    assert s.to_canonical(273.15, "K") == 0.0


@pytest.mark.parametrize("unit,value,expected_mgdl", [
    ("mmol/L", 5.5, 5.5 * 18.0156),          # 99.0858 mg/dL
    ("mmol/L", 3.0, 54.0468),                # ADA level-2 boundary region
    ("mol/L", 0.0055, 99.0858),              # 0.0055 mol/L = 5.5 mmol/L
    ("kg/L", 0.00099, 99.0),                 # 1 kg/L = 1e6 mg / 10 dL = 1e5 mg/dL
    ("g/L", 0.99, 99.0),                     # 1 g/L = 1000 mg / 10 dL
    ("mg/dL", 99.0, 99.0),
])
def test_glucose_to_mg_dl_from_molar_mass_180_156(unit, value, expected_mgdl):
    r = _norm("glucose", value, unit)
    assert r.unit == "mg/dL"
    assert r.value == pytest.approx(expected_mgdl, rel=1e-12)


def test_senml_ratio_to_percent_rfc8428_12_1():
    r = _norm("spo2", 0.97, "/")
    assert (r.unit, r.value) == ("%", pytest.approx(97.0, rel=1e-12))
    assert _norm("spo2", 1.0, "/").value == 100.0


@pytest.mark.parametrize("signal,unit,value,expected", [
    ("heart_rate", "Hz", 1.2, 72.0),
    ("heart_rate", "beat/min", 72.0, 72.0),
    ("heart_rate", "1/min", 72.0, 72.0),
    ("resp_rate", "Hz", 0.25, 15.0),
    ("resp_rate", "breaths/min", 15.0, 15.0),
])
def test_rates_to_per_minute(signal, unit, value, expected):
    r = _norm(signal, value, unit)
    assert r.unit == "/min"
    assert r.value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("unit,value,expected_kg", [
    ("lb", 150.0, 68.0388555),          # 150 * 0.45359237 exactly
    ("[lb_av]", 200.0, 90.718474),
    ("g", 70500.0, 70.5),
    ("kg", 70.5, 70.5),
])
def test_mass_to_kg_exact_pound(unit, value, expected_kg):
    r = _norm("body_weight", value, unit)
    assert r.unit == "kg"
    assert r.value == pytest.approx(expected_kg, rel=1e-12)


@pytest.mark.parametrize("signal,unit", [
    ("heart_rate", "mmHg"), ("bp_systolic", "psi"), ("glucose", "mmol"), ("spo2", "ratio"),
    ("body_temp", "degR"),
    # UCUM and SenML (RFC 8428 12.1): C is the coulomb, F the farad, not temperatures
    ("body_temp", "C"), ("body_temp", "F"),
])
def test_unknown_unit_is_unit_error(signal, unit):
    with pytest.raises(UnitError) as ei:
        _norm(signal, 1.0, unit)
    assert ei.value.reason == "unknown_unit"
    assert ei.value.step == "normalise"
    assert ei.value.device == "d1"


def test_unknown_signal_is_unit_error():
    with pytest.raises(UnitError) as ei:
        _norm("blood_alcohol", 0.5, None)
    assert ei.value.reason == "unknown_signal"


@pytest.mark.parametrize("signal,value,unit", [
    ("heart_rate", 0.0, "/min"),
    ("heart_rate", 400.0, "/min"),
    ("heart_rate", 19.999, "/min"),
    ("spo2", 100.5, "%"),
    ("spo2", 1.005, "/"),             # 100.5 % as a ratio
    ("body_temp", 45.1, "Cel"),
    ("body_temp", 113.5, "degF"),     # 45.28 Cel
    ("bp_systolic", 2.0, "kPa"),      # 15.0 mm[Hg]
    ("steps", -1.0, "count"),
    ("heart_rate", float("nan"), "/min"),
])
def test_implausible_values_rejected(signal, value, unit):
    with pytest.raises(PlausibilityError) as ei:
        _norm(signal, value, unit)
    assert ei.value.reason == "implausible"
    assert ei.value.step == "plausibility"


@pytest.mark.parametrize("signal,value,unit,expected", [
    ("steps", 0.0, "count", 0.0),       # 0 steps is a value, not "missing"
    ("heart_rate", 20.0, "/min", 20.0),  # bounds are inclusive
    ("heart_rate", 300.0, "/min", 300.0),
    ("spo2", 100.0, "%", 100.0),
    ("heart_rate", 35.0, "/min", 35.0),  # clinically alarming, physically possible
])
def test_plausible_values_kept(signal, value, unit, expected):
    r = _norm(signal, value, unit)
    assert r is not None
    assert r.value == expected


def test_canonical_units_are_ucum():
    expected = {"heart_rate": "/min", "spo2": "%", "bp_systolic": "mm[Hg]",
                "bp_diastolic": "mm[Hg]", "bp_mean": "mm[Hg]", "resp_rate": "/min",
                "body_temp": "Cel", "glucose": "mg/dL", "steps": "count", "body_weight": "kg"}
    for name, unit in expected.items():
        assert spec(name).unit == unit


def test_clock_skew_correction_boundary():
    skew = 300 * NS
    kept = _norm("heart_rate", 70.0, None, skew=skew, event_ns=1000 * NS, recv_ns=1000 * NS + skew)
    assert kept.event_ns == 1000 * NS and kept.quality == Quality.OK
    fixed = _norm("heart_rate", 70.0, None, skew=skew, event_ns=1000 * NS,
                  recv_ns=1000 * NS + skew + 1)
    assert fixed.event_ns == 1000 * NS + skew + 1
    assert fixed.quality & Quality.CLOCK_CORRECTED
    assert fixed.recv_ns == 1000 * NS + skew + 1


def test_patient_defaults_to_device_and_none_quarantines():
    assert _norm("heart_rate", 70.0, None, patient=None).patient == "d1"
    n = Normaliser(max_clock_skew_ns=None)
    raw = RawReading("d1", None, "heart_rate", 70.0, None, 0)
    assert n.normalise(raw, 0, lambda r: None) is None
