"""Replay input (``vitalstream.stream.replay_input``): every format, bad lines counted by
reason and never raised, event-time order with stable ties, paths and standard input.

Expected times are worked out by hand: 2026-11-25T10:00:00Z is 1_795_600_800 s.
"""

from __future__ import annotations

import doctest
import gc
import io
import json

import pytest

from vitalstream.errors import VitalstreamError
from vitalstream.model import Quality
from vitalstream.stream import replay_input
from vitalstream.stream.replay_input import (
    ReplayFormatError,
    guess_format,
    read_replay,
    read_replay_path,
)

T0 = 1_795_600_800  # 2026-11-25T10:00:00Z in seconds
NS = 1_000_000_000


def rows(r):
    return [(x.device, x.patient, x.signal, x.value, x.unit, x.event_ns) for x in r.readings]


def test_module_examples_hold():
    res = doctest.testmod(replay_input, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


# --- csv ---------------------------------------------------------------------------

def test_csv_seconds_exact_sorted_with_stable_ties_and_skipped_lines():
    r = read_replay([
        "patient,time_s,signal,value,unit\n",
        "p-2,1795600801,heart_rate,80,/min\n",
        "\n",
        "# recorded on ward 4\n",
        "p-1,1795600800.25,heart_rate,71,/min\n",
        "p-1,1795600801,spo2,97,%\n",       # same time as the first row: stays after it
        "   \n",
        "p-1, 1795600800.123456789 ,resp_rate,0,\n",  # 0 is a value; empty unit is None
    ], "csv")
    assert rows(r) == [
        ("p-1", None, "resp_rate", 0.0, None, T0 * NS + 123_456_789),
        ("p-1", None, "heart_rate", 71.0, "/min", T0 * NS + 250_000_000),
        ("p-2", None, "heart_rate", 80.0, "/min", (T0 + 1) * NS),
        ("p-1", None, "spo2", 97.0, "%", (T0 + 1) * NS),
    ]
    assert (r.bad, r.examples, r.lines) == ({}, [], 8)
    assert {(x.source, x.quality) for x in r.readings} == {("csv", Quality.OK)}


def test_csv_seconds_other_forms_go_through_decimal():
    r = read_replay(["patient,time_s,signal,value,unit", "a,1.7956008e9,hr,1,",
                     "a,-1.5,hr,2,", "a,+10,hr,3,"], "csv")
    assert [x.event_ns for x in r.readings] == [-1_500_000_000, 10 * NS, 1_795_600_800 * NS]


def test_csv_iso_time_column_any_order_and_zones():
    r = read_replay([
        "Signal,Value,Unit,Patient,Time",  # any order, names case-insensitive
        "heart_rate,72,/min,p-1,2026-11-25T11:00:00+01:00",
        "heart_rate,71,/min,p-1,2026-11-25T09:59:59.5Z",
    ], "csv")
    assert rows(r) == [("p-1", None, "heart_rate", 71.0, "/min", T0 * NS - 500_000_000),
                       ("p-1", None, "heart_rate", 72.0, "/min", T0 * NS)]


def test_csv_bad_rows_are_counted_by_reason_with_examples():
    r = read_replay([
        "patient,time,signal,value,unit",
        "p-1,2026-11-25T10:00:00Z,heart_rate,71,/min",
        "p-1,2026-11-25T10:00:00Z,heart_rate,71",           # 2: four fields
        "p-1,2026-11-25T10:00:00,heart_rate,71,/min",       # 3: no zone
        "p-1,2026-11-25T10:00:00Z,heart_rate,fast,/min",    # 4: not a number
        "p-1,2026-11-25T10:00:00Z,heart_rate,nan,/min",     # 5: not finite
        ",2026-11-25T10:00:00Z,heart_rate,71,/min",         # 6: no patient
        "p-1,2026-11-25T10:00:00Z, ,71,/min",               # 7: no signal
        "p-1,2026-11-25T10:00:01Z,heart_rate,inf,/min",     # 8: not finite
        "p-1," + "x" * 200_000 + ",heart_rate,1,/min",      # 9: csv refuses the field
        "p-1,2026-11-25T10:00:02Z,heart_rate,73,/min",
    ], "csv")
    assert [x.value for x in r.readings] == [71.0, 73.0]
    assert r.bad == {"bad_csv_row": 2, "bad_time": 1, "bad_value": 3, "missing_field": 2}
    assert r.lines == 11
    assert len(r.examples) == 5
    assert r.examples[0] == "line 3: bad_csv_row: 4 fields, the header has 5: " \
                            "p-1,2026-11-25T10:00:00Z,heart_rate,71"
    assert r.examples[1].startswith("line 4: bad_time: no time zone")
    assert r.examples[2] == "line 5: bad_value: heart_rate: value='fast'"
    assert r.examples[3] == "line 6: bad_value: heart_rate: value='nan' is not finite"
    assert r.examples[4] == "line 7: missing_field: empty patient"


def test_csv_long_bad_line_example_is_truncated():
    r = read_replay(["patient,time_s,signal,value,unit", "p," + "9" * 500 + "x,hr,1,"], "csv")
    (ex,) = r.examples
    assert len(ex) == 200 and ex.startswith("line 2: bad_time: ") and ex.endswith("...")


@pytest.mark.parametrize("header, problem", [
    ("patient,time_s,signal,value", "missing unit"),
    ("patient,time_s,signal,value,unit,ward", "unknown column ward"),
    ("patient,time_s,time,signal,value,unit", "both time and time_s"),
    ("patient,signal,value,unit", "no time_s or time column"),
    ("patient,patient,time_s,signal,value,unit", "a column is repeated"),
])
def test_csv_bad_header_is_a_format_error(header, problem):
    with pytest.raises(ReplayFormatError) as info:
        read_replay([header, "p,1795600800,hr,1,"], "csv")
    assert info.value.reason == "bad_header" and problem in info.value.detail
    assert isinstance(info.value, VitalstreamError)
    assert gc.isenabled()  # the parse's pause of the collector is undone on error too


def test_csv_without_header_is_empty():
    r = read_replay(["# nothing yet", ""], "csv")
    assert (r.readings, r.bad, r.lines) == ([], {}, 2)


# --- senml -------------------------------------------------------------------------

def test_senml_base_name_and_time_give_device_and_absolute_times():
    pack = [{"bn": "dev-7:", "bt": T0, "bu": "/min", "n": "heart_rate", "v": 71},
            {"n": "heart_rate", "t": 0.5, "v": 72},
            {"n": "spo2", "u": "%", "t": -1, "v": 97}]
    other = [{"n": "urn:dev:ow:10e2073a01080063:resp_rate", "t": T0 + 2, "v": 0}]
    r = read_replay([json.dumps(pack), json.dumps(other)], "senml")
    assert rows(r) == [
        ("dev-7", None, "spo2", 97.0, "%", (T0 - 1) * NS),
        ("dev-7", None, "heart_rate", 71.0, "/min", T0 * NS),
        ("dev-7", None, "heart_rate", 72.0, "/min", T0 * NS + 500_000_000),
        ("urn:dev:ow:10e2073a01080063", None, "resp_rate", 0.0, None, (T0 + 2) * NS),
    ]
    assert {x.source for x in r.readings} == {"senml"}
    assert r.bad == {}


def test_senml_bad_lines_and_records_by_reason():
    r = read_replay([
        '[{"bn": "dev-7:", "bt": 1795600800, "n": "heart_rate", "v": 71}',   # 1: cut short
        '[{"bn": "dev-7:", "n": "heart_rate", "v": 71, "t": 5}]',            # 2: relative
        '[{"n": "heart_rate", "v": 71, "t": 1795600800}]',                   # 3: no device
        '[{"bn": "dev-7:", "bt": 1795600800, "n": "heart_rate", "v": 71},'   # 4: one good,
        ' {"n": "note", "vs": "moved"},'                                     #    a string value,
        ' {"bn": "dev-8:", "n": "heart_rate", "v": 70}]',                    #    another device
        '[{"bn": "dev-7:", "bt": 1795600800, "n": "hr", "v": 1, "x_": 1}]',  # 5: must-understand
        '{"bn": "dev-7:"}',                                                  # 6: not an array
    ], "senml")
    assert rows(r) == [("dev-7", None, "heart_rate", 71.0, None, T0 * NS)]
    assert r.bad == {"bad_json": 1, "relative_time": 1, "missing_device": 1,
                     "unsupported_field": 2, "identity_mismatch": 1, "missing_field": 1}
    assert [e.split(":")[0] for e in r.examples] == ["line 1", "line 2", "line 3", "line 4", "line 4"]
    assert r.examples[1].startswith("line 2: relative_time: heart_rate: t=5 s is relative")


def test_senml_device_argument_is_the_topic_device():
    lines = ['[{"n": "heart_rate", "v": 71, "t": 1795600800}]',
             '[{"bn": "dev-9:", "n": "heart_rate", "v": 71, "t": 1795600800}]']
    r = read_replay(lines, "senml", device="dev-7")
    assert rows(r) == [("dev-7", None, "heart_rate", 71.0, None, T0 * NS)]
    assert r.bad == {"identity_mismatch": 1}


# --- json --------------------------------------------------------------------------

def test_json_lines_device_field_patient_when_named_and_bad_lines():
    r = read_replay([
        json.dumps({"device": "dev-7", "patient": "p-7", "readings": [
            {"signal": "heart_rate", "value": 71, "unit": "/min", "t": "2026-11-25T10:00:01Z"},
            {"signal": "heart_rate", "unit": "/min", "t": "2026-11-25T10:00:02Z"},   # no value
            {"signal": "spo2", "value": 0, "t_ns": T0 * NS, "flags": ["motion"]}]}),
        json.dumps({"device": "dev-8", "signal": "resp_rate", "value": 12,
                    "t": "2026-11-25T10:00:00Z"}),                            # single reading
        json.dumps({"signal": "resp_rate", "value": 12, "t": "2026-11-25T10:00:00Z"}),
        json.dumps({"device": 8, "signal": "resp_rate", "value": 12, "t_ns": 1}),
        "[1, 2]",
        "{not json",
        json.dumps({"device": "dev-8", "signal": "resp_rate", "value": 12, "t": "10:00"}),
    ], "json")
    assert rows(r) == [
        ("dev-7", "p-7", "spo2", 0.0, None, T0 * NS),
        ("dev-8", None, "resp_rate", 12.0, None, T0 * NS),
        ("dev-7", "p-7", "heart_rate", 71.0, "/min", (T0 + 1) * NS),
    ]
    assert r.readings[0].quality == Quality.MOTION_ARTEFACT
    assert r.bad == {"missing_field": 2, "missing_device": 1, "bad_value": 1, "bad_json": 1,
                     "bad_time": 1}
    assert [e.split(":")[0] for e in r.examples] == ["line 1", "line 3", "line 4", "line 5", "line 6"]


def test_json_device_argument_refuses_another_device():
    lines = [json.dumps({"signal": "hr", "value": 1, "t_ns": T0 * NS}),
             json.dumps({"device": "dev-9", "signal": "hr", "value": 1, "t_ns": T0 * NS})]
    r = read_replay(lines, "json", device="dev-7")
    assert rows(r) == [("dev-7", None, "hr", 1.0, None, T0 * NS)]
    assert r.bad == {"identity_mismatch": 1}


# --- omh ---------------------------------------------------------------------------

def _point(name: str, version: str, body: dict, **header: object) -> str:
    h = {"id": "x-1", "creation_date_time": "2026-11-25T00:00:00Z",
         "schema_id": {"namespace": "omh", "name": name, "version": version}, **header}
    return json.dumps({"header": h, "body": body})


def _hr(value: float, t: str, **header: object) -> str:
    return _point("heart-rate", "2.0", {"heart_rate": {"value": value, "unit": "beats/min"},
                                        "effective_time_frame": {"date_time": t}}, **header)


def test_omh_points_source_name_user_id_activity_skipped_and_bad_points():
    watch = {"acquisition_provenance": {"source_name": "watch-3", "modality": "sensed"}}
    r = read_replay([
        _hr(62, "2026-11-25T10:00:01Z", **watch, user_id="pat-3"),
        _hr(61, "2026-11-25T10:00:00Z", **watch),
        _point("physical-activity", "1.2", {"activity_name": "walking"}, **watch),
        _hr(63, "2026-11-25T10:00:02Z"),                        # names no device
        _hr(64, "2026-11-25T10:00:03"),                         # zoneless time
        '{"header": oops}',
    ], "omh")
    assert rows(r) == [("watch-3", None, "heart_rate", 61.0, "{beats}/min", T0 * NS),
                       ("watch-3", "pat-3", "heart_rate", 62.0, "{beats}/min", (T0 + 1) * NS)]
    # a replay is there to see the alerts: not flagged HISTORICAL as an import is
    assert {x.quality for x in r.readings} == {Quality.OK}
    assert r.skipped == {"activity_episode": 1}
    assert r.bad == {"no_device": 1, "schema_invalid": 1, "bad_json": 1}


def test_omh_device_argument_overrides_source_name_as_on_the_topic():
    line = _hr(61, "2026-11-25T10:00:00Z", acquisition_provenance={"source_name": "watch-3"})
    r = read_replay([line, _hr(62, "2026-11-25T10:00:01Z")], "omh", device="dev-3")
    assert [(x.device, x.value) for x in r.readings] == [("dev-3", 61.0), ("dev-3", 62.0)]


# --- formats, paths, stdin ---------------------------------------------------------

@pytest.mark.parametrize("path, fmt", [
    ("a.senml", "senml"), ("a.senml.json", "senml"), ("a.senmlj", "senml"),
    ("a.jsonl", "json"), ("a.json", "json"), ("a.ndjson", "json"), ("dir.v2/A.CSV", "csv"),
    ("a.omh", "omh"), ("a.omh.json", "omh"), ("a.omh.jsonl", "omh"),
    ("a.txt", None), ("a", None), ("-", None), ("json", None),
])
def test_guess_format_longest_suffix_wins(path, fmt):
    assert guess_format(path) == fmt


def test_read_replay_path_guesses_the_format_and_reads_stdin(tmp_path, monkeypatch):
    f = tmp_path / "night.omh.jsonl"  # omh, not json
    f.write_text(_hr(61, "2026-11-25T10:00:00Z", acquisition_provenance={"source_name": "w"}))
    assert [x.value for x in read_replay_path(str(f)).readings] == [61.0]
    c = tmp_path / "excel.csv"
    c.write_bytes("\ufeffpatient,time_s,signal,value,unit\r\np,1795600800,hr,1,\r\n".encode())
    assert rows(read_replay_path(str(c))) == [("p", None, "hr", 1.0, None, T0 * NS)]

    monkeypatch.setattr("sys.stdin", io.StringIO("patient,time_s,signal,value,unit\n"
                                                 "p,1795600800,hr,2,\n"))
    r = read_replay_path("-", "csv")
    assert (rows(r), r.lines) == ([("p", None, "hr", 2.0, None, T0 * NS)], 2)


def test_unknown_format_and_unreadable_input_are_format_errors(tmp_path):
    with pytest.raises(ReplayFormatError) as info:
        read_replay(["x"], "xml")
    assert (info.value.step, info.value.reason) == ("replay", "unknown_format")
    with pytest.raises(ReplayFormatError) as info:
        read_replay_path(str(tmp_path / "data.txt"))
    assert info.value.reason == "unknown_format" and "data.txt" in info.value.detail
    with pytest.raises(ReplayFormatError) as info:
        read_replay_path("-")  # standard input has no name to guess from
    assert info.value.reason == "unknown_format"

    for path in (tmp_path / "missing.csv", tmp_path):
        with pytest.raises(ReplayFormatError) as info:
            read_replay_path(str(path), "csv")
        assert info.value.reason == "unreadable" and str(path) in info.value.detail
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"patient,time_s,signal,value,unit\n\xe9,1795600800,hr,1,\n")
    with pytest.raises(ReplayFormatError) as info:
        read_replay_path(str(latin))
    assert info.value.reason == "unreadable"
    assert gc.isenabled()


@pytest.mark.parametrize("fmt", ["senml", "json", "omh"])
@pytest.mark.parametrize("device", [None, "dev-7"])
def test_absurdly_deep_json_is_a_bad_line_not_a_crash(fmt, device):
    r = read_replay(["[" * 100_000 + "]" * 100_000, "{" * 50_000], fmt, device=device)
    # the decoders' input limits (connectors/limits.py) name why: 200 kB is over the 64 KiB
    # payload limit, 50 000 levels over the depth limit (32), both found without recursion
    assert (r.readings, r.bad) == ([], {"payload_too_large": 1, "too_deep": 1})
