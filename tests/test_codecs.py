"""Native JSON and SenML (RFC 8428) decoding, and topic parsing.

Times are worked out by hand: 2026-11-25T10:00:00Z is day 20782 after the epoch
(56 years with 14 leap days = 20454 days, plus 328 days of 2026 to 25 Nov), so
20782 * 86400 + 10 * 3600 = 1795600800 s. SenML packs are the RFC 8428 section
5.1.2 and 5.1.3 examples with their names changed to our signals.
"""

from __future__ import annotations

import calendar
import json

import pytest

from vitalstream.connectors.codecs import decode_json, decode_senml, parse_topic
from vitalstream.errors import DecodeError, IdentityError, VitalstreamError
from vitalstream.model import DeadLetter, Message, Quality, RawReading, Reading
from vitalstream.operators.normalise import Normaliser
from vitalstream.stream.ingest import Ack, Ingest

NS = 1_000_000_000
T0_S = 1795600800  # 2026-11-25T10:00:00Z
T0 = T0_S * NS
RECV = T0 + 5 * NS


def _j(doc) -> bytes:
    return json.dumps(doc).encode()


def test_epoch_arithmetic_agrees_with_calendar_timegm():
    assert calendar.timegm((2026, 11, 25, 10, 0, 0)) == T0_S


# --- topics -----------------------------------------------------------------------------

@pytest.mark.parametrize("topic,expected", [
    ("vitalstream/dev-7/json", ("dev-7", "json")),
    ("vitalstream/dev-7/senml", ("dev-7", "senml")),
    ("site-a/ward-3/vitalstream/dev-7/senml", ("dev-7", "senml")),
    ("vitalstream/urn:dev:ow:10e2073a01080063/senml", ("urn:dev:ow:10e2073a01080063", "senml")),
])
def test_parse_topic(topic, expected):
    assert parse_topic(topic) == expected


@pytest.mark.parametrize("topic", ["", "json", "dev-7/json", "vitalstream//json",
                                   "vitalstream/dev-7/"])
def test_parse_topic_rejects_malformed(topic):
    # "dev-7/json" has no prefix level: rsplit gives only two parts.
    with pytest.raises(DecodeError) as ei:
        parse_topic(topic)
    assert ei.value.reason == "bad_topic"


# --- native JSON --------------------------------------------------------------------------

def test_json_readings_array_with_z_offset_and_t_ns():
    payload = _j({"v": 1, "device": "dev-7", "patient": "p-7", "readings": [
        {"signal": "heart_rate", "value": 71.0, "unit": "/min", "t": "2026-11-25T10:00:00.250Z"},
        {"signal": "spo2", "value": 97, "t": "2026-11-25T12:00:01.5+02:00"},
        {"signal": "steps", "value": 0, "unit": "count", "t_ns": T0 + 7},
        {"signal": "body_temp", "value": 98.6, "unit": "[degF]", "t": "2026-11-25T05:00:00-05:00",
         "flags": ["motion"]},
    ]})
    out = decode_json(payload, "dev-7", RECV)
    assert out == [
        RawReading("dev-7", "p-7", "heart_rate", 71.0, "/min", T0 + 250_000_000),
        RawReading("dev-7", "p-7", "spo2", 97.0, None, T0 + 1_500_000_000),
        RawReading("dev-7", "p-7", "steps", 0.0, "count", T0 + 7),
        RawReading("dev-7", "p-7", "body_temp", 98.6, "[degF]", T0, Quality.MOTION_ARTEFACT),
    ]
    assert all(type(r.value) is float for r in out)


def test_json_single_object_without_readings_array():
    out = decode_json(_j({"signal": "heart_rate", "value": 64, "t": "2026-11-25T10:00:00Z"}),
                      "dev-1", RECV)
    assert out == [RawReading("dev-1", None, "heart_rate", 64.0, None, T0)]


@pytest.mark.parametrize("t", ["2026-11-25T10:00:00", "2026-11-25 10:00:00", "yesterday", 1795600800,
                               "2026-13-01T00:00:00Z"])
def test_json_bad_or_naive_time_is_bad_time(t):
    out = decode_json(_j({"signal": "heart_rate", "value": 64, "t": t}), "dev-1", RECV)
    assert len(out) == 1 and isinstance(out[0], DecodeError)
    assert out[0].reason == "bad_time"


@pytest.mark.parametrize("t_ns", [1.7958e18, True, "1795600800000000000"])
def test_json_t_ns_must_be_an_integer(t_ns):
    out = decode_json(_j({"signal": "heart_rate", "value": 64, "t_ns": t_ns}), "dev-1", RECV)
    assert out[0].reason == "bad_time"


@pytest.mark.parametrize("payload", [b"{not json", b"", b"\xff\xfe", b'{"readings": [}'])
def test_json_bad_json(payload):
    with pytest.raises(DecodeError) as ei:
        decode_json(payload, "dev-1", RECV)
    assert ei.value.reason == "bad_json"
    assert ei.value.device == "dev-1"


@pytest.mark.parametrize("item", [
    {"value": 64, "t_ns": T0},                       # no signal
    {"signal": "heart_rate", "t_ns": T0},            # no value
    {"signal": "heart_rate", "value": 64},           # no time
    "heart_rate=64",                                 # not an object
])
def test_json_missing_fields(item):
    out = decode_json(_j({"readings": [item]}), "dev-1", RECV)
    assert out[0].reason == "missing_field"


@pytest.mark.parametrize("payload", [_j([1, 2]), _j("text"), _j({"readings": {"signal": "x"}})])
def test_json_payload_shape_errors(payload):
    with pytest.raises(DecodeError) as ei:
        decode_json(payload, "dev-1", RECV)
    assert ei.value.reason == "missing_field"


def test_json_device_mismatch_is_identity_error():
    with pytest.raises(IdentityError) as ei:
        decode_json(_j({"device": "dev-2", "signal": "heart_rate", "value": 60, "t_ns": T0}),
                    "dev-1", RECV)
    assert ei.value.reason == "identity_mismatch"
    assert ei.value.device == "dev-1"


# NaN/Infinity literals are not JSON: the whole payload is refused (tests/test_input_limits.py)
@pytest.mark.parametrize("raw", ["true", "false", '"72"', "null", "[72]"])
def test_json_non_numeric_values_rejected(raw):
    payload = ('{"readings": [{"signal": "heart_rate", "value": %s, "t_ns": %d}]}' % (raw, T0)).encode()
    out = decode_json(payload, "dev-1", RECV)
    assert out[0].reason == "bad_value"


def test_json_one_bad_record_keeps_the_good_ones():
    payload = _j({"patient": "p-1", "readings": [
        {"signal": "heart_rate", "value": 61, "t_ns": T0},
        {"signal": "heart_rate", "value": True, "t_ns": T0 + NS},
        {"signal": "heart_rate", "value": 63, "t": "2026-11-25T10:00:02"},
        {"signal": "heart_rate", "value": 64, "t_ns": T0 + 3 * NS},
    ]})
    out = decode_json(payload, "dev-1", RECV)
    assert [type(o) for o in out] == [RawReading, DecodeError, DecodeError, RawReading]
    assert [o.reason for o in out[1:3]] == ["bad_value", "bad_time"]
    assert (out[0].value, out[0].event_ns) == (61.0, T0)
    assert (out[3].value, out[3].event_ns) == (64.0, T0 + 3 * NS)


# --- SenML (RFC 8428) -----------------------------------------------------------------------

RFC_DEV = "urn:dev:ow:10e2073a01080063"


def test_senml_rfc8428_5_1_2_multiple_datapoints_without_time_is_now():
    # RFC: [{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
    #       {"n":"current","u":"A","v":1.2}]  -- no time: measured "now" (receive time).
    pack = [{"bn": RFC_DEV + ":", "n": "heart_rate", "u": "beat/min", "v": 120.1},
            {"n": "spo2", "u": "/", "v": 0.97}]
    out = decode_senml(_j(pack), RFC_DEV, RECV)
    assert out == [RawReading(RFC_DEV, None, "heart_rate", 120.1, "beat/min", RECV, source="senml"),
                   RawReading(RFC_DEV, None, "spo2", 0.97, "/", RECV, source="senml")]


def test_senml_rfc8428_5_1_3_multiple_measurements_base_time_and_unit():
    # RFC pack with bt 1.276020076001e+09, bu "A", first record its own unit "V",
    # then six records of "current" at t = -5..0 relative to bt.
    dev = "urn:dev:ow:10e2073a0108006"
    pack = [{"bn": dev + ":", "bt": 1.276020076001e+09, "bu": "/min", "bver": 5,
             "n": "heart_rate", "u": "beat/min", "v": 120.1}]
    pack += [{"n": "resp_rate", "t": -k, "v": 12 + (5 - k)} for k in (5, 4, 3, 2, 1)]
    pack += [{"n": "resp_rate", "v": 17}]
    out = decode_senml(_j(pack), dev, RECV)
    base = 1276020076 * NS + 1_000_000  # 1276020076.001 s
    assert out[0] == RawReading(dev, None, "heart_rate", 120.1, "beat/min", base, source="senml")
    assert [(o.signal, o.value, o.unit, o.event_ns) for o in out[1:]] == [
        ("resp_rate", 12.0, "/min", base - 5 * NS),   # 1276020071.001 s, as in RFC 5.1.4
        ("resp_rate", 13.0, "/min", base - 4 * NS),
        ("resp_rate", 14.0, "/min", base - 3 * NS),
        ("resp_rate", 15.0, "/min", base - 2 * NS),
        ("resp_rate", 16.0, "/min", base - 1 * NS),
        ("resp_rate", 17.0, "/min", base),
    ]


def test_senml_base_value_and_redefined_base_fields():
    pack = [{"bn": "dev-1:", "bt": T0_S, "bv": 100, "bu": "mg/dL", "n": "glucose", "v": -2},
            {"n": "glucose", "t": 60, "v": 5},
            {"bt": T0_S + 120, "bv": 0, "bu": "mmol/L", "n": "glucose", "v": 5.5},
            {"n": "glucose", "t": 30, "v": 6.0, "u": "mg/dL"}]
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert [(o.value, o.unit, o.event_ns) for o in out] == [
        (98.0, "mg/dL", T0),
        (105.0, "mg/dL", T0 + 60 * NS),
        (5.5, "mmol/L", T0 + 120 * NS),
        (6.0, "mg/dL", T0 + 150 * NS),
    ]


def test_senml_slash_separator_and_bn_carried_forward():
    pack = [{"bn": "dev-1/", "n": "body_temp", "u": "Cel", "v": 37.0, "t": T0_S},
            {"n": "heart_rate", "v": 70, "t": T0_S + 1}]
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert [(o.device, o.signal, o.event_ns) for o in out] == [
        ("dev-1", "body_temp", T0), ("dev-1", "heart_rate", T0 + NS)]
    assert out[1].unit is None


def test_senml_pack_without_base_name_takes_topic_device():
    out = decode_senml(_j([{"n": "heart_rate", "v": 70, "t": T0_S}]), "dev-9", RECV)
    assert out == [RawReading("dev-9", None, "heart_rate", 70.0, None, T0, source="senml")]


def test_senml_mismatched_base_name_is_identity_mismatch_per_record():
    pack = [{"n": "heart_rate", "v": 70, "t": T0_S},
            {"bn": "dev-2:", "n": "heart_rate", "v": 71, "t": T0_S},
            {"n": "spo2", "v": 97, "t": T0_S}]  # bn dev-2 still in force
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert isinstance(out[0], RawReading) and out[0].device == "dev-1"
    assert [type(o) for o in out[1:]] == [IdentityError, IdentityError]
    assert {o.reason for o in out[1:]} == {"identity_mismatch"}


@pytest.mark.parametrize("t,expected", [
    (0, RECV),
    (-30, RECV - 30 * NS),
    (-0.5, RECV - 500_000_000),
    (2**28 - 1, RECV + (2**28 - 1) * NS),      # still relative: below 2**28
    (2**28, 2**28 * NS),                        # absolute from 2**28 on (RFC 8428 4.5.3)
    (T0_S + 0.25, T0 + 250_000_000),
])
def test_senml_relative_and_absolute_times(t, expected):
    out = decode_senml(_j([{"n": "heart_rate", "v": 70, "t": t}]), "dev-1", RECV)
    assert out[0].event_ns == expected


def test_senml_large_negative_time_is_relative_rfc8428_4_5_3():
    # RFC 8428 4.5.3: every value below 2**28 is relative to now, negatives included
    # (was read as absolute, before 1970, until 64d34ac).
    t = -(2**28) - 100
    out = decode_senml(_j([{"n": "heart_rate", "v": 70, "t": t}]), "dev-1", RECV)
    assert out[0].event_ns == RECV + t * NS


def test_senml_float_time_rounded_to_microseconds():
    # 1795600800.1234567 s: a double near 1.8e9 is within 1.2e-7 s of that, so the
    # nearest whole microsecond is .123457.
    out = decode_senml(b'[{"n":"heart_rate","v":70,"t":1795600800.1234567}]', "dev-1", RECV)
    assert out[0].event_ns == T0 + 123_457_000
    out = decode_senml(b'[{"n":"heart_rate","v":70,"bt":1795600800,"t":0.0000004}]', "dev-1", RECV)
    assert out[0].event_ns == T0  # 0.4 us rounds down


@pytest.mark.parametrize("rec,reason", [
    ({"n": "heart_rate", "t": T0_S}, "missing_field"),           # no value
    # a string value is not a reading, and the dead letter says which field (RFC 8428 4.2)
    ({"n": "heart_rate", "vs": "72", "t": T0_S}, "unsupported_field"),
    ({"n": "heart_rate", "v": True, "t": T0_S}, "bad_value"),
    ({"n": "heart_rate", "v": "72", "t": T0_S}, "bad_value"),
    ({"v": 72, "t": T0_S}, "missing_field"),                     # no name at all
    ({"n": "heart_rate", "v": 72, "t": "now"}, "bad_value"),
    ("heart_rate", "missing_field"),
])
def test_senml_bad_records_do_not_drop_good_ones(rec, reason):
    pack = [{"n": "heart_rate", "v": 60, "t": T0_S}, rec, {"n": "heart_rate", "v": 62, "t": T0_S + 2}]
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert isinstance(out[1], VitalstreamError) and out[1].reason == reason
    assert [(o.value, o.event_ns) for o in (out[0], out[2])] == [(60.0, T0), (62.0, T0 + 2 * NS)]


def test_senml_pack_must_be_an_array():
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j({"n": "heart_rate", "v": 60}), "dev-1", RECV)
    assert ei.value.reason == "missing_field"


# --- through stage A: dead letters name the step and reason --------------------------------

def test_ingest_dead_letters_and_good_readings_from_one_message():
    payload = _j([{"bn": "dev-1:", "bt": T0_S, "n": "heart_rate", "v": 60},
                  {"n": "heart_rate", "t": 1, "v": 0},           # implausible HR 0
                  {"n": "spo2", "t": 1, "v": 0.96, "u": "/"},
                  {"n": "spo2", "t": 2, "v": 96, "u": "mmHg"}])  # wrong unit
    ing = Ingest(Normaliser(max_clock_skew_ns=None))
    out: list = []
    ing.process(Message("vitalstream/dev-1/senml", payload, RECV, token="tok"), out)
    readings = [o for o in out if type(o) is Reading]
    dead = [o for o in out if type(o) is DeadLetter]
    assert [(r.signal.value, r.value, r.event_ns) for r in readings] == [
        ("heart_rate", 60.0, T0), ("spo2", pytest.approx(96.0), T0 + NS)]
    assert [(d.step, d.reason) for d in dead] == [("plausibility", "implausible"),
                                                   ("normalise", "unknown_unit")]
    assert out[-1] == Ack("tok")
    assert ing.stats.by_reason == {"implausible": 1, "unknown_unit": 1}


def test_ingest_identity_mismatch_and_unknown_codec_are_dead_letters():
    ing = Ingest(Normaliser(max_clock_skew_ns=None))
    out: list = []
    ing.process(Message("vitalstream/dev-1/json",
                        _j({"device": "dev-2", "signal": "heart_rate", "value": 60, "t_ns": T0}),
                        RECV), out)
    ing.process(Message("vitalstream/dev-1/cbor", b"\xa0", RECV), out)
    ing.process(Message("dev-1", b"{}", RECV), out)
    dead = [o for o in out if type(o) is DeadLetter]
    assert [(d.step, d.reason) for d in dead] == [("identity", "identity_mismatch"),
                                                   ("decode", "unknown_codec"),
                                                   ("topic", "bad_topic")]
    assert sum(type(o) is Ack for o in out) == 3
