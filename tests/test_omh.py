"""Open mHealth codec against the shared openmhealth/ schemas and samples.

Expected values come from the samples themselves (their value, unit and time),
converted with the formulas written out here, never from the codec's output.

The codec emits raw readings (OMH units translated to UCUM codes); the tests
check values in canonical units through ``decode_canonical``, which applies the
catalogue conversion the normaliser applies (without its plausibility check:
some upstream samples are physically impossible on purpose).
"""

from __future__ import annotations

import calendar
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vitalstream.connectors.omh import (
    ActivityEpisode,
    OmhEncodeError,
    decode_omh,
    decode_omh_records,
    encode_omh,
    encode_omh_blood_pressure,
)
from vitalstream.connectors.omh_file import export_points
from vitalstream.connectors.omh_schemas import (
    DATA_POINT_SCHEMA,
    ENV_VAR,
    PACKAGE_DIRECTORY,
    default_directory,
    default_schemas,
    format_date_time,
    parse_date_time,
)
from vitalstream.errors import DecodeError
from vitalstream.model import RawReading, Reading
from vitalstream.signals import UCUM, Signal, spec

OMH = Path(os.environ.get(ENV_VAR) or
           Path(__file__).resolve().parents[2] / "shared/reference/openmhealth/schema/omh").parent.parent
SAMPLES = OMH / "test-data" / "omh"
NS = 1_000_000_000
SCHEMAS = default_schemas()

# type -> [(body property, signal, canonical unit)]
TYPES = {
    "heart-rate": [("heart_rate", Signal.HEART_RATE, "/min")],
    "blood-pressure": [("systolic_blood_pressure", Signal.BP_SYSTOLIC, "mm[Hg]"),
                       ("diastolic_blood_pressure", Signal.BP_DIASTOLIC, "mm[Hg]")],
    "oxygen-saturation": [("oxygen_saturation", Signal.SPO2, "%")],
    "body-temperature": [("body_temperature", Signal.BODY_TEMP, "Cel")],
    "respiratory-rate": [("respiratory_rate", Signal.RESP_RATE, "/min")],
    "blood-glucose": [("blood_glucose", Signal.GLUCOSE, "mg/dL")],
    "step-count": [("step_count", Signal.STEPS, "count")],
}
INCLUDED = set(TYPES) | {"physical-activity"}
# README: these newest versions $ref IEEE 1752.1 schemas; the fallback it names.
IEEE_FALLBACK = {("blood-pressure", "4.0"): "blood-pressure-3.1.json",
                 ("body-temperature", "4.0"): "body-temperature-3.0.json",
                 ("blood-glucose", "4.0"): "blood-glucose-3.0.json"}


def canonical(raw: RawReading, recv_ns: int) -> Reading:
    """The reading the normaliser makes of ``raw``, minus the plausibility check."""
    assert raw.unit in UCUM, raw.unit  # OMH's vocabulary is translated to UCUM codes
    sp = spec(raw.signal)
    return Reading(raw.patient if raw.patient is not None else raw.device, raw.device,
                   Signal(raw.signal), sp.to_canonical(raw.value, raw.unit), sp.unit,
                   raw.event_ns, recv_ns, raw.source, raw.quality)


def decode_canonical(payload, *, device, recv_ns, **kw) -> list[Reading]:
    return [canonical(r, recv_ns) for r in decode_omh(payload, device=device, recv_ns=recv_ns, **kw)]


def records_canonical(payload, *, device, recv_ns, **kw) -> list[Reading | ActivityEpisode]:
    return [canonical(r, recv_ns) if isinstance(r, RawReading) else r
            for r in decode_omh_records(payload, device=device, recv_ns=recv_ns, **kw)]


def by_hand(value: float, unit: str) -> float:
    """Canonical value from the schema unit (SI definitions; 180.156 g/mol glucose)."""
    return {"F": (value - 32) * 5 / 9, "K": value - 273.15,
            "mmol/L": value * 18.0156}.get(unit, value)


def utc_ns(text: str) -> int:
    dt = datetime.fromisoformat(text)  # 3.11 reads a trailing Z
    return calendar.timegm(dt.astimezone(UTC).timetuple()) * NS


def samples(kind: str, *, ieee: bool) -> list[tuple[str, str, Path]]:
    """(type, version to declare, file) for each sample of the included types.

    README rule: a sample under <name>/<M.m>/ applies to every local
    <name>-M.k.json with k >= m; ``ieee`` selects the samples whose only
    applicable schema is an IEEE-dependent one (validated through the fallback).
    """
    out = []
    for path in sorted(SAMPLES.glob(f"*/*/{kind}/*.json")):
        name, version = path.parts[-4], path.parts[-3]
        if name not in INCLUDED:
            continue
        major, minor = (int(x) for x in version.split("."))
        local = sorted(f.name for f in (OMH / "schema/omh").glob(f"{name}-{major}.*.json")
                       if not f.name.endswith(".x.json")
                       and int(f.name.rsplit("-", 1)[1].split(".")[1]) >= minor
                       and f.name not in SCHEMAS.external)
        if ieee and not local:
            out.append((name, version, path))
        for f in [] if ieee else local:
            out.append((name, f.rsplit("-", 1)[1].removesuffix(".json"), path))
    return out


def point(name: str, version: str, body: object, **header: object) -> dict:
    h = {"id": "p-1", "creation_date_time": "2024-01-01T00:00:00Z",
         "schema_id": {"namespace": "omh", "name": name, "version": version}}
    h.update(header)
    return {"header": h, "body": body}


def ids(cases):
    return [f"{n}-{v}-{p.parent.name}-{p.stem}" for n, v, p in cases]


def event_of(tf: dict) -> int:
    if "date_time" in tf:
        return utc_ns(tf["date_time"])
    return utc_ns(tf["time_interval"]["end_date_time"])  # every sample interval has an end


# --- registry ---------------------------------------------------------------

def test_registry_holds_the_59_files_and_5_ieee_dependent_ones_listed_in_shared_readme():
    assert len(SCHEMAS.files) == 59
    assert set(SCHEMAS.external) == {
        "blood-glucose-4.0.json", "blood-pressure-4.0.json", "body-temperature-4.0.json",
        "diastolic-blood-pressure-1.1.json", "systolic-blood-pressure-1.1.json"}
    for uris in SCHEMAS.external.values():
        assert all(u.startswith("https://w3id.org/ieee/ieee-1752-schema/") for u in uris)


def test_ieee_versions_fall_back_to_the_versions_named_in_shared_readme():
    for (name, version), filename in IEEE_FALLBACK.items():
        assert SCHEMAS.resolve(name, version) == filename
    assert SCHEMAS.resolve("blood-pressure", "3.0") == "blood-pressure-3.1.json"  # minor rule
    assert SCHEMAS.resolve("physical-activity", "1.0") == "physical-activity-1.2.json"
    assert SCHEMAS.resolve("heart-rate", "1.0") is None
    assert SCHEMAS.resolve("heart-rate", "2.1") is None
    assert SCHEMAS.resolve("heart-rate", "two") is None


def test_schema_folder_follows_the_environment_variable_else_the_packaged_copy(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_directory() == tmp_path
    monkeypatch.delenv(ENV_VAR)
    assert default_directory() == PACKAGE_DIRECTORY
    # the packaged copy is the shared reference folder, byte for byte, with its licence
    shared = OMH / "schema/omh"
    assert sorted(p.name for p in PACKAGE_DIRECTORY.glob("*.json")) == \
        sorted(p.name for p in shared.glob("*.json"))
    for p in shared.glob("*.json"):
        assert (PACKAGE_DIRECTORY / p.name).read_bytes() == p.read_bytes(), p.name
    assert (PACKAGE_DIRECTORY / "LICENSE").read_bytes() == (OMH / "LICENSE").read_bytes()
    assert "Apache" in (PACKAGE_DIRECTORY / "NOTICE").read_text()


# --- shared samples -----------------------------------------------------------

PASS = samples("shouldPass", ieee=False)
FAIL = samples("shouldFail", ieee=False)


def test_sample_pairing_covers_every_included_sample_file():
    files = {p for _, _, p in PASS + FAIL + samples("shouldPass", ieee=True)
             + samples("shouldFail", ieee=True)}
    on_disk = {p for p in SAMPLES.glob("*/*/*/*.json") if p.parts[-4] in INCLUDED}
    assert files == on_disk and len(on_disk) == 84  # find | wc -l over the 8 folders


@pytest.mark.parametrize("name,version,path", PASS, ids=ids(PASS))
def test_should_pass_sample_from_shared_openmhealth_validates_and_decodes(name, version, path):
    body = json.loads(path.read_text())
    declared = path.parts[-3]  # the sample's own version; resolve() picks the local M.k
    assert SCHEMAS.resolve(name, declared) == f"{name}-{version}.json"
    assert SCHEMAS.problem(f"{name}-{version}.json", body) is None
    payload = json.dumps(point(name, declared, body, user_id="pat-9")).encode()
    out = records_canonical(payload, device="dev-1", recv_ns=123)
    if name == "physical-activity":
        (ep,) = out
        assert isinstance(ep, ActivityEpisode) and ep.activity_name == body["activity_name"]
        if "distance" in body:  # every sample distance is in international miles
            assert body["distance"]["unit"] == "mi"
            assert ep.distance_m == pytest.approx(body["distance"]["value"] * 1609.344)
        if "effective_time_frame" in body:
            ti = body["effective_time_frame"]["time_interval"]
            assert (ep.start_ns, ep.end_ns) == (utc_ns(ti["start_date_time"]),
                                                utc_ns(ti["end_date_time"]))
        assert ep.met_value == body.get("met_value")
        assert ep.kcal_burned == body.get("kcal_burned", {}).get("value")
        return
    assert [r.signal for r in out] == [s for _, s, _ in TYPES[name]]
    for r, (prop, signal, unit) in zip(out, TYPES[name]):
        assert r.value == pytest.approx(by_hand(body[prop]["value"], body[prop]["unit"]), rel=1e-12)
        assert r.unit == unit
        assert r.event_ns == event_of(body["effective_time_frame"])
        assert (r.patient, r.device, r.recv_ns) == ("pat-9", "dev-1", 123)
        stat = body.get("descriptive_statistic")
        assert r.source == ("omh" if stat is None else f"omh:{stat}"
                            + (f"/{body['descriptive_statistic_denominator']}"
                               if "descriptive_statistic_denominator" in body else ""))


@pytest.mark.parametrize("name,version,path", FAIL, ids=ids(FAIL))
def test_should_fail_sample_from_shared_openmhealth_is_rejected_with_decode_error(name, version, path):
    body = json.loads(path.read_text())
    assert SCHEMAS.problem(f"{name}-{version}.json", body) is not None
    with pytest.raises(DecodeError) as info:
        decode_canonical(point(name, path.parts[-3], body), device="dev-1", recv_ns=0)
    assert info.value.reason == "schema_invalid" and info.value.step == "omh_decode"
    assert info.value.detail.startswith("$.body")


IEEE_PASS = samples("shouldPass", ieee=True)
IEEE_FAIL = samples("shouldFail", ieee=True)


@pytest.mark.parametrize("name,version,path", IEEE_PASS, ids=ids(IEEE_PASS))
def test_ieee_4_0_should_pass_sample_decodes_through_the_fallback_schema(name, version, path):
    body = json.loads(path.read_text())
    assert SCHEMAS.problem(IEEE_FALLBACK[(name, version)], body) is None
    payload = point(name, version, body)
    if path.name == "valid-temperature-with-statistic.json" and name == "body-temperature":
        # upstream sample: interval starts 2023-02-05 and ends 2020-03-06
        with pytest.raises(DecodeError) as info:
            decode_canonical(payload, device="d", recv_ns=0)
        assert info.value.reason == "bad_interval"
        return
    out = decode_canonical(payload, device="d", recv_ns=0)
    assert [r.signal for r in out] == [s for _, s, _ in TYPES[name]]
    for r, (prop, _, _) in zip(out, TYPES[name]):
        assert r.value == pytest.approx(by_hand(body[prop]["value"], body[prop]["unit"]))
        assert r.event_ns == event_of(body["effective_time_frame"])


@pytest.mark.parametrize("name,version,path", IEEE_FAIL, ids=ids(IEEE_FAIL))
def test_ieee_4_0_should_fail_sample_is_still_rejected(name, version, path):
    body = json.loads(path.read_text())
    with pytest.raises(DecodeError) as info:
        decode_canonical(point(name, version, body), device="d", recv_ns=0)
    # date + part_of_day is valid in OMH time-interval 1.0 but dropped by IEEE 1752.1
    expected = "imprecise_time" if path.stem == "invalid-timeframe-format" else "schema_invalid"
    assert info.value.reason == expected


def test_data_point_samples_from_shared_openmhealth():
    dp = SAMPLES / "data-point/1.0"
    valid = json.loads((dp / "shouldPass/valid-data-point.json").read_text())
    assert SCHEMAS.problem(DATA_POINT_SCHEMA, valid) is None
    (ep,) = records_canonical(valid, device=None, recv_ns=0)
    assert (ep.patient, ep.device) == ("RunKeeper", "RunKeeper")  # provenance, no user_id
    assert (ep.date, ep.part_of_day, ep.start_ns) == ("2013-02-05", "morning", None)
    assert ep.distance_m == pytest.approx(1.5 * 1609.344)
    assert decode_canonical(valid, device=None, recv_ns=0) == []  # no catalogue signal
    # a valid envelope whose body misses physical-activity's required activity_name
    empty = json.loads((dp / "shouldPass/empty-body.json").read_text())
    assert SCHEMAS.problem(DATA_POINT_SCHEMA, empty) is None
    with pytest.raises(DecodeError, match=r"\$\.body: 'activity_name' is a required property"):
        decode_canonical(empty, device=None, recv_ns=0)
    for f in sorted((dp / "shouldFail").glob("*.json")):
        with pytest.raises(DecodeError) as info:
            decode_canonical(f.read_bytes(), device="d", recv_ns=0)
        assert info.value.reason == "schema_invalid"
    with pytest.raises(DecodeError, match=r"\$\.header: 'id' is a required property"):
        decode_canonical((dp / "shouldFail/invalid-header.json").read_bytes(), device="d", recv_ns=0)


# --- units and times ----------------------------------------------------------

def _one(name, prop, value, unit, tf=None):
    body = {prop: {"value": value, "unit": unit},
            "effective_time_frame": tf or {"date_time": "2024-03-01T12:00:00Z"}}
    version = SCHEMAS.newest_local(name).removeprefix(name + "-").removesuffix(".json")
    (r,) = decode_canonical(point(name, version, body), device="d", recv_ns=0)
    return r


def test_unit_conversions_against_hand_values():
    assert _one("body-temperature", "body_temperature", 98.6, "F").value == pytest.approx(37.0, abs=1e-12)
    assert _one("body-temperature", "body_temperature", 310.15, "K").value == pytest.approx(37.0, abs=1e-12)
    assert _one("body-temperature", "body_temperature", 37.0, "C").value == 37.0
    assert _one("blood-glucose", "blood_glucose", 5.5, "mmol/L").value == pytest.approx(99.0858, abs=1e-9)
    r = _one("blood-glucose", "blood_glucose", 0, "mg/dL")  # 0 is a value, not "missing"
    assert (r.value, r.unit) == (0.0, "mg/dL")


def test_times_with_offsets_become_utc_and_zoneless_times_are_invalid():
    r = _one("heart-rate", "heart_rate", 60, "beats/min", {"date_time": "2020-02-05T07:25:00-08:00"})
    assert r.event_ns == calendar.timegm((2020, 2, 5, 15, 25, 0)) * NS
    r = _one("heart-rate", "heart_rate", 60, "beats/min",
             {"date_time": "2020-02-05T15:25:00.123456789Z"})
    assert r.event_ns == calendar.timegm((2020, 2, 5, 15, 25, 0)) * NS + 123_456_789
    for bad in ("2020-02-05T15:25:00", "2020-02-30T15:25:00Z", "2020-02-05 15:25:00Z"):
        with pytest.raises(DecodeError) as info:
            _one("heart-rate", "heart_rate", 60, "beats/min", {"date_time": bad})
        assert info.value.reason == "schema_invalid"
        assert "$.body.effective_time_frame" in info.value.detail


def test_interval_time_is_its_end():
    t0 = calendar.timegm((2024, 3, 1, 12, 0, 0)) * NS
    start_dur = {"time_interval": {"start_date_time": "2024-03-01T13:00:00+01:00",
                                   "duration": {"value": 1.5, "unit": "h"}}}
    assert _one("heart-rate", "heart_rate", 60, "beats/min", start_dur).event_ns == t0 + 5400 * NS
    end_dur = {"time_interval": {"end_date_time": "2024-03-01T12:00:00Z",
                                 "duration": {"value": 10, "unit": "min"}}}
    assert _one("step-count", "step_count", 10, "steps", end_dur).event_ns == t0
    month = {"time_interval": {"start_date_time": "2024-03-01T12:00:00Z",
                               "duration": {"value": 1, "unit": "Mo"}}}  # UCUM mo_j = 30.4375 d
    assert _one("step-count", "step_count", 10, "steps", month).event_ns == t0 + int(30.4375 * 86400) * NS


@pytest.mark.parametrize("ti,reason", [
    ({"date": "2024-03-01", "part_of_day": "morning"}, "imprecise_time"),
    ({"start_date_time": "2024-03-01T12:00:00Z", "end_date_time": "2024-03-01T11:00:00Z"}, "bad_interval"),
    ({"start_date_time": "2024-03-01T12:00:00Z", "duration": {"value": -1, "unit": "h"}}, "bad_interval"),
    ({"start_date_time": "9999-12-31T23:00:00Z", "duration": {"value": 2, "unit": "h"}}, "bad_interval"),
])
def test_intervals_without_a_usable_end_are_rejected(ti, reason):
    with pytest.raises(DecodeError) as info:
        _one("heart-rate", "heart_rate", 60, "beats/min", {"time_interval": ti})
    assert info.value.reason == reason


def test_date_time_text_round_trips_to_the_nanosecond():
    assert format_date_time(calendar.timegm((2024, 3, 1, 12, 0, 0)) * NS + 5) == \
        "2024-03-01T12:00:00.000000005Z"
    assert parse_date_time("1969-12-31T23:59:59.5Z") == -NS // 2
    assert format_date_time(-NS // 2) == "1969-12-31T23:59:59.5Z"


# --- identity and rejections ------------------------------------------------------

def test_patient_is_user_id_else_device_and_device_is_topic_else_provenance():
    body = {"heart_rate": {"value": 60, "unit": "beats/min"},
            "effective_time_frame": {"date_time": "2024-03-01T12:00:00Z"}}
    prov = {"source_name": "watch-7"}
    (r,) = decode_canonical(point("heart-rate", "2.0", body, user_id="pat-1", acquisition_provenance=prov),
                      device="gw-dev", recv_ns=0)
    assert (r.patient, r.device) == ("pat-1", "gw-dev")
    (r,) = decode_canonical(point("heart-rate", "2.0", body, acquisition_provenance=prov), device=None, recv_ns=0)
    assert (r.patient, r.device) == ("watch-7", "watch-7")
    # the raw reading leaves the patient open: the device -> patient resolver decides
    (raw,) = decode_omh(point("heart-rate", "2.0", body, acquisition_provenance=prov), device=None, recv_ns=0)
    assert (raw.patient, raw.device) == (None, "watch-7")
    (r,) = decode_canonical(point("heart-rate", "2.0", body, user_id=""), device="gw-dev", recv_ns=0)
    assert r.patient == "gw-dev"
    with pytest.raises(DecodeError) as info:
        decode_canonical(point("heart-rate", "2.0", body, acquisition_provenance={"source_name": ""}),
                   device=None, recv_ns=0)
    assert info.value.reason == "no_device"


@pytest.mark.parametrize("payload,reason", [
    (b"{not json", "bad_json"),
    (b"\xff\xfe{}", "bad_json"),
    (b'{"header": {}, "body": {"v": NaN}}', "bad_number"),  # not JSON (RFC 8259 6)
    (b"[]", "schema_invalid"),
    (json.dumps(point("heart-rate", "2.0", {}, user_id=5)).encode(), "schema_invalid"),
    (json.dumps(point("body-weight", "1.0", {})).encode(), "unsupported_schema"),
    (json.dumps(point("heart-rate", "9.0", {})).encode(), "unsupported_schema"),
    (json.dumps({"header": {"id": "x", "creation_date_time": "2024-01-01T00:00:00Z",
                            "schema_id": {"namespace": "acme", "name": "heart-rate",
                                          "version": "2.0"}}, "body": {}}).encode(),
     "unsupported_schema"),
])
def test_bad_payloads_raise_decode_error_with_reason(payload, reason):
    with pytest.raises(DecodeError) as info:
        decode_canonical(payload, device="dev-1", recv_ns=0)
    assert (info.value.reason, info.value.device) == (reason, "dev-1")


def test_non_finite_value_in_a_dict_payload_is_bad_value():
    body = {"heart_rate": {"value": float("nan"), "unit": "beats/min"},
            "effective_time_frame": {"date_time": "2024-03-01T12:00:00Z"}}
    with pytest.raises(DecodeError) as info:
        decode_canonical(point("heart-rate", "2.0", body), device="d", recv_ns=0)
    assert info.value.reason == "bad_value"


# --- encoding and round trips ---------------------------------------------------

def _first_pass_sample(name: str) -> tuple[str, dict]:
    path = next(p for n, _, p in PASS if n == name)
    return path.parts[-3], json.loads(path.read_text())


def _interval_ns(body: dict) -> int | None:
    ti = body["effective_time_frame"].get("time_interval")
    return None if ti is None else utc_ns(ti["end_date_time"]) - utc_ns(ti["start_date_time"])


def _counter():
    n = iter(range(10**6))
    return lambda: f"id-{next(n)}"


@pytest.mark.parametrize("name", sorted(TYPES))
def test_round_trip_import_export_import_keeps_value_unit_time(name):
    version, body = _first_pass_sample(name)
    first = decode_canonical(json.dumps(point(name, version, body, user_id="pat-2")).encode(),
                       device="dev-2", recv_ns=7)
    dur = _interval_ns(body) if name == "step-count" else None
    if name == "blood-pressure":
        points = [encode_omh_blood_pressure(*first, id_factory=_counter())]
    else:
        points = [encode_omh(r, id_factory=_counter(), duration_ns=dur) for r in first]
    for p in points:  # what we emit validates, header and body, against local schemas
        assert SCHEMAS.problem(DATA_POINT_SCHEMA, p) is None
        sid = p["header"]["schema_id"]
        assert SCHEMAS.problem(f"{sid['name']}-{sid['version']}.json", p["body"]) is None
    assert points[0]["header"]["id"] == "id-0"
    second = [r for p in points
              for r in decode_canonical(json.dumps(p).encode(), device="dev-2", recv_ns=7)]
    assert len(second) == len(first)
    for a, b in zip(first, second):
        assert (b.signal, b.unit, b.event_ns, b.patient, b.device, b.source) == \
            (a.signal, a.unit, a.event_ns, a.patient, a.device, a.source)
        assert b.value == pytest.approx(a.value, rel=1e-12)


def test_export_points_pairs_blood_pressure_and_emits_each_other_reading():
    t = calendar.timegm((2024, 3, 1, 12, 0, 0)) * NS
    mk = lambda s, v, u: Reading("p", "d", s, v, u, t, t)
    readings = [mk(Signal.BP_DIASTOLIC, 80.0, "mm[Hg]"), mk(Signal.HEART_RATE, 61.0, "/min"),
                mk(Signal.BP_SYSTOLIC, 120.0, "mm[Hg]")]
    points = list(export_points(readings, id_factory=_counter()))
    assert [p["header"]["schema_id"]["name"] for p in points] == ["heart-rate", "blood-pressure"]
    bp = points[1]["body"]
    assert (bp["systolic_blood_pressure"]["value"], bp["diastolic_blood_pressure"]["value"]) == (120, 80)
    assert bp["effective_time_frame"] == {"date_time": "2024-03-01T12:00:00Z"}
    assert points[1]["header"]["schema_id"]["version"] == "3.1"  # newest offline-valid
    with pytest.raises(OmhEncodeError) as info:
        list(export_points(readings[:1]))
    assert info.value.reason == "needs_pair"


@pytest.mark.parametrize("signal,unit,source,kwargs,reason", [
    (Signal.BP_SYSTOLIC, "mm[Hg]", "omh", {}, "needs_pair"),
    (Signal.STEPS, "count", "omh", {}, "needs_interval"),
    (Signal.BP_MEAN, "mm[Hg]", "omh", {}, "unsupported_signal"),
    (Signal.HEART_RATE, "/min", "omh", {"duration_ns": -1}, "bad_interval"),
    (Signal.HEART_RATE, "furlong", "omh", {}, "unknown_unit"),
    (Signal.HEART_RATE, "/min", "omh:mode", {}, "schema_invalid"),  # not an OMH statistic
])
def test_encoder_refuses_what_omh_cannot_hold(signal, unit, source, kwargs, reason):
    r = Reading("p", "d", signal, 60.0, unit, 0, 0, source=source)
    with pytest.raises(OmhEncodeError) as info:
        encode_omh(r, **kwargs)
    assert info.value.reason == reason


# (signal, canonical unit, plausible-ish value range)
_ENCODABLE = [(Signal.HEART_RATE, "/min", 20, 300), (Signal.SPO2, "%", 40, 100),
              (Signal.BODY_TEMP, "Cel", 25, 45), (Signal.RESP_RATE, "/min", 2, 80),
              (Signal.GLUCOSE, "mg/dL", 10, 1000), (Signal.STEPS, "count", 0, 100_000)]


@st.composite
def _readings(draw):
    signal, unit, lo, hi = draw(st.sampled_from(_ENCODABLE))
    value = draw(st.floats(lo, hi, allow_nan=False)) if signal is not Signal.STEPS \
        else float(draw(st.integers(lo, hi)))
    event_ns = draw(st.integers(0, 4_102_444_800 * NS))  # 1970 .. 2100
    dur = draw(st.one_of(st.none(), st.integers(0, 7 * 86_400 * NS)))
    if signal is Signal.STEPS and dur is None:
        dur = 3_600 * NS
    return Reading("pat", "dev", signal, value, unit, event_ns, 1, source="omh"), dur


@settings(max_examples=60, deadline=None)
@given(_readings())
def test_round_trip_property_random_values_and_times(case):
    reading, dur = case
    p = encode_omh(reading, duration_ns=dur)
    (back,) = decode_canonical(json.dumps(p).encode(), device=None, recv_ns=1)
    assert back == reading  # canonical units are written as-is, so the value is exact
