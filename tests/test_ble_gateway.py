"""BLE readings mapping (units, time, specials, users) and gateway envelopes.

Payloads come from shared/reference/ble/vectors.json (looked up by id); expected
values are computed here by hand from published factors: 1 mmHg = 133.322387415
Pa (BIPM SI brochure / NIST SP 811), 1 lb = 0.45359237 kg (exact by definition),
D-glucose 180.156 g/mol, degF -> Cel (F - 32) * 5/9; UTC instants from
``calendar.timegm`` and the zones' published offsets.
"""

from __future__ import annotations

import base64
import calendar
import dataclasses
import json
import math

import pytest

from vitalstream.testing import shared_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalstream.connectors.ble.adverts import advert_to_readings
from vitalstream.connectors.ble.gatt import decode_characteristic
from vitalstream.connectors.ble.gateway import (
    KIND_ADVERT,
    KIND_GATT,
    frame_to_readings,
    parse_envelope,
)
from vitalstream.connectors.ble.ieee11073 import Special
from vitalstream.connectors.ble.readings import to_readings
from vitalstream.errors import DecodeError, IdentityError
from vitalstream.model import Quality
from vitalstream.operators.normalise import Normaliser
from vitalstream.signals import Signal




VECTORS = {v["id"]: v for v in json.loads(
    (shared_dir() / "reference" / "ble" / "vectors.json").read_text())["vectors"]}
GW_NS = 1_800_000_000 * 10**9
PA_PER_MMHG = 133.322387415


def _utc_ns(*ymdhms: int) -> int:
    return calendar.timegm((*ymdhms, 0, 0, 0)) * 10**9


def _readings(vector_id: str, tz: str = "UTC", **kw):
    v = VECTORS[vector_id]
    decoded = decode_characteristic(v["uuid"], bytes.fromhex(v["hex"]))
    return to_readings(v["uuid"], decoded, device="cuff-1", patient="pat-1",
                       gateway_ns=GW_NS, tz=tz, **kw)


def _canonical(result):
    """The mapping's raw readings through the normaliser (the one place that converts units)."""
    norm = Normaliser(max_clock_skew_ns=None)
    return dataclasses.replace(result, readings=[norm.normalise(r, GW_NS) for r in result.readings])


def _by_signal(result) -> dict[Signal, float]:
    return {r.signal: r.value for r in _canonical(result).readings}


# --- to_readings: units -----------------------------------------------------------

def test_vector_bp_kpa_timestamp_pulse_converts_kpa_to_mmhg():
    res = _readings("bp-kpa-timestamp-pulse")
    got = _by_signal(res)
    for signal, kpa in ((Signal.BP_SYSTOLIC, 18.7), (Signal.BP_DIASTOLIC, 11.2), (Signal.BP_MEAN, 13.7)):
        assert math.isclose(got[signal], kpa * 1000.0 / PA_PER_MMHG, rel_tol=1e-12)
    assert math.isclose(got[Signal.BP_SYSTOLIC], 140.2615, rel_tol=1e-6)  # 18.7 kPa ~ 140.26 mmHg
    assert got[Signal.HEART_RATE] == 81.0  # cuff pulse rate is a heart_rate reading
    # raw: the cuff's unit (flag bit 0: kPa) as a UCUM code; canonical mm[Hg] once normalised
    assert {r.unit for r in res.readings if r.signal != Signal.HEART_RATE} == {"kPa"}
    assert {r.unit for r in _canonical(res).readings if r.signal != Signal.HEART_RATE} == {"mm[Hg]"}


def test_vector_temp_fahrenheit_converts_to_celsius():
    res = _readings("temp-fahrenheit-timestamp-type")  # 101.3 degF
    assert [(r.value, r.unit) for r in res.readings] == [(pytest.approx(101.3), "[degF]")]
    (r,) = _canonical(res).readings
    assert r.signal == Signal.BODY_TEMP and r.unit == "Cel"
    assert math.isclose(r.value, (101.3 - 32.0) * 5.0 / 9.0, rel_tol=1e-12)
    assert math.isclose(r.value, 38.5, rel_tol=1e-12)


def test_vector_glucose_kg_per_l_and_mol_per_l_become_mg_per_dl():
    # 0.00092 kg/L = 920 mg/L = 92 mg/dL
    assert [r.unit for r in _readings("glu-kgl-offset-type-status").readings] == ["kg/L"]
    (r,) = _canonical(_readings("glu-kgl-offset-type-status")).readings
    assert r.unit == "mg/dL" and math.isclose(r.value, 92.0, rel_tol=1e-12)
    # 0.0061 mol/L = 6.1 mmol/L; x 180.156 mg/mmol / 10 dL/L
    assert [r.unit for r in _readings("glu-moll-offset-zero").readings] == ["mol/L"]
    (r,) = _canonical(_readings("glu-moll-offset-zero")).readings
    assert math.isclose(r.value, 6.1 * 180.156 / 10.0, rel_tol=1e-12)


def test_vector_weight_imperial_converts_pounds_to_kg():
    assert [r.unit for r in _readings("wt-imperial-minimal").readings] == ["[lb_av]"]
    (r,) = _canonical(_readings("wt-imperial-minimal")).readings  # 154.32 lb
    assert r.unit == "kg" and math.isclose(r.value, 154.32 * 0.45359237, rel_tol=1e-12)


def test_vector_plx_spot_anchor_gives_spo2_and_heart_rate():
    got = _by_signal(_readings("plx-spot-anchor"))
    assert got == {Signal.SPO2: 100.0, Signal.HEART_RATE: 90.0}


# --- to_readings: time ------------------------------------------------------------

def test_device_time_in_berlin_winter_is_utc_plus_one():
    # 2024-03-10 07:15:00 CET (UTC+1, before the 31 March switch) = 06:15:00Z
    res = _readings("bp-kpa-timestamp-pulse", tz="Europe/Berlin")
    assert {r.event_ns for r in res.readings} == {_utc_ns(2024, 3, 10, 6, 15, 0)}
    # raw readings carry no receive time: the normaliser is given the message's
    assert all(r.quality == Quality.OK for r in res.readings)


def test_device_time_in_new_york_summer_is_utc_minus_four():
    # wt-si-all-fields: 2025-07-04 06:30:00 EDT (UTC-4) = 10:30:00Z
    (r,) = _readings("wt-si-all-fields", tz="America/New_York").readings
    assert r.event_ns == _utc_ns(2025, 7, 4, 10, 30, 0)


def test_glucose_time_is_base_time_plus_offset_in_zone():
    # base 2024-03-01 00:30 + (-45 min) = 2024-02-29 23:45 in Asia/Tokyo (UTC+9) = 14:45Z
    (r,) = _readings("glu-negative-offset-leap-day", tz="Asia/Tokyo").readings
    assert r.event_ns == _utc_ns(2024, 2, 29, 14, 45, 0)


def test_ambiguous_time_in_dst_fold_takes_the_summer_time_instant():
    # 2024-10-27 02:30 happens twice in Berlin; fold=0 is CEST (UTC+2) = 00:30Z
    decoded = {"flags": 2, "temperature": 37.0, "temperature_unit": "Cel",
               "timestamp": "2024-10-27T02:30:00"}
    res = to_readings("2A1C", decoded, device="t", patient="p", gateway_ns=GW_NS, tz="Europe/Berlin")
    assert res.readings[0].event_ns == _utc_ns(2024, 10, 27, 0, 30, 0)


@pytest.mark.parametrize("vector_id", ["hr-anchor-uint8-contact-ee-rr", "bp-anchor-year-unknown",
                                       "plx-spot-clock-not-set", "plx-cont-normal-only"])
def test_gateway_time_fallback_sets_flag(vector_id):
    res = _readings(vector_id, tz="Europe/Berlin")
    assert res.readings
    for r in res.readings:
        assert r.event_ns == GW_NS and Quality.GATEWAY_TIME in r.quality


def test_bp_anchor_with_year_uses_device_time():
    (first, *_) = _readings("bp-anchor-with-year", tz="UTC").readings
    assert first.event_ns == _utc_ns(2013, 4, 17, 20, 41, 59)
    assert Quality.GATEWAY_TIME not in first.quality


# --- to_readings: special values, control solution, quality, users ----------------

def test_vector_bp_map_nan_is_omitted_and_reported():
    res = _readings("bp-map-nan-pulse-decimal")
    assert _by_signal(res) == {Signal.BP_SYSTOLIC: 135.0, Signal.BP_DIASTOLIC: 85.0, Signal.HEART_RATE: 72.5}
    (om,) = res.omitted
    assert (om.signal, om.field, om.special) == (Signal.BP_MEAN, "map", Special.NAN)
    assert om.reason == "special_value"
    assert all(not math.isnan(r.value) for r in res.readings)


@pytest.mark.parametrize("vector_id, specials", [
    ("plx-spot-nres-nan", {(Signal.SPO2, "NRes"), (Signal.HEART_RATE, "NaN")}),
    ("bp-pulse-reserved-special", {(Signal.HEART_RATE, "reserved")}),
    ("temp-nan", {(Signal.BODY_TEMP, "NaN")}),
    ("wt-unsuccessful", {(Signal.BODY_WEIGHT, "unsuccessful")}),
])
def test_special_values_never_become_readings(vector_id, specials):
    res = _readings(vector_id)
    assert {(o.signal, o.special) for o in res.omitted} == specials
    assert not {r.signal for r in res.readings} & {s for s, _ in specials}


def test_special_value_names_after_a_json_round_trip_are_still_omitted():
    decoded = {"flags": 0, "temperature": "NaN", "temperature_unit": "Cel"}
    res = to_readings("2A1C", decoded, device="t", patient="p", gateway_ns=GW_NS, tz="UTC")
    assert res.readings == [] and res.omitted[0].special is Special.NAN
    with pytest.raises(DecodeError) as info:
        to_readings("2A1C", {**decoded, "temperature": "hot"}, device="t", patient="p",
                    gateway_ns=GW_NS, tz="UTC")
    assert info.value.reason == "bad_value"


def test_vector_glucose_control_solution_is_not_a_patient_reading():
    # glucose_type 10 and sample_location 4 both mean "control solution" (GLS)
    res = _readings("glu-context-follows-status")
    assert res.readings == []
    assert [(o.signal, o.reason) for o in res.omitted] == [(Signal.GLUCOSE, "control_solution")]


def test_contact_loss_and_body_movement_flag_motion_artefact():
    (r,) = _readings("hr-contact-supported-not-detected").readings
    assert Quality.MOTION_ARTEFACT in r.quality
    (r,) = _readings("hr-anchor-uint8-contact-ee-rr").readings
    assert Quality.MOTION_ARTEFACT not in r.quality
    res = _readings("bp-user-status")  # measurement status bit 0: body movement
    assert all(Quality.MOTION_ARTEFACT in r.quality for r in res.readings)


def test_multi_user_cuff_maps_user_index_to_patient():
    res = _readings("bp-user-status")
    assert res.user_id == 3 and {r.patient for r in res.readings} == {"pat-1"}
    res = _readings("bp-user-status", patient_by_user={1: "alice", 3: "carol"})
    assert {r.patient for r in res.readings} == {"carol"}
    with pytest.raises(IdentityError) as info:
        _readings("bp-user-status", patient_by_user={1: "alice"})
    assert info.value.reason == "unknown_user" and info.value.device == "cuff-1"
    assert _readings("wt-si-unknown-user").user_id == 255


def test_unknown_zone_name_is_a_decode_error():
    with pytest.raises(DecodeError) as info:
        _readings("bp-anchor-with-year", tz="Mars/Olympus_Mons")
    assert info.value.reason == "bad_tz"


# --- gateway envelopes ------------------------------------------------------------

GENERIC = {"gateway": "gw-1", "device": "aa:bb:cc:dd:ee:ff", "uuid": "2A37",
           "hex": "1E 55 32 00 21 00", "t": "2026-11-25T10:00:00Z", "rssi": -61, "tz": "Europe/Berlin"}


def test_generic_envelope_parses_every_field():
    f = parse_envelope(json.dumps(GENERIC).encode())
    assert f.kind == KIND_GATT and f.gateway_id == "gw-1" and f.device == "AA:BB:CC:DD:EE:FF"
    assert f.uuid == "2A37" and f.value == bytes([0x1E, 0x55, 0x32, 0x00, 0x21, 0x00])
    assert f.recv_ns == _utc_ns(2026, 11, 25, 10, 0, 0) and f.rssi == -61 and f.tz_name == "Europe/Berlin"


def test_generic_envelope_b64_offset_time_and_full_uuid():
    env = {"device": "cuff-7", "uuid": "00002a35-0000-1000-8000-00805f9b34fb",
           "b64": base64.b64encode(bytes.fromhex(VECTORS["bp-mmhg-minimal"]["hex"])).decode(),
           "t": "2026-11-25T11:00:00+01:00"}
    f = parse_envelope(json.dumps(env), topic="ward/3/gw-9")
    assert f.uuid == "2A35" and f.device == "cuff-7" and f.gateway_id is None
    assert f.value == bytes.fromhex("00 78 00 50 00 5D 00")
    assert f.recv_ns == _utc_ns(2026, 11, 25, 10, 0, 0) and f.rssi is None and f.tz_name is None


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", "bad_json"),
    (b"\xff\xfe", "bad_json"),
    (b"[1, 2]", "not_an_object"),
    (b"{}", "missing_field"),
    (json.dumps({**GENERIC, "uuid": None}).encode(), "missing_field"),
    (json.dumps({k: v for k, v in GENERIC.items() if k != "hex"}).encode(), "missing_field"),
    (json.dumps({**GENERIC, "b64": "AAA="}).encode(), "bad_field"),
    (json.dumps({**GENERIC, "uuid": "heart"}).encode(), "bad_field"),
    (json.dumps({**GENERIC, "hex": "1E 5"}).encode(), "bad_payload_text"),
    (json.dumps({**GENERIC, "t": "2026-11-25T10:00:00"}).encode(), "naive_time"),
    (json.dumps({**GENERIC, "t": "yesterday"}).encode(), "bad_field"),
    (json.dumps({**GENERIC, "t_ns": 5}).encode(), "bad_field"),
    (json.dumps({**GENERIC, "rssi": "-61"}).encode(), "bad_field"),
    (json.dumps({**GENERIC, "tz": "Europe/Atlantis"}).encode(), "bad_tz"),
    (json.dumps({"id": "AA:BB:CC:DD:EE:FF", "servicedata": "xyz"}).encode(), "bad_payload_text"),
])
def test_malformed_envelopes_raise_decode_error_with_reason(payload, reason):
    with pytest.raises(DecodeError) as info:
        parse_envelope(payload)
    assert info.value.reason == reason and info.value.step == "ble_gateway"


def test_frame_to_readings_uses_envelope_zone_for_device_time():
    env = {"device": "cuff-7", "uuid": "2A35", "hex": VECTORS["bp-anchor-with-year"]["hex"],
           "tz": "America/New_York", "t_ns": GW_NS}
    res = frame_to_readings(parse_envelope(json.dumps(env)), patient="p", recv_ns=1, default_tz="UTC")
    # 2013-04-17 20:41:59 EDT (UTC-4) = 2013-04-18 00:41:59Z
    assert {r.event_ns for r in res.readings} == {_utc_ns(2013, 4, 18, 0, 41, 59)}
    assert res.user_id == 1 and {r.user for r in res.readings} == {1}


def test_frame_to_readings_falls_back_to_default_zone_and_caller_receive_time():
    env = {"device": "cuff-7", "uuid": "2A35", "hex": VECTORS["bp-anchor-with-year"]["hex"]}
    res = frame_to_readings(parse_envelope(json.dumps(env)), patient="p", recv_ns=42,
                            default_tz="Asia/Kolkata")
    # 20:41:59 IST (UTC+5:30) = 15:11:59Z
    assert {r.event_ns for r in res.readings} == {_utc_ns(2013, 4, 17, 15, 11, 59)}
    hr = frame_to_readings(parse_envelope(json.dumps(GENERIC)), patient="p", recv_ns=42, default_tz="UTC")
    assert hr.readings[0].event_ns == _utc_ns(2026, 11, 25, 10, 0, 0)  # envelope t wins over recv_ns


def test_frame_decode_error_names_the_device():
    env = {"device": "AABBCCDDEEFF", "uuid": "2A37", "hex": VECTORS["hr-truncated-energy-expended"]["hex"]}
    with pytest.raises(DecodeError) as info:
        frame_to_readings(parse_envelope(json.dumps(env)), patient="p", recv_ns=0, default_tz="UTC")
    assert info.value.reason == "truncated" and info.value.device == "AA:BB:CC:DD:EE:FF"
    assert "AA:BB:CC:DD:EE:FF" in str(info.value)


_json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20), st.lists(st.integers(), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["gateway", "device", "uuid", "hex", "b64", "t", "t_ns", "rssi",
                                        "tz", "id", "servicedata", "manufacturerdata", "model_id"]),
                       _json_values, max_size=8))
def test_random_envelopes_raise_only_decode_error(obj):
    try:
        frame = parse_envelope(json.dumps(obj))
    except DecodeError:
        return
    try:
        frame_to_readings(frame, patient="p", recv_ns=0, default_tz="UTC")
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_payload_bytes_raise_only_decode_error(payload):
    try:
        parse_envelope(payload)
    except DecodeError:
        pass


# --- Theengs / OpenMQTTGateway advertisements -----------------------------------

def test_already_decoded_theengs_heart_rate_strap():
    # Decoded form as published by Theengs Gateway for a Polar H10 (theengs/decoder tests/BLE/test_ble.cpp)
    msg = {"id": "C8:7D:00:00:00:01", "rssi": -60, "brand": "Polar", "model": "Heart Rate Sensor",
           "model_id": "H10", "type": "BODY", "bpm": 70}
    f = parse_envelope(json.dumps(msg), topic="home/TheengsGateway/BTtoMQTT/C87D00000001")
    assert f.kind == KIND_ADVERT and f.gateway_id == "TheengsGateway" and f.rssi == -60 and f.recv_ns is None
    res = frame_to_readings(f, patient="p", recv_ns=GW_NS, default_tz="UTC")
    (r,) = res.readings
    assert (r.signal, r.value, r.event_ns) == (Signal.HEART_RATE, 70.0, GW_NS)
    assert r.quality == Quality.GATEWAY_TIME


def test_theengs_scale_object_mode_and_ambient_thermometer_give_no_patient_reading():
    obj = {"type": "SCALE", "model_id": "XMTZC01HM/XMTZC04HM", "weighing_mode": "object",
           "unit": "kg", "weight": 9.55}
    res = advert_to_readings(obj, device="d", patient="p", gateway_ns=GW_NS)
    assert res.readings == [] and res.omitted[0].reason == "not_a_person"
    room = {"type": "THB", "model_id": "LYWSDCGQ", "tempc": 26, "hum": 61.4}
    assert advert_to_readings(room, device="d", patient="p", gateway_ns=GW_NS).readings == []
    coffee = {"type": "SCALE", "model_id": "SKALE", "weight": 123.9}  # no weighing_mode
    assert advert_to_readings(coffee, device="d", patient="p", gateway_ns=GW_NS).readings == []


def test_theengs_scale_in_pounds_converts_to_kg():
    obj = {"type": "SCALE", "model_id": "XMTZC02HM/XMTZC05HM", "weighing_mode": "person",
           "unit": "lb", "weight": 140.65}
    res = advert_to_readings(obj, device="d", patient="p", gateway_ns=GW_NS)
    assert [(r.value, r.unit) for r in res.readings] == [(140.65, "[lb_av]")]
    (r,) = _canonical(res).readings
    assert r.unit == "kg" and math.isclose(r.value, 140.65 * 0.45359237, rel_tol=1e-12)


def test_raw_mi_scale_advertisement_is_decoded_by_theengsdecoder():
    pytest.importorskip("TheengsDecoder")
    # Mi Scale v1 service data from theengs/decoder tests/BLE/test_ble.cpp (uuid 0x181d);
    # octets 1-2 little-endian 0x303E = 12350 x 0.005 kg = 61.75 kg, person mode.
    msg = {"id": "AA:BB:CC:DD:EE:FF", "rssi": -70, "servicedata": "223e30e607020e10293a",
           "servicedatauuid": "0x181d"}
    f = parse_envelope(json.dumps(msg), topic="home/OMG_ESP32_BLE/BTtoMQTT/AABBCCDDEEFF")
    assert f.gateway_id == "OMG_ESP32_BLE" and f.service_uuid == "0x181d"
    assert f.decoded is not None and f.decoded["model_id"] == "XMTZC01HM/XMTZC04HM"
    (r,) = _canonical(frame_to_readings(f, patient="p", recv_ns=GW_NS, default_tz="UTC")).readings
    assert r.signal == Signal.BODY_WEIGHT and math.isclose(r.value, 0x303E * 0.005, rel_tol=1e-12)


def test_raw_polar_manufacturer_data_is_decoded_by_theengsdecoder():
    pytest.importorskip("TheengsDecoder")
    # theengs/decoder test input: name "Polar H10 75087320", data 6b002f166b68 -> bpm 104 (last octet 0x68)
    msg = {"id": "C8:7D:00:00:00:01", "name": "Polar H10 75087320", "manufacturerdata": "6b002f166b68"}
    (r,) = frame_to_readings(parse_envelope(json.dumps(msg)), patient="p", recv_ns=GW_NS,
                             default_tz="UTC").readings
    assert (r.signal, r.value) == (Signal.HEART_RATE, float(0x68))


def test_unknown_advertisement_gives_no_readings():
    pytest.importorskip("TheengsDecoder")
    msg = {"id": "AA:BB:CC:DD:EE:FF", "servicedata": "00", "servicedatauuid": "0xffff"}
    f = parse_envelope(json.dumps(msg))
    assert f.decoded is None
    assert frame_to_readings(f, patient="p", recv_ns=GW_NS, default_tz="UTC").readings == []
