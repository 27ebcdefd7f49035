"""GATT health-characteristic decoders against shared/reference/ble/vectors.json,
plus hand-built payloads for what the vectors do not cover and fuzzing."""

from __future__ import annotations

import base64
import json
import math

import pytest

from vitalstream.testing import shared_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalstream.connectors.ble.gatt import DECODERS, decode_ble_hex, decode_characteristic, normalise_uuid
from vitalstream.connectors.ble.ieee11073 import Special
from vitalstream.errors import DecodeError




VECTORS = json.loads((shared_dir() / "reference" / "ble" / "vectors.json").read_text())
REL_TOL = VECTORS["float_rel_tol"]
UUIDS = ["2A37", "2A35", "2A1C", "2A5E", "2A5F", "2A18", "2A9D"]


def _assert_matches(got: dict, expect: dict) -> None:
    # "an unlisted field is absent": the key sets must be equal, not just overlap
    assert set(got) == set(expect)
    for key, want in expect.items():
        have = got[key]
        if isinstance(want, float):
            assert not isinstance(have, str), (key, have)
            assert math.isclose(have, want, rel_tol=REL_TOL), (key, have, want)
        elif isinstance(want, list) and want and isinstance(want[0], float):
            assert len(have) == len(want)
            assert all(math.isclose(h, w, rel_tol=REL_TOL) for h, w in zip(have, want)), key
        elif isinstance(want, str) and want in {s.value for s in Special} and key != "unit":
            assert isinstance(have, Special) and have == want, (key, have)
        else:
            assert have == want and type(have) is type(want), (key, have, want)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["id"])
def test_vectors_from_shared_ble_vectors_json(vector):
    data = bytes.fromhex(vector["hex"])
    if "error" in vector:
        with pytest.raises(DecodeError) as info:
            decode_characteristic(vector["uuid"], data)
        assert info.value.reason == vector["error"]
        assert info.value.step == "ble_decode"
        assert info.value.detail  # says which field was cut short
    else:
        _assert_matches(decode_characteristic(vector["uuid"], data), vector["expect"])


@pytest.mark.parametrize("vector", [v for v in VECTORS["vectors"] if "expect" in v], ids=lambda v: v["id"])
def test_shared_vectors_survive_json_round_trip_as_the_cli_prints_them(vector):
    printed = json.dumps(decode_ble_hex(vector["uuid"], vector["hex"]))
    _assert_json_equal(json.loads(printed), vector["expect"])


def _assert_json_equal(got: dict, expect: dict) -> None:
    assert set(got) == set(expect)
    for key, want in expect.items():
        if isinstance(want, float):
            assert math.isclose(got[key], want, rel_tol=REL_TOL)
        elif isinstance(want, list) and want and isinstance(want[0], float):
            assert all(math.isclose(h, w, rel_tol=REL_TOL) for h, w in zip(got[key], want))
        else:
            assert got[key] == want


@pytest.mark.parametrize("uuid", ["2A37", "2a37", "0x2A37", "0x2a37", " 2A37 ",
                                  "00002a37-0000-1000-8000-00805f9b34fb",
                                  "00002A37-0000-1000-8000-00805F9B34FB"])
def test_uuid_spellings_select_heart_rate(uuid):
    assert normalise_uuid(uuid) == "2A37"
    assert decode_characteristic(uuid, bytes.fromhex("0048"))["hr_bpm"] == 72


@pytest.mark.parametrize("uuid", ["2A3", "0x2A37A", "12345678-0000-1000-8000-00805f9b34fb",
                                  "00002a37-0000-1000-8000-00805f9b34fc", "heart"])
def test_malformed_uuid_is_rejected(uuid):
    with pytest.raises(DecodeError) as info:
        decode_characteristic(uuid, b"\x00\x48")
    assert info.value.reason == "bad_uuid"


def test_unknown_characteristic_is_rejected_with_reason():
    with pytest.raises(DecodeError) as info:
        decode_characteristic("2A6E", b"\x64\x09")  # Environmental Sensing Temperature: not ours
    assert info.value.reason == "unknown_characteristic"


def test_hex_and_base64_text_give_the_same_octets():
    octets = bytes.fromhex("1E5532002100")
    b64 = base64.b64encode(octets).decode()
    by_hex = decode_ble_hex("2A37", "1E 55 32 00 21 00")
    assert decode_ble_hex("2A37", "1e:55:32:00:21:00") == by_hex
    assert decode_ble_hex("2A37", "0x1E5532002100") == by_hex
    assert decode_ble_hex("2A37", b64) == by_hex
    assert decode_ble_hex("2A37", "b64:" + b64) == by_hex
    assert by_hex["hr_bpm"] == 0x55 and by_hex["energy_expended_kj"] == 0x32


def test_text_that_is_neither_hex_nor_base64_is_rejected():
    with pytest.raises(DecodeError) as info:
        decode_ble_hex("2A37", "zz!")
    assert info.value.reason == "bad_payload_text"


def test_trailing_octets_after_announced_fields_are_ignored():
    # BP 120/80/93 mmHg, flags 0 (bp-mmhg-minimal) plus two octets a later spec may add
    base = decode_characteristic("2A35", bytes.fromhex("00 78 00 50 00 5D 00"))
    assert decode_characteristic("2A35", bytes.fromhex("00 78 00 50 00 5D 00 AA BB")) == base


def test_rr_flag_without_any_interval_is_truncated():
    # flags 0x10 announce RR-intervals; HR 70 and nothing after it
    with pytest.raises(DecodeError) as info:
        decode_characteristic("2A37", bytes.fromhex("10 46"))
    assert info.value.reason == "truncated"


def test_uint16_heart_rate_above_255():
    # flags 0x01: uint16 HR; 0x012C = 300 (implausible but decodable)
    assert decode_characteristic("2A37", bytes.fromhex("01 2C 01"))["hr_bpm"] == 300


@pytest.mark.parametrize("date_time, reason", [
    ("E8 07 0D 01 00 00 00", "month 13"),
    ("E8 07 02 1E 00 00 00", "30 February"),
    ("E8 07 01 01 18 00 00", "hour 24"),
    ("D0 00 01 01 00 00 00", "year 208 (before 1582)"),
])
def test_invalid_date_time_is_bad_datetime(date_time, reason):
    # Temperature Measurement, flags 0x02 (timestamp), 37.6 Cel as FLOAT 0xFE000EB0
    payload = bytes.fromhex("02 B0 0E 00 FE " + date_time)
    with pytest.raises(DecodeError) as info:
        decode_characteristic("2A1C", payload)
    assert info.value.reason == "bad_datetime", reason


def test_month_unknown_gives_null_timestamp():
    # Date Time with month 0 ("not known") -> timestamp null, other fields intact
    got = decode_characteristic("2A1C", bytes.fromhex("02 B0 0E 00 FE E8 07 00 01 08 00 00"))
    assert got["timestamp"] is None and got["temperature"] == 37.6


def test_glucose_with_unknown_base_time_has_null_timestamp_but_keeps_offset():
    # flags 0x01 (time offset), seq 5, base time year 0, offset +10 min
    got = decode_characteristic("2A18", bytes.fromhex("01 05 00 00 00 05 14 07 2D 00 0A 00"))
    assert got["base_time"] is None and got["timestamp"] is None
    assert got["time_offset_min"] == 10


def test_weight_imperial_height_and_unsuccessful():
    # flags 0x09: lb + BMI/height; 0xFFFF weight = unsuccessful; BMI 251 -> 25.1; height 713 -> 71.3 in
    got = decode_characteristic("2A9D", bytes.fromhex("09 FF FF FB 00 C9 02"))
    assert got["weight_lb"] == Special.UNSUCCESSFUL
    assert got["bmi"] == 25.1 and got["height_in"] == 71.3


@settings(max_examples=300, deadline=None)
@given(uuid=st.sampled_from(UUIDS), data=st.binary(max_size=40))
def test_random_bytes_raise_only_decode_error(uuid, data):
    try:
        out = decode_characteristic(uuid, data)
    except DecodeError as exc:
        assert exc.reason in {"truncated", "bad_datetime"}
    else:
        assert out["flags"] == data[0]
        json.dumps(out)  # always printable by the CLI


@settings(max_examples=300, deadline=None)
@given(uuid=st.sampled_from(UUIDS), flags=st.integers(0, 255), body=st.binary(min_size=0, max_size=30))
def test_every_flags_octet_with_random_body_raises_only_decode_error(uuid, flags, body):
    # st.binary rarely produces a plausible Date Time; forcing each flags value
    # with a valid-looking time in the body reaches the optional-field branches.
    payload = bytes([flags]) + body[:6] + bytes.fromhex("E8 07 05 14 07 2D 00") + body[6:]
    try:
        decode_characteristic(uuid, payload)
    except DecodeError:
        pass


def test_decoders_cover_exactly_the_seven_characteristics():
    # and Battery Level (2A19), a device state with no shared vectors: tests/test_device_flags.py
    assert sorted(DECODERS) == sorted([*UUIDS, "2A19"])
    covered = {v["uuid"] for v in VECTORS["vectors"]}
    assert covered == set(UUIDS)
