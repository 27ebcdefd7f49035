"""Conformance of the connectors and the signal catalogue to the standards they cite.

SenML rules are derived from the text of RFC 8428; each test names its section:

- 4.1 Base Fields: "Base Version: Version number of the media type format. This
  field is an optional positive integer and defaults to 10 if not present."
  "Base Sum: A base sum is added to the sum found in an entry."
- 4.2 Regular Fields: "Value: ... Optional if a Sum value is present; otherwise,
  it's required. ... floating-point numbers ("v" ...), booleans ("vb" ...),
  strings ("vs" ...), and binary data ("vd" ...). Exactly one Value field MUST
  appear unless there is a Sum field, in which case it is allowed to have no
  Value field." "Sum: Integrated sum of the values over time. ... in the unit
  specified in the Unit value multiplied by seconds."
- 4.4 Extensibility: "Implementations MUST ignore fields they don't recognize
  unless that field has a label name that ends with the '_' character, in which
  case an error MUST be generated." "All SenML Records in a Pack MUST have the
  same version number." "If this value is a version number larger than the
  version that the system understands, the system MUST NOT use this object."
- 4.5.3 Time: values below 2**28 are relative to "now", and "now" is the
  receive time the caller gives the codec.

Units: UCUM (c/s) and the SenML units registry (RFC 8428 12.1) both define "C"
as the coulomb and "F" as the farad; degrees Celsius are "Cel", Fahrenheit
"[degF]" (UCUM), kelvin "K". Open mHealth's temperature-unit-value 1.0 uses
"C"/"F"/"K" as "common synonyms (non-UCUM)", so its codec translates them.

Times: RFC 3339 section 5.6 date-time, the one grammar every connector parses.
"""

from __future__ import annotations

import calendar
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vitalstream.connectors.codecs import decode_json, decode_senml
from vitalstream.connectors.omh import decode_omh
from vitalstream.errors import DecodeError, UnitError, VitalstreamError
from vitalstream.model import DeadLetter, Message, RawReading, Reading
from vitalstream.operators.normalise import Normaliser
import vitalstream.signals as signals
from vitalstream.signals import CATALOGUE, Signal, spec
from vitalstream.stream.ingest import Ingest

NS = 1_000_000_000
T0_S = 1795600800  # 2026-11-25T10:00:00Z (calendar.timegm, checked below)
T0 = T0_S * NS
RECV = T0 + 5 * NS


def _j(doc) -> bytes:
    return json.dumps(doc).encode()


def _ingest_dead(topic: str, payload: bytes) -> tuple[list[Reading], list[DeadLetter]]:
    out: list = []
    Ingest(Normaliser(max_clock_skew_ns=None)).process(Message(topic, payload, RECV), out)
    return ([o for o in out if isinstance(o, Reading)], [o for o in out if isinstance(o, DeadLetter)])


def test_reference_instant_is_2026_11_25_10_00_utc():
    assert calendar.timegm((2026, 11, 25, 10, 0, 0)) == T0_S


# --- SenML, RFC 8428 4.4: must-understand fields ------------------------------------

@pytest.mark.parametrize("where", [0, 1, 2])
def test_rfc8428_4_4_a_field_ending_in_underscore_rejects_the_whole_pack(where):
    """4.4: a label ending in '_' that the receiver does not understand MUST be an
    error; none of the pack's records may become readings, wherever the field is."""
    pack = [{"bn": "dev-1:", "bt": T0_S, "n": "heart_rate", "v": 60},
            {"n": "heart_rate", "t": 1, "v": 61},
            {"n": "heart_rate", "t": 2, "v": 62}]
    pack[where]["foo_"] = 1
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j(pack), "dev-1", RECV)
    assert ei.value.reason == "unsupported_field" and "foo_" in ei.value.detail
    readings, dead = _ingest_dead("vitalstream/dev-1/senml", _j(pack))
    assert readings == [] and [(d.reason, d.step) for d in dead] == [("unsupported_field", "decode")]


def test_rfc8428_4_4_a_base_field_ending_in_underscore_rejects_the_pack_too():
    """4.4 covers new base and regular fields alike: 'b..._' is must-understand as well."""
    pack = [{"bn": "dev-1:", "bfoo_": "x", "n": "heart_rate", "v": 60, "t": T0_S}]
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j(pack), "dev-1", RECV)
    assert ei.value.reason == "unsupported_field"


def test_rfc8428_4_4_unrecognised_fields_without_underscore_are_ignored():
    """4.4: 'Implementations MUST ignore fields they don't recognize' (no trailing '_')."""
    pack = [{"n": "heart_rate", "v": 60, "t": T0_S, "foo": 1, "_bar": 2, "ut": 60}]
    assert decode_senml(_j(pack), "dev-1", RECV) == [
        RawReading("dev-1", None, "heart_rate", 60.0, None, T0, source="senml")]


# --- SenML, RFC 8428 4.1 / 4.4: Base Version ------------------------------------------

def test_rfc8428_4_4_bver_above_10_must_not_be_used():
    """4.4: a version larger than the one the receiver understands (10, 4.1) MUST NOT be used."""
    pack = [{"bver": 99, "bn": "dev-1:", "n": "heart_rate", "v": 60, "t": T0_S},
            {"n": "spo2", "v": 97, "t": T0_S}]
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j(pack), "dev-1", RECV)
    assert ei.value.reason == "unsupported_version" and "99" in ei.value.detail
    with pytest.raises(DecodeError):
        decode_senml(_j([{"bver": 11, "n": "heart_rate", "v": 60, "t": T0_S}]), "dev-1", RECV)


@pytest.mark.parametrize("bver", [10, 10.0, 5, 1])
def test_rfc8428_4_1_bver_up_to_10_is_accepted(bver):
    """4.1: bver is a positive integer; 10 is the default and what this receiver implements."""
    out = decode_senml(_j([{"bver": bver, "n": "heart_rate", "v": 60, "t": T0_S}]), "dev-1", RECV)
    assert [type(o) for o in out] == [RawReading]


@pytest.mark.parametrize("bver", [0, -10, 9.5, "10", True, None])
def test_rfc8428_4_1_bver_must_be_a_positive_integer(bver):
    """4.1: 'This field is an optional positive integer'."""
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j([{"bver": bver, "n": "heart_rate", "v": 60, "t": T0_S}]), "dev-1", RECV)
    assert ei.value.reason == "bad_version"


@pytest.mark.parametrize("pack", [
    [{"bver": 9, "n": "heart_rate", "v": 60, "t": T0_S}, {"bver": 8, "n": "spo2", "v": 97, "t": T0_S}],
    # the first record has the default version 10 (4.1), the second says 9
    [{"n": "heart_rate", "v": 60, "t": T0_S}, {"bver": 9, "n": "spo2", "v": 97, "t": T0_S}],
])
def test_rfc8428_4_4_all_records_of_a_pack_have_the_same_version(pack):
    """4.4: 'All SenML Records in a Pack MUST have the same version number.'"""
    with pytest.raises(DecodeError) as ei:
        decode_senml(_j(pack), "dev-1", RECV)
    assert ei.value.reason == "bad_version"


def test_rfc8428_4_4_repeating_the_same_version_or_the_default_is_fine():
    pack = [{"bver": 10, "n": "heart_rate", "v": 60, "t": T0_S},
            {"bver": 10, "n": "spo2", "v": 97, "t": T0_S}, {"n": "spo2", "v": 98, "t": T0_S}]
    assert [type(o) for o in decode_senml(_j(pack), "dev-1", RECV)] == [RawReading] * 3
    pack = [{"n": "heart_rate", "v": 60, "t": T0_S}, {"bver": 10, "n": "spo2", "v": 97, "t": T0_S}]
    assert [type(o) for o in decode_senml(_j(pack), "dev-1", RECV)] == [RawReading] * 2


# --- SenML, RFC 8428 4.2: value fields and sums -----------------------------------------

@pytest.mark.parametrize("field,value", [("vs", "72"), ("vb", True), ("vd", "aGVsbG8")])
def test_rfc8428_4_2_string_boolean_and_data_values_are_unsupported_naming_the_field(field, value):
    """4.2 defines vs, vb and vd as values; a vital sign is a number, so the dead
    letter says which value field it cannot use (not "no numeric value")."""
    pack = [{"n": "heart_rate", "v": 60, "t": T0_S}, {"n": "heart_rate", field: value, "t": T0_S + 1}]
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert isinstance(out[0], RawReading) and out[0].value == 60.0  # the other record still counts
    assert isinstance(out[1], DecodeError)
    assert out[1].reason == "unsupported_field" and out[1].detail.split(": ")[1].startswith(field)


def test_rfc8428_4_2_sum_without_value_is_unsupported_naming_s():
    """4.2: a record may carry only a Sum; the sum is the integral of the value over
    time (unit x seconds), not a measurement of the signal, so it is not read as one."""
    out = decode_senml(_j([{"n": "steps", "u": "count", "s": 1234, "t": T0_S}]), "dev-1", RECV)
    assert isinstance(out[0], DecodeError) and out[0].reason == "unsupported_field"
    assert "s (sum" in out[0].detail
    readings, dead = _ingest_dead("vitalstream/dev-1/senml",
                                  _j([{"n": "steps", "u": "count", "s": 1234, "t": T0_S}]))
    assert readings == [] and [d.reason for d in dead] == ["unsupported_field"]


def test_rfc8428_4_1_base_sum_alone_is_a_sum_too():
    """4.1/4.5.4: bs is added to the sum; with bs in force and no v, the record's
    measurement is a sum only, so the same rule applies (and names s)."""
    pack = [{"bn": "dev-1:", "bs": 100, "n": "steps", "u": "count", "v": 7, "t": T0_S},
            {"n": "steps", "u": "count", "t": T0_S + 1}]
    out = decode_senml(_j(pack), "dev-1", RECV)
    assert isinstance(out[0], RawReading) and out[0].value == 7.0  # v is the reading, bs unused
    assert isinstance(out[1], DecodeError) and out[1].reason == "unsupported_field"


def test_rfc8428_4_2_value_with_a_sum_is_the_value():
    """4.2 allows a Value and a Sum together; the reading is the value, its sum is not used."""
    out = decode_senml(_j([{"n": "steps", "u": "count", "v": 12, "s": 99999, "t": T0_S}]), "dev-1", RECV)
    assert out == [RawReading("dev-1", None, "steps", 12.0, "count", T0, source="senml")]


@pytest.mark.parametrize("extra", [{"vs": "60"}, {"vb": False}, {"vd": "AA"}])
def test_rfc8428_4_2_exactly_one_value_field(extra):
    """4.2: 'Exactly one Value field MUST appear'."""
    out = decode_senml(_j([{"n": "heart_rate", "v": 60, "t": T0_S, **extra}]), "dev-1", RECV)
    assert isinstance(out[0], DecodeError) and out[0].reason == "bad_value"


@pytest.mark.parametrize("field", ["s", "bs"])
def test_rfc8428_4_3_sum_fields_are_json_numbers(field):
    """4.3 (SenML labels): s and bs are Numbers; a malformed one is a bad value."""
    out = decode_senml(_j([{"n": "steps", "v": 1, field: "lots", "t": T0_S}]), "dev-1", RECV)
    assert isinstance(out[0], DecodeError) and out[0].reason == "bad_value"


# --- SenML, RFC 8428 4.5.3: "now" is what the caller passes ------------------------------

def test_rfc8428_4_5_3_relative_times_resolve_against_the_recv_ns_given():
    """4.5.3: t below 2**28 is relative to now; the codec takes "now" from its
    caller (recv_ns), so a command-line decode can pass time.time_ns()."""
    pack = [{"n": "heart_rate", "v": 60}, {"n": "heart_rate", "v": 61, "t": -30}]
    for now in (RECV, 1_700_000_000 * NS):
        out = decode_senml(_j(pack), "dev-1", now)
        assert [o.event_ns for o in out] == [now, now - 30 * NS]


# --- units: UCUM and SenML, aliases apart --------------------------------------------------

@pytest.mark.parametrize("unit", ["C", "F"])
def test_ucum_c_and_f_are_coulomb_and_farad_not_temperatures(unit):
    """C and F are not accepted for body temperature: an unknown_unit dead letter."""
    with pytest.raises(KeyError):
        spec(Signal.BODY_TEMP).to_canonical(37.0, unit)
    with pytest.raises(UnitError) as ei:
        Normaliser(max_clock_skew_ns=None).normalise(
            RawReading("d", "p", "body_temp", 37.0, unit, T0), RECV)
    assert ei.value.reason == "unknown_unit"
    _, dead = _ingest_dead("vitalstream/dev-1/senml",
                           _j([{"n": "body_temp", "u": unit, "v": 37.0, "t": T0_S}]))
    assert [(d.step, d.reason) for d in dead] == [("normalise", "unknown_unit")]


@pytest.mark.parametrize("unit,value,expected", [
    ("Cel", 37.0, 37.0),            # UCUM and SenML
    ("[degF]", 98.6, 37.0),         # UCUM: (F - 32) * 5/9
    ("K", 310.15, 37.0),            # UCUM and SenML: K - 273.15
])
def test_ucum_temperature_codes_are_accepted(unit, value, expected):
    assert spec(Signal.BODY_TEMP).to_canonical(value, unit) == pytest.approx(expected, abs=1e-12)
    assert unit in spec(Signal.BODY_TEMP).units


def test_catalogue_keeps_standard_codes_and_aliases_apart():
    """Every accepted unit is either a UCUM/SenML code or an alias that names one."""
    for sp in CATALOGUE.values():
        assert set(sp.units) <= signals.UCUM | signals.SENML, sp.signal
        assert not set(sp.units) & set(sp.aliases), sp.signal
        assert set(sp.aliases.values()) <= set(sp.units), sp.signal
        assert set(sp.accepts) == set(sp.units) | set(sp.aliases)
        assert not {"C", "F"} & set(sp.accepts), sp.signal
        for alias, code in sp.aliases.items():  # an alias converts exactly as its code
            assert sp.to_canonical(50.0, alias) == sp.to_canonical(50.0, code)
            assert sp.standard_unit(alias) == code
    assert spec("body_temp").aliases == {"degC": "Cel", "degF": "[degF]"}
    assert spec("heart_rate").aliases["bpm"] == "/min"
    assert spec("bp_systolic").aliases["mmHg"] == "mm[Hg]"
    assert {"beat/min", "/", "count"} <= signals.SENML
    assert not {"beat/min", "/", "count"} & signals.UCUM


def test_omh_temperature_synonyms_c_f_k_are_translated_to_ucum():
    """OMH temperature-unit-value 1.0 names 'common synonyms (non-UCUM)': the codec
    emits the UCUM code each means, and the catalogue converts as for any source."""
    def raw(value, unit):
        point = {"header": {"id": "x", "creation_date_time": "2024-01-01T00:00:00Z",
                            "schema_id": {"namespace": "omh", "name": "body-temperature",
                                          "version": "3.0"}},
                 "body": {"body_temperature": {"value": value, "unit": unit},
                          "effective_time_frame": {"date_time": "2024-01-01T00:00:00Z"}}}
        (r,) = decode_omh(point, device="d", recv_ns=0)
        return r
    assert [(raw(37.0, "C").unit), raw(98.6, "F").unit, raw(310.15, "K").unit] == ["Cel", "[degF]", "K"]
    n = Normaliser(max_clock_skew_ns=None)
    assert n.normalise(raw(98.6, "F"), 0).value == pytest.approx(37.0, abs=1e-12)


# --- the one ISO-8601 (RFC 3339) parser ------------------------------------------------

def test_rfc3339_5_6_grammar_is_the_same_for_json_and_ble_and_omh():
    """Every connector reads times with vitalstream.timeutil.parse_iso8601_ns; the
    same text is accepted or refused the same way on every topic."""
    from vitalstream.connectors.ble.gateway import parse_envelope
    from vitalstream.timeutil import parse_iso8601_ns

    text = "2026-11-25T11:00:00.123456789+01:00"
    assert parse_iso8601_ns(text) == T0 + 123_456_789
    [r] = decode_json(_j({"signal": "heart_rate", "value": 60, "t": text}), "dev-1", RECV)
    assert r.event_ns == T0 + 123_456_789  # nanoseconds kept, as for OMH (was microseconds)
    env = {"device": "AA:BB:CC:DD:EE:FF", "uuid": "2A37", "hex": "00 48", "t": text}
    assert parse_envelope(json.dumps(env)).recv_ns == T0 + 123_456_789
    for bad in ("2026-11-25T10:00Z", "2026-11-25 10:00:00Z", "20261125T100000Z", "2026-W48-3T10:00:00Z",
                "2026-11-25T10:00:00+0100", "2026-11-25T10:00:60Z", "2026-11-25T10:00:00Z\n"):
        with pytest.raises(ValueError):
            parse_iso8601_ns(bad)
        [e] = decode_json(_j({"signal": "heart_rate", "value": 60, "t": bad}), "dev-1", RECV)
        assert isinstance(e, VitalstreamError) and e.reason == "bad_time", bad


def test_rfc3339_naive_times_are_refused_unless_the_zone_of_a_device_clock_is_given():
    from vitalstream.timeutil import parse_iso8601_ns

    with pytest.raises(ValueError, match="no time zone"):
        parse_iso8601_ns("2026-11-25T10:00:00")
    berlin = ZoneInfo("Europe/Berlin")  # CET in November: UTC+1
    assert parse_iso8601_ns("2026-11-25T11:00:00", naive_tz=berlin) == T0
    assert parse_iso8601_ns("2026-11-25T10:00:00Z", naive_tz=berlin) == T0  # an offset wins
    # fold=0 in a DST fold: 2024-10-27 02:30 Berlin is first CEST (UTC+2)
    assert parse_iso8601_ns("2024-10-27T02:30:00", naive_tz=berlin) == \
        calendar.timegm((2024, 10, 27, 0, 30, 0)) * NS


def test_rfc3339_time_helpers_round_trip_exactly():
    from vitalstream.timeutil import format_iso8601_ns, from_datetime, parse_iso8601_ns, to_datetime

    for ns in (0, -1, T0 + 1, -62_135_596_800 * NS, 253_402_300_799 * NS + 999_999_999):
        assert parse_iso8601_ns(format_iso8601_ns(ns)) == ns
    assert format_iso8601_ns(-62_135_596_800 * NS) == "0001-01-01T00:00:00Z"
    dt = datetime(2026, 11, 25, 10, 0, 0, 123_457, tzinfo=timezone.utc)
    assert to_datetime(T0 + 123_457_999) == dt and from_datetime(dt) == T0 + 123_457_000
    assert to_datetime(T0 + 123_457_000 + 2) - timedelta(microseconds=123_457) == dt.replace(microsecond=0)
    with pytest.raises(ValueError):
        from_datetime(datetime(2026, 11, 25))


# --- connectors emit raw readings -------------------------------------------------------

def test_every_connector_emits_raw_readings_and_only_the_normaliser_makes_readings():
    """json, senml, ble and omh all yield RawReading (unit as sent or as a standard
    code), so unit conversion and plausibility live in one place."""
    from vitalstream.connectors.codecs import default_codecs

    payloads = {
        "json": _j({"signal": "body_temp", "value": 98.6, "unit": "[degF]", "t_ns": T0}),
        "senml": _j([{"n": "body_temp", "u": "[degF]", "v": 98.6, "t": T0_S}]),
        # 2A1C flags 0x01 (Fahrenheit), FLOAT mantissa 0x0003DA = 986, exponent -1: 98.6 degF
        "ble": _j({"device": "AA:BB:CC:DD:EE:FF", "uuid": "2A1C", "hex": "01 DA 03 00 FF", "t_ns": T0}),
        "omh": _j({"header": {"id": "x", "creation_date_time": "2024-01-01T00:00:00Z",
                              "schema_id": {"namespace": "omh", "name": "body-temperature",
                                            "version": "3.0"}},
                   "body": {"body_temperature": {"value": 98.6, "unit": "F"},
                            "effective_time_frame": {"date_time": "2026-11-25T10:00:00Z"}}}),
    }
    n = Normaliser(max_clock_skew_ns=None)
    for name, decoder in default_codecs().items():
        (raw,) = decoder(payloads[name], "dev-1", RECV)
        assert type(raw) is RawReading, name
        assert (raw.signal, raw.unit, raw.event_ns) == ("body_temp", "[degF]", T0), name
        assert raw.value == pytest.approx(98.6, rel=1e-6), name
        assert n.normalise(raw, RECV).value == pytest.approx(37.0, abs=1e-4), name
