"""The ``ble`` and ``omh`` topic codecs, and the BLE-gateway simulator's encodings.

Expected readings are derived by hand from shared/reference/ble/vectors.json
(field -> signal table and unit factors written out below; time zones via
zoneinfo) or from the simulated physiology traces, never from decoder output.
"""

from __future__ import annotations

import collections
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from vitalstream.testing import shared_dir
from hypothesis import given, settings
from hypothesis import strategies as st
from vitalstream.connectors.ble.ieee11073 import decode_float, decode_sfloat
import vitalstream.connectors.codecs as codecs_mod
from vitalstream.connectors.ble_codec import (
    decode_ble,
    decode_omh_topic,
    make_ble_decoder,
)
from vitalstream.connectors.codecs import default_codecs
from vitalstream.errors import DecodeError, IdentityError, VitalstreamError
from vitalstream.model import DeadLetter, Message, Quality, RawReading, Reading, Heard
from vitalstream.operators.normalise import Normaliser
from vitalstream.operators.patient import PatientFlow
from vitalstream.signals import UCUM, spec
from vitalstream.simulators.ble_gateway import (
    ble_gateway_run,
    blood_pressure_value,
    float32,
    sfloat,
)
from vitalstream.simulators.scenario import Scenario
from vitalstream.stream.ingest import Ack, Ingest
from vitalstream.stream.reference import run_reference




VECTORS = json.loads((shared_dir() / "reference" / "ble" / "vectors.json").read_text())
REL_TOL = VECTORS["float_rel_tol"]
GW_NS = 1_700_000_000_123_000_000
MMHG_PER_KPA = 1000 / 133.322387415  # BIPM: 1 mm[Hg] = 133.322387415 Pa

# uuid -> (vector field, signal); pulse of a cuff or oximeter is a heart_rate reading
FIELDS = {
    "2A37": [("hr_bpm", "heart_rate")],
    "2A35": [("systolic", "bp_systolic"), ("diastolic", "bp_diastolic"), ("map", "bp_mean"),
             ("pulse_rate_bpm", "heart_rate")],
    "2A1C": [("temperature", "body_temp")],
    "2A5E": [("spo2_pct", "spo2"), ("pulse_rate_bpm", "heart_rate")],
    "2A5F": [("spo2_pct", "spo2"), ("pulse_rate_bpm", "heart_rate")],
    "2A18": [("glucose_kg_per_l", "glucose"), ("glucose_mol_per_l", "glucose")],
    "2A9D": [("weight_kg", "body_weight"), ("weight_lb", "body_weight")],
}


def by_hand(field: str, value: float, expect: dict) -> float:
    if expect.get("unit") == "kPa" and field in ("systolic", "diastolic", "map"):
        return value * MMHG_PER_KPA
    if expect.get("temperature_unit") == "degF":
        return (value - 32) * 5 / 9
    return {"glucose_kg_per_l": value * 1e5,  # kg/L -> mg/dL
            "glucose_mol_per_l": value * 180.156 * 100,  # mol/L x g/mol -> g/L -> mg/dL
            "weight_lb": value * 0.45359237}.get(field, value)  # international pound


def envelope(uuid: str, hex_text: str, **extra) -> bytes:
    return json.dumps({"device": "aa-bb-cc-dd-ee-01", "uuid": uuid, "hex": hex_text,
                       "t_ns": GW_NS, **extra}).encode()


DECODABLE = [v for v in VECTORS["vectors"] if "expect" in v]
# An empty value cannot be written in an envelope ("hex": "" is a bad_field), so the
# empty-payload vector is a decoder-only case (tests/test_ble_gatt_vectors.py).
TRUNCATED = [v for v in VECTORS["vectors"] if v.get("error") == "truncated" and v["hex"].strip()]


@pytest.mark.parametrize("vector", DECODABLE, ids=[v["id"] for v in DECODABLE])
def test_vectors_from_shared_ble_vectors_json_become_raw_readings_or_dead_letters(vector):
    zone = "America/New_York"
    out = decode_ble(envelope(vector["uuid"], vector["hex"], tz=zone), "gw-7", 0)
    exp = vector["expect"]
    ts = exp.get("timestamp")
    if ts is None or exp.get("device_clock_not_set"):
        event_ns, gw_flag = GW_NS, True
    else:
        dt = datetime.fromisoformat(ts).replace(tzinfo=ZoneInfo(zone))
        event_ns, gw_flag = int(dt.timestamp()) * 1_000_000_000, False
    control = exp.get("glucose_type") == 10 or exp.get("sample_location") == 4
    want_readings, want_errors = [], []
    for field, signal in FIELDS[vector["uuid"]]:
        if field not in exp:
            continue
        if isinstance(exp[field], str):
            want_errors.append(("special_value", f"{field}={exp[field]}"))
        elif control:
            want_errors.append(("control_solution", f"{field}=control_solution"))
        else:
            want_readings.append((signal, by_hand(field, exp[field], exp)))
    readings = [r for r in out if isinstance(r, RawReading)]
    errors = [e for e in out if isinstance(e, VitalstreamError)]
    assert [r.signal for r in readings] == [s for s, _ in want_readings]
    for r, (_, v) in zip(readings, want_readings):
        # raw readings carry the characteristic's unit as a UCUM code; the catalogue converts
        assert r.unit in UCUM
        assert spec(r.signal).to_canonical(r.value, r.unit) == pytest.approx(v, rel=REL_TOL)
        assert (r.device, r.gateway, r.patient, r.user) == ("AA:BB:CC:DD:EE:01", "gw-7", None,
                                                            exp.get("user_id"))
        assert r.event_ns == event_ns
        assert bool(r.quality & Quality.GATEWAY_TIME) == gw_flag
        assert r.source == f"ble:{vector['uuid']}"
    assert [(e.reason, e.detail.split(": ", 1)[1]) for e in errors] == want_errors
    assert all(e.step == "ble_readings" and e.device == "AA:BB:CC:DD:EE:01" for e in errors)


@pytest.mark.parametrize("vector", TRUNCATED, ids=[v["id"] for v in TRUNCATED])
def test_truncated_vectors_from_shared_ble_vectors_json_are_dead_letters_in_ingest(vector):
    ingest = Ingest(Normaliser(max_clock_skew_ns=None))
    out: list = []
    ingest.process(Message("vitalstream/gw-1/ble", envelope(vector["uuid"], vector["hex"]), GW_NS,
                           token="t"), out)
    assert [type(o) for o in out] == [DeadLetter, Ack]
    assert (out[0].reason, out[0].device) == ("truncated", "AA:BB:CC:DD:EE:01")


def test_hr_contact_lost_is_flagged_motion_and_heart_rate_at_gateway_time():
    # 0x04: contact supported, not detected; 0x40 = 64 bpm (hr-contact-supported-not-detected)
    [r] = decode_ble(envelope("2A37", "04 40"), "gw-1", 5)
    assert (r.signal, r.value, r.unit, r.event_ns) == ("heart_rate", 64.0, "/min", GW_NS)
    assert r.quality == Quality.GATEWAY_TIME | Quality.MOTION_ARTEFACT


def test_receive_time_stands_in_when_the_envelope_has_no_gateway_time():
    payload = json.dumps({"device": "AA:BB:CC:DD:EE:01", "uuid": "2A37", "hex": "0048"}).encode()
    [r] = decode_ble(payload, "gw-1", 42)
    assert r.event_ns == 42


def test_envelope_naming_another_gateway_is_identity_mismatch():
    with pytest.raises(IdentityError) as e:
        decode_ble(envelope("2A37", "00 48", gateway="gw-2"), "gw-1", 0)
    assert e.value.reason == "identity_mismatch"
    [r] = decode_ble(envelope("2A37", "00 48", gateway="gw-1"), "gw-1", 0)
    assert r.gateway == "gw-1"


def test_device_clock_zone_defaults_to_the_configured_gateway_zone():
    # bp-anchor-with-year: device clock 2013-04-17T20:41:59; Berlin is UTC+2 in April (CEST)
    hexv = "1E 8A 00 58 00 78 00 DD 07 04 11 14 29 3B 3C 00 01 27 00"
    berlin = make_ble_decoder("Europe/Berlin")(envelope("2A35", hexv), "gw-1", 0)
    utc = make_ble_decoder()(envelope("2A35", hexv), "gw-1", 0)
    t_utc = 1366231319  # 2013-04-17T20:41:59Z: `date -u -d 2013-04-17T20:41:59Z +%s`
    assert {r.event_ns for r in utc if isinstance(r, RawReading)} == {t_utc * 10**9}
    assert {r.event_ns for r in berlin if isinstance(r, RawReading)} == {(t_utc - 7200) * 10**9}


def test_codec_table_is_built_explicitly_and_nothing_registers_on_import():
    # No module-global table to mutate: each caller gets its own.
    assert not hasattr(codecs_mod, "CODECS") and not hasattr(codecs_mod, "register_codec")
    a, b = default_codecs(), default_codecs()
    assert sorted(a) == ["ble", "json", "omh", "senml"] and a is not b
    a["cbor"] = lambda payload, device, recv_ns: []
    assert "cbor" not in b and "cbor" not in default_codecs()
    payload = envelope("2A37", "00 48")
    assert a["ble"](payload, "gw-1", 0) == decode_ble(payload, "gw-1", 0)
    assert a["omh"](_omh_point(), "w", 0) == decode_omh_topic(_omh_point(), "w", 0)


def _omh_point(**header) -> bytes:
    return json.dumps({"header": {"id": "x-1", "creation_date_time": "2024-01-01T00:00:00Z",
                                  "schema_id": {"namespace": "omh", "name": "heart-rate",
                                                "version": "2.0"}, **header},
                       "body": {"heart_rate": {"value": 61, "unit": "beats/min"},
                                "effective_time_frame": {"date_time": "2024-01-01T10:00:00+02:00"}}
                       }).encode()


def test_omh_topic_codec_patient_is_user_id_else_left_to_the_registry():
    [r] = decode_omh_topic(_omh_point(user_id="p-9"), "watch-1", 0)
    # OMH's "beats/min" as the UCUM code it means; canonical /min after normalising
    assert (r.device, r.patient, r.signal, r.value, r.unit) == \
        ("watch-1", "p-9", "heart_rate", 61.0, "{beats}/min")
    assert Normaliser(max_clock_skew_ns=None).normalise(r, 0).unit == "/min"
    assert r.event_ns == 1704096000 * 10**9  # 2024-01-01T08:00:00Z
    [r] = decode_omh_topic(_omh_point(), "watch-1", 0)
    assert r.patient is None


@settings(max_examples=300, deadline=None)
@given(uuid=st.sampled_from(sorted(FIELDS) + ["2A00"]), data=st.binary(max_size=24),
       tz=st.sampled_from([None, "UTC", "Europe/Berlin", "Nowhere/Atlantis"]))
def test_random_bytes_never_raise_out_of_the_codec_or_ingest(uuid, data, tz):
    extra = {} if tz is None else {"tz": tz}
    payload = envelope(uuid, data.hex(), **extra)
    try:
        out = decode_ble(payload, "gw-1", GW_NS)
        assert all(isinstance(x, (RawReading, DecodeError)) for x in out)
    except VitalstreamError:
        pass
    ingest = Ingest(Normaliser(max_clock_skew_ns=None))
    res: list = []
    ingest.process(Message("vitalstream/gw-1/ble", payload, GW_NS, token=1), res)
    # Heard: which gateway relayed a reading (gateway liveness)
    assert isinstance(res[-1], Ack) and all(type(o) in (Reading, DeadLetter, Ack, Heard) for o in res)


# --- simulator encodings ------------------------------------------------------------

NUMERIC_SFLOAT = [v for v in VECTORS["sfloat"] if not isinstance(v["value"], str)]
NUMERIC_FLOAT = [v for v in VECTORS["float"] if not isinstance(v["value"], str)]


@pytest.mark.parametrize("v", NUMERIC_SFLOAT, ids=[v["raw"] for v in NUMERIC_SFLOAT])
def test_sfloat_encoder_round_trips_values_of_shared_ble_vectors_json(v):
    assert decode_sfloat(sfloat(v["value"])) == pytest.approx(v["value"], rel=REL_TOL)


@pytest.mark.parametrize("v", NUMERIC_FLOAT, ids=[v["raw"] for v in NUMERIC_FLOAT])
def test_float_encoder_round_trips_values_of_shared_ble_vectors_json(v):
    assert decode_float(float32(v["value"])) == pytest.approx(v["value"], rel=REL_TOL)


def test_bp_encoding_equals_the_hand_checked_anchor_of_shared_ble_vectors_json():
    # bp-anchor-with-year minus pulse/status: flags 0x0A, 138/88/120 mmHg, 2013-04-17 20:41:59, user 1
    t = 1366231319 * 10**9
    got = blood_pressure_value(138, 88, 120, t, ZoneInfo("UTC"), user=1)
    assert got.hex(" ").upper() == "0A 8A 00 58 00 78 00 DD 07 04 11 14 29 3B 01"


def test_simulated_gateway_messages_decode_to_the_simulated_readings():
    sc = Scenario(patients=3, duration_s=900, seed=5, profiles=["healthy", "tachycardia", "motion"])
    run = ble_gateway_run(sc, tz="America/New_York")
    assert {d.kind for d in run.devices} == {"hr_strap", "oximeter", "bp_cuff", "thermometer"}
    topics = collections.Counter(m.topic.rsplit("/", 1)[1] for m in run.messages)
    assert topics["ble"] > 0 and topics["json"] > 0
    msgs = [Message(m.topic, m.payload, sc.start_ns + round(m.publish_offset_s * 1e9))
            for m in run.messages]
    res = run_reference(msgs, PatientFlow(), lambda: Ingest(Normaliser(max_clock_skew_ns=None),
                                                            patient_of=lambda raw: "x"))
    assert res.dead_letters == [] and res.quarantined == []
    got = collections.Counter((r.device, r.signal.value, r.event_ns, r.value,
                               bool(r.quality & Quality.MOTION_ARTEFACT)) for r in res.readings)
    want = collections.Counter((e.device, e.signal, e.event_ns, e.value, e.motion) for e in run.expected)
    assert got == want
    # every simulated physiology sample is accounted for: sent, or withheld (SpO2 artefacts)
    traces = sum(len(tr.t_s) for t in sc.traces for tr in t.signals.values())
    oximeter_pulses = sum(1 for e in run.expected if e.device.startswith("02:00:02")
                          and e.signal == "heart_rate")
    assert len(run.expected) - oximeter_pulses + run.withheld == traces
    gw_time = {r.signal.value for r in res.readings if r.quality & Quality.GATEWAY_TIME}
    assert "bp_systolic" not in gw_time and {"heart_rate", "spo2", "body_temp"} <= gw_time
