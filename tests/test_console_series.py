"""The console's series readers against real stores (the session's VictoriaMetrics and
InfluxDB 1.x): known lines are written, then read back and compared with what was written.

The session VictoriaMetrics is shared, so every patient id here carries this run's token;
InfluxDB gets a database of its own. Times are whole milliseconds (VM keeps no more) except
in the test about sub-millisecond times.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest

from vitalstream.errors import VitalstreamError
from vitalstream.sinks.lineproto import news2_line, score_line, tag
from vitalstream.stream.console.series import (
    InfluxQLReader,
    SeriesError,
    VictoriaMetricsReader,
    reader_for,
    thin,
)
from vitalstream.stream.embedded import free_port

pytestmark = pytest.mark.services

U = uuid.uuid4().hex[:8]
S = 10**9
T0 = 1_700_000_000_000_000_000
A, B, C = f"{U}-a", f"{U}-b", f"{U}-c"  # C has no data
NOW_P, SUB_P, THIN_P = f"{U}-now", f"{U}-sub", f"{U}-thin"
# ids that need escaping, each with a look-alike the regex or the quoting must not confuse
ODD = {f"o'brien-{U}": 1.0, f"a.b+c-{U}": 2.0, f"aXb+c-{U}": 3.0, f"a\\b-{U}": 4.0,
       f'q"q-{U}': 5.0, f"(p|q)*-{U}": 6.0, f"pq-{U}": 7.0}
INJECT = [f"x' OR \"patient\" =~ /.*/ OR 'y-{U}", f'x"}} or vitals_value{{patient=~".*-{U}']


def vit(p: str, dev: str, sig: str, v: float, t: int) -> str:
    return f"vitals,device={tag(dev)},patient={tag(p)},signal={sig} value={v} {t}"


LINES = [
    vit(A, "d1", "heart_rate", 70, T0), vit(A, "d2", "heart_rate", 72, T0 + 60 * S),
    vit(A, "d1", "heart_rate", 74, T0 + 120 * S),
    vit(A, "d1", "spo2", 97, T0 + 30 * S), vit(A, "d1", "spo2", 95, T0 + 90 * S),
    vit(B, "d3", "heart_rate", 80, T0 + 50 * S), vit(B, "d3", "heart_rate", 82, T0 + 200 * S),
    f"vitals_1m,device=d1,patient={A},signal=heart_rate count=2i,last=72,max=72,mean=71,min=70 {T0}",
    f"vitals_1m,device=d1,patient={A},signal=heart_rate count=1i,last=74,max=74,mean=74,min=74 {T0 + 60 * S}",
    f"vitals_1m,device=d1,patient={A},signal=spo2 count=2i,mean=96 {T0}",
    f"vitals_1m,device=d1,patient={B},signal=spo2 count=9i,mean=50,min=1,max=99 {T0}",
    f"vitals_30s,device=d1,patient={A},signal=heart_rate count=1i,mean=99 {T0}",
    score_line(A, "heart_rate", 0.25, T0 + 60 * S, 60.0, 80.0, 72.0),
    score_line(A, "heart_rate", 0.875, T0 + 120 * S, 61.5, 79.5, 74.0),
    score_line(B, "heart_rate", 0.5, T0 + 120 * S, 1.0, 2.0, 3.0),
    news2_line(A, T0, 7, 3, True, [("resp_rate", 2)]),
    news2_line(A, T0 + 60 * S, 3, 1, True, []),
    news2_line(A, T0 + 300 * S, 0, 0, False, []),
    news2_line(B, T0 + 30 * S, 5, 2, True, []),
    vit(SUB_P, "d1", "heart_rate", 60, T0 + 1_500_000),  # 1.5 ms
    *(vit(THIN_P, "d1", "heart_rate", i, T0 + i * S) for i in range(10)),
    *(vit(p, "d1", "heart_rate", v, T0 + 10 * S) for p, v in ODD.items()),
]


class Victoria:
    cls = VictoriaMetricsReader

    def __init__(self, vm) -> None:
        self.server, self.url = vm, vm.url

    def write(self, lines: list[str]) -> None:
        req = urllib.request.Request(self.url + "/write", "\n".join(lines).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 204
        self.server.flush()

    def reader(self, **kw) -> VictoriaMetricsReader:
        return VictoriaMetricsReader(self.url, **kw)


class Influx:
    cls = InfluxQLReader

    def __init__(self, ix) -> None:
        self.server, self.url, self.db = ix, ix.url, f"console_series_{U}"
        ix.create_database(self.db)

    def write(self, lines: list[str]) -> None:
        self.server.write(lines, self.db)

    def reader(self, **kw) -> InfluxQLReader:
        return InfluxQLReader(self.url, self.db, **kw)


@pytest.fixture(scope="module", params=["victoria-metrics", "influxql"])
def store(request):
    s = Victoria(request.getfixturevalue("victoria")) if request.param == "victoria-metrics" \
        else Influx(request.getfixturevalue("influxdb1"))
    s.write(LINES)
    return s


def test_latest_newest_per_signal_across_devices_within_the_range(store):
    got = store.reader().latest([A, B, C], T0 + 45 * S, T0 + 150 * S)
    assert got == {A: {"heart_rate": (T0 + 120 * S, 74.0), "spo2": (T0 + 90 * S, 95.0)},
                   B: {"heart_rate": (T0 + 50 * S, 80.0)}}
    # the bounds are inclusive; a range before every point finds nothing
    assert store.reader().latest([A], T0 + 30 * S, T0 + 30 * S) == {A: {"spo2": (T0 + 30 * S, 97.0)}}
    assert store.reader().latest([A, B], T0 - 100 * S, T0 - S) == {}
    assert store.reader().latest([], T0, T0 + 1000 * S) == {}


def test_latest_sees_a_reading_of_a_second_ago(store):
    now = time.time_ns() // 10**6 * 10**6
    store.write([vit(NOW_P, "d1", "heart_rate", 61, now - S)])
    got = store.reader().latest([NOW_P], now - 3600 * S, now)
    assert got == {NOW_P: {"heart_rate": (now - S, 61.0)}}


def test_latest_news2(store):
    got = store.reader().latest_news2([A, B, C], T0, T0 + 100 * S)
    assert got == {A: (T0 + 60 * S, 3, 1), B: (T0 + 30 * S, 5, 2)}
    assert store.reader().latest_news2([A], T0 + 61 * S, T0 + 299 * S) == {}


def test_readings_merge_devices_in_time_order(store):
    assert store.reader().readings(A, T0, T0 + 1000 * S) == {
        "heart_rate": [(T0, 70.0), (T0 + 60 * S, 72.0), (T0 + 120 * S, 74.0)],
        "spo2": [(T0 + 30 * S, 97.0), (T0 + 90 * S, 95.0)]}
    assert store.reader().readings(A, T0 + S, T0 + 90 * S) == {
        "heart_rate": [(T0 + 60 * S, 72.0)], "spo2": [(T0 + 30 * S, 97.0), (T0 + 90 * S, 95.0)]}
    assert store.reader().readings(A, T0 - 100 * S, T0 - S) == {}
    assert store.reader().readings(C, T0, T0 + 1000 * S) == {}


def test_windows_mean_min_max_of_the_measurement_asked(store):
    assert store.reader().windows(A, T0, T0 + 1000 * S) == {
        "heart_rate": {"mean": [(T0, 71.0), (T0 + 60 * S, 74.0)],
                       "min": [(T0, 70.0), (T0 + 60 * S, 74.0)],
                       "max": [(T0, 72.0), (T0 + 60 * S, 74.0)]},
        "spo2": {"mean": [(T0, 96.0)]}}  # only the fields written
    assert store.reader().windows(A, T0, T0 + S, "vitals_30s") == {"heart_rate": {"mean": [(T0, 99.0)]}}
    assert store.reader().windows(A, T0 + S, T0 + 59 * S) == {}


def test_anomaly_score_and_band(store):
    assert store.reader().anomaly(A, T0, T0 + 1000 * S) == {"heart_rate": {
        "score": [(T0 + 60 * S, 0.25), (T0 + 120 * S, 0.875)],
        "expected_low": [(T0 + 60 * S, 60.0), (T0 + 120 * S, 61.5)],
        "expected_high": [(T0 + 60 * S, 80.0), (T0 + 120 * S, 79.5)]}}
    assert store.reader().anomaly(A, T0 + 61 * S, T0 + 1000 * S)["heart_rate"]["score"] == \
        [(T0 + 120 * S, 0.875)]


def test_news2_history(store):
    assert store.reader().news2(A, T0, T0 + 1000 * S) == [
        (T0, 7, 3), (T0 + 60 * S, 3, 1), (T0 + 300 * S, 0, 0)]
    assert store.reader().news2(A, T0 + S, T0 + 299 * S) == [(T0 + 60 * S, 3, 1)]
    assert store.reader().news2(C, T0, T0 + 1000 * S) == []


def test_ids_needing_escaping_read_only_their_own_data(store):
    r, t = store.reader(), T0 + 10 * S
    for p, v in ODD.items():
        assert r.readings(p, T0, T0 + 100 * S) == {"heart_rate": [(t, v)]}, p
        assert r.latest([p], T0, T0 + 100 * S) == {p: {"heart_rate": (t, v)}}, p
    assert r.latest(list(ODD), T0, T0 + 100 * S) == {p: {"heart_rate": (t, v)} for p, v in ODD.items()}
    for p in INJECT:  # a quote cannot end the literal: no data, no error
        assert r.readings(p, T0, T0 + 100 * S) == {}
        assert r.latest([p], T0, T0 + 100 * S) == {}
        assert r.news2(p, T0, T0 + 1000 * S) == []


def test_long_series_are_thinned_keeping_the_newest(store):
    got = store.reader(max_points=4).readings(THIN_P, T0, T0 + 100 * S)
    assert got == {"heart_rate": [(T0 + i * S, float(i)) for i in (0, 3, 6, 9)]}


def test_times_keep_what_the_store_keeps(store):
    got = store.reader().readings(SUB_P, T0, T0 + S)["heart_rate"]
    # VictoriaMetrics stores milliseconds (truncated); InfluxDB the nanoseconds written
    assert got == [(T0 + 1_000_000 if store.cls is VictoriaMetricsReader else T0 + 1_500_000, 60.0)]


def test_auto_picks_the_reader_of_the_server(store):
    r = reader_for(store.url, kind="auto", database=getattr(store, "db", "vitals"), token="")
    assert type(r) is store.cls
    assert r.readings(A, T0, T0 + S) == {"heart_rate": [(T0, 70.0)]}
    kind = "victoria-metrics" if store.cls is VictoriaMetricsReader else "influxql"
    assert type(reader_for(store.url, kind=kind)) is store.cls


def test_unreachable_store_names_step_patient_and_reason():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SeriesError) as e:
        VictoriaMetricsReader(url, timeout_s=1).readings("p-1", T0, T0 + S)
    assert isinstance(e.value, VitalstreamError)
    assert (e.value.step, e.value.patient, e.value.reason) == ("console.series", "p-1", "unreachable")
    assert "console.series" in str(e.value) and "p-1" in str(e.value)
    with pytest.raises(SeriesError, match="unreachable"):
        reader_for(url, kind="auto", timeout_s=1)
    with pytest.raises(SeriesError, match="bad_kind"):
        reader_for(url, kind="flux")


def test_influxql_error_is_a_query_error(influxdb1):
    r = InfluxQLReader(influxdb1.url, f"no_such_db_{U}")
    with pytest.raises(SeriesError) as e:
        r.readings("p-1", T0, T0 + S)
    assert e.value.reason == "query_error" and "database not found" in str(e.value)


def test_thin():
    assert thin([1, 2, 3], 3) == [1, 2, 3]
    assert thin(list(range(11)), 3) == [0, 5, 10]
    for n in range(2, 60):
        for m in range(2, 12):
            got = thin(list(range(n)), m)
            assert len(got) <= m and got[-1] == n - 1 and got == sorted(set(got))
            assert len(got) >= min(n, m // 2 + 1)  # thinned, not emptied
