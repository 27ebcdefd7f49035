"""The Grafana dashboard's InfluxQL, run on a real InfluxDB 1.x with hand-computed answers.

deploy/grafana/dashboards/vitalstream.json queries InfluxDB 2.7 through its v1
InfluxQL API (bucket "vitals" = database "vitals" by the virtual DBRP mapping),
so the same text can be checked here against influxd 1.x. Grafana's macros are
expanded the way Grafana does it: ``$timeFilter`` -> ``time >= <from>ms and
time <= <to>ms``, ``$__interval``/``$__interval_ms`` -> the panel interval,
and a multi-value variable inside a regex -> ``(v1|v2)`` with values regex-escaped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from vitalstream.sinks.lineproto import profile_line
from vitalstream.stream.embedded import InfluxDB1

pytestmark = pytest.mark.services
DASHBOARD = Path(__file__).resolve().parent.parent / "deploy/grafana/dashboards/vitalstream.json"
INFLUX_UID = "vitalstream-influx"
DB = "vitals"
T0_S = 1_699_999_980  # a whole minute (28_333_333 * 60), so GROUP BY time(1m) buckets start at T0
T0_MS = T0_S * 1000
RANGE = (T0_MS, T0_MS + 179_999)  # three whole minutes
NS = 10**9


def _ns(offset_s: int) -> int:
    return (T0_S + offset_s) * NS


LINES = [
    # raw readings: p-1 heart rate 60/70/80 in minute 0, 90 in minute 1, a 0 in minute 2
    *(f"vitals,patient=p-1,device=d1,signal=heart_rate value={v} {_ns(t)}"
      for t, v in ((0, 60), (20, 70), (40, 80), (60, 90), (125, 0))),
    f"vitals,patient=p-1,device=d1,signal=spo2 value=97 {_ns(10)}",
    f"vitals,patient=p-1,device=d1,signal=spo2 value=95 {_ns(70)}",
    f"vitals,patient=p-2,device=d2,signal=heart_rate value=100 {_ns(30)}",
    # p-10 must not match the regex of p-1 (Grafana anchors it: /^p-1$/)
    f"vitals,patient=p-10,device=d10,signal=heart_rate value=110 {_ns(5)}",
    # 1-minute aggregates of the readings above, as the window operator writes them
    f"vitals_1m,patient=p-1,device=d1,signal=heart_rate count=3i,min=60,max=80,mean=70,last=80 {_ns(0)}",
    f"vitals_1m,patient=p-1,device=d1,signal=heart_rate count=1i,min=90,max=90,mean=90,last=90 {_ns(60)}",
    f"vitals_1m,patient=p-1,device=d1,signal=heart_rate count=1i,min=0,max=0,mean=0,last=0 {_ns(120)}",
    f"vitals_1m,patient=p-1,device=d1,signal=spo2 count=1i,min=97,max=97,mean=97,last=97 {_ns(0)}",
    f"vitals_1m,patient=p-10,device=d10,signal=heart_rate count=1i,min=110,max=110,mean=110,last=110 {_ns(0)}",
    # anomaly scores
    f"anomaly,patient=p-1,signal=heart_rate score=1.5 {_ns(20)}",
    f"anomaly,patient=p-1,signal=heart_rate score=3.25 {_ns(40)}",
    f"anomaly,patient=p-1,signal=heart_rate score=0.5 {_ns(80)}",
    f"anomaly,patient=p-1,signal=spo2 score=0.25 {_ns(10)}",
    f"anomaly,patient=p-10,signal=heart_rate score=9 {_ns(5)}",
]
# profile changes, as sinks.lineproto.profile_line writes them (one outside the range)
LINES += [
    profile_line("p-1", "hypertension", "set", "derived", 0.5, "hypertension set",
                 "acc-aha-2017 stage-1 or above: mean 146/92", _ns(30)),
    profile_line("p-10", "low-activity", "set", "manual", 1.0, "low-activity set", "by hand", _ns(40)),
    profile_line("p-1", "hypertension", "end", "derived", 0.0, "hypertension end", "below", _ns(600)),
]


def _grafana_regex_escape(value: str) -> str:
    # Grafana's escapeRegex (packages/grafana-data): these characters get a backslash.
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def expand(query: str, *, interval: str = "1m", interval_ms: int = 60_000,
           patient: list[str] = ("p-1",), signal: list[str] = ("heart_rate",)) -> str:
    def regex_values(values: list[str]) -> str:
        escaped = [_grafana_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    out = query.replace("$timeFilter", f"time >= {RANGE[0]}ms and time <= {RANGE[1]}ms")
    out = out.replace("$__interval_ms", str(interval_ms)).replace("$__interval", interval)
    out = out.replace("$patient", regex_values(list(patient))).replace("$signal", regex_values(list(signal)))
    assert not re.search(r"\$\w", out), f"unexpanded macro in {out}"
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """InfluxQL of every InfluxDB panel, by panel title."""
    out = {}
    for p in _panels(dashboard["panels"]):
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") == INFLUX_UID:
                out[p["title"]] = t["query"]
    return out


@pytest.fixture(scope="module")
def db(influxdb1: InfluxDB1) -> InfluxDB1:
    influxdb1.create_database(DB)
    influxdb1.write(LINES, DB)
    return influxdb1


def test_every_influx_panel_is_checked_below(queries: dict[str, str]) -> None:
    assert set(queries) == {"Readings per second (all patients)", "Vitals: $signal",
                            "1-minute aggregates: $signal", "Anomaly score"}


def test_template_variables_list_tag_values(db: InfluxDB1, dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v["query"] for v in dashboard["templating"]["list"]}
    assert [r["value"] for r in db.select(variables["patient"], DB)] == ["p-1", "p-10", "p-2"]
    assert [r["value"] for r in db.select(variables["signal"], DB)] == ["heart_rate", "spo2"]


def test_readings_per_second_divides_count_by_interval(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["Readings per second (all patients)"]), DB)
    # minute 0: p-1 HR x3 + p-1 SpO2 + p-2 + p-10 = 6 readings / 60 s; minute 1: 2; minute 2: 1 (the 0)
    assert [(r["time"], pytest.approx(r["count"])) for r in rows] == [
        (_ns(0), 6 / 60), (_ns(60), 2 / 60), (_ns(120), 1 / 60)]


def test_readings_per_second_at_a_10s_interval(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["Readings per second (all patients)"], interval="10s",
                            interval_ms=10_000), DB)
    per_bucket = {(r["time"] - _ns(0)) // NS: r["count"] for r in rows}
    # 18 ten-second buckets; the 9 readings are at 0, 5, 10, 20, 30, 40, 60, 70 and 125 s
    counts = {0: 2, 10: 1, 20: 1, 30: 1, 40: 1, 60: 1, 70: 1, 120: 1}
    assert per_bucket == {t: pytest.approx(counts.get(t, 0) / 10) for t in range(0, 180, 10)}


def test_vitals_panel_means_per_patient_and_keeps_zero(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["Vitals: $signal"]), DB)
    # (60 + 70 + 80) / 3 = 70; a reading of 0 is a value, not a gap; p-10 is excluded
    assert [(r["patient"], r["time"], r["mean"]) for r in rows] == [
        ("p-1", _ns(0), 70.0), ("p-1", _ns(60), 90.0), ("p-1", _ns(120), 0.0)]


def test_vitals_panel_with_two_patients_selected(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["Vitals: $signal"], patient=["p-1", "p-2"]), DB)
    assert [(r["patient"], r["time"], r["mean"]) for r in rows] == [
        ("p-1", _ns(0), 70.0), ("p-1", _ns(60), 90.0), ("p-1", _ns(120), 0.0), ("p-2", _ns(0), 100.0)]


def test_aggregates_panel_returns_window_fields(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["1-minute aggregates: $signal"]), DB)
    assert [(r["device"], r["time"], r["min"], r["mean"], r["max"], r["last"], r["count"]) for r in rows] == [
        ("d1", _ns(0), 60.0, 70.0, 80.0, 80.0, 3),
        ("d1", _ns(60), 90.0, 90.0, 90.0, 90.0, 1),
        ("d1", _ns(120), 0.0, 0.0, 0.0, 0.0, 1),
    ]


def test_anomaly_panel_takes_max_score_per_interval(db: InfluxDB1, queries: dict[str, str]) -> None:
    rows = db.select(expand(queries["Anomaly score"]), DB)
    assert [(r["signal"], r["time"], r["max"]) for r in rows] == [
        ("heart_rate", _ns(0), 3.25), ("heart_rate", _ns(60), 0.5), ("spo2", _ns(0), 0.25)]


def test_profile_annotation_shows_the_patients_changes_in_range(db: InfluxDB1,
                                                                 dashboard: dict[str, Any]) -> None:
    """The dashboard's annotation query: p-1's change in the range, not p-10's (regex
    anchored), not p-1's later one (outside $timeFilter); title, text and tag as columns."""
    ann = dashboard["annotations"]["list"][0]
    rows = db.select(expand(ann["query"]), DB)
    assert [(r["time"], r[ann["titleColumn"]], r[ann["tagsColumn"]]) for r in rows] == [
        (_ns(30), "hypertension set", "hypertension")]
    assert rows[0][ann["textColumn"]].startswith("acc-aha-2017")
