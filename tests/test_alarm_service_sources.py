"""The alarm service (real Redis, fake clock) across patients: a gateway's alarm holds the
stale-data alarms of the patients it names, the broker's alarm holds everyone's (patients
first heard of while it is active included), a restart keeps that, a crash between reading
and committing loses nothing, and the alarm burden reaches a real store (VictoriaMetrics)."""

from __future__ import annotations

import json
import time

import pytest
import redis

from vitalstream.model import Alert
from vitalstream.operators.burden import BurdenMeter
from vitalstream.operators.liveness import GatewayWatch, LinkWatch
from vitalstream.sinks.influx import InfluxConfig, InfluxWriter
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
from vitalstream.stream.alarms import AlarmService
from vitalstream.testing import FakeClock

from test_alarm_service import _validated, db  # noqa: F401  (the fixture)

NS = 1_000_000_000


def _stale(patient: str, state: str, t_ns: int, start_ns: int) -> Alert:
    return Alert(f"stale-{patient}-{start_ns}", patient, "no_data", "heart_rate", "warning",
                 state, float("nan"), 600.0, t_ns, start_ns, 0 if state == "firing" else 1, "",
                 "no heart_rate for 10 min")


def _sent(r) -> list[tuple[str, str, str]]:
    return [(m["patient"], m["rule"], m["reason"]) for m in _validated(r, "vitalstream:outreach")]


def _held(r) -> list[str]:
    return sorted(f[b"patient"].decode() for _, f in r.xrange("vitalstream:audit")
                  if f[b"action"] == b"suppressed")


def test_a_gateway_alarm_holds_its_patients_stale_alarms_and_releases_the_still_silent(db):
    url, r = db
    t0 = time.time_ns()
    clock = FakeClock(t0)
    out = RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts"))
    gw = GatewayWatch(offline_after_s=300).build(key="gw-3")
    for p in ("p1", "p2"):
        gw.heard(p, t0)
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    (offline,) = gw.fire(t0 + 300 * NS)
    out.write_alerts([offline, _stale("p1", "firing", t0 + 600 * NS, t0 + 600 * NS),
                      _stale("p2", "firing", t0 + 600 * NS, t0 + 600 * NS),
                      _stale("p9", "firing", t0 + 600 * NS, t0 + 600 * NS)])  # not behind gw-3
    clock.set(t0 + 600 * NS)
    service.step()
    assert _sent(r) == [("gateway:gw-3", "gateway_offline", "raised"), ("p9", "no_data", "raised")]
    assert _held(r) == ["p1", "p2"]
    # a restart in between keeps the holds (they live in each patient's state)
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    (back,) = gw.heard("p1", t0 + 900 * NS)
    out.write_alerts([back, _stale("p1", "resolved", t0 + 901 * NS, t0 + 600 * NS)])
    clock.set(t0 + 901 * NS)
    service.step()
    assert _sent(r)[2:] == [("gateway:gw-3", "gateway_offline", "resolved")]
    clock.set(t0 + 961 * NS)  # 60 s grace: p2 is still silent
    service.step()
    assert _sent(r)[3:] == [("p2", "no_data", "raised")]


def test_the_broker_alarm_holds_every_patient_even_one_first_heard_of_during_it(db):
    url, r = db
    t0 = time.time_ns()
    clock = FakeClock(t0)
    out = RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts"))
    link = LinkWatch(after_s=30).build()
    link.observe(False, t0)
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    out.write_alerts([_stale("p1", "firing", t0, t0)])  # raised before the broker went
    clock.set(t0)
    service.step()
    (lost,) = link.observe(False, t0 + 30 * NS)
    out.write_alerts([lost, _stale("p5", "firing", t0 + 60 * NS, t0 + 60 * NS),
                      _stale("p6", "firing", t0 + 60 * NS, t0 + 60 * NS)])
    clock.set(t0 + 60 * NS)
    service.step()
    assert _sent(r) == [("p1", "no_data", "raised"), ("pipeline", "broker_lost", "raised")]
    assert _held(r) == ["p5", "p6"]
    (up,) = link.observe(True, t0 + 100 * NS)
    out.write_alerts([up, _stale("p5", "resolved", t0 + 101 * NS, t0 + 60 * NS)])
    clock.set(t0 + 101 * NS)
    service.step()
    clock.set(t0 + 161 * NS)
    service.step()
    assert _sent(r)[2:] == [("pipeline", "broker_lost", "recovered"), ("p6", "no_data", "raised")]


def test_entries_read_but_not_committed_before_a_crash_are_applied_after_the_restart(db):
    url, r = db
    t0 = time.time_ns()
    clock = FakeClock(t0)
    RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts")).write_alerts(
        [Alert("b1", "p1", "bradycardia", "heart_rate", "critical", "firing", 38.0, 40.0, t0, t0)])
    crashed = AlarmService(r, "vitalstream:alerts", clock=clock)
    crashed._recovering = False
    assert len(crashed._read(10)) == 1  # read, then the process dies before its commit
    assert r.xpending("vitalstream:alerts", "vitalstream-lifecycle")["pending"] == 1
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    assert service.step() == 1
    assert _sent(r) == [("p1", "bradycardia", "raised")]
    assert r.xpending("vitalstream:alerts", "vitalstream-lifecycle")["pending"] == 0


def test_alarm_burden_points_reach_the_store(db, victoria):
    url, r = db
    t0 = (time.time_ns() // (60 * NS) - 10) * 60 * NS  # a minute boundary, 10 min ago
    clock = FakeClock(t0)
    tag = f"burden-{t0}"
    out = RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts"))
    lines = InfluxWriter(InfluxConfig(url=victoria.url, spool_dir="/tmp/vs-burden-spool"))
    service = AlarmService(r, "vitalstream:alerts", clock=clock, lines=lines,
                           monitored=lambda: 4, burden=BurdenMeter(interval_s=60))
    rule = f"brady-{t0}"  # the store is shared by the session: a rule name of its own
    out.write_alerts([Alert(f"{tag}-{i}", f"p{i}", rule, "heart_rate", "critical",
                            "firing", 38.0, 40.0, t0 + i * NS, t0 + i * NS) for i in range(2)])
    service.step()
    clock.set(t0 + 60 * NS)  # the minute closes: 2 raised / (4 patients x 1/1440 day) = 720
    service.step()
    lines.close()

    def rows():
        got = victoria.export(f'alarm_burden_raised{{rule="{rule}",priority="high"}}')
        return [(row["timestamps"], row["values"]) for row in got
                if t0 // 10**6 in row["timestamps"]]
    deadline = time.monotonic() + 15
    while not rows() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rows() == [([t0 // 10**6], [2.0])]
    rate = victoria.export(f'alarm_burden_per_patient_day{{rule="{rule}",priority="high"}}')
    assert [v for row in rate for t, v in zip(row["timestamps"], row["values"])
            if t == t0 // 10**6] == [pytest.approx(720.0)]
