"""End to end over real mosquitto, Redis and VictoriaMetrics (InfluxDB v2 write API).

The simulator publishes a known scenario (late, duplicate, reordered and
malformed messages included); the real pipeline runs; then the stores are read
back and compared with what the scenario says must be there:

(a) every valid reading stored exactly once, (b) every 1-minute aggregate equal
to a numpy batch computation over the same readings, (c) exactly one alert per
injected episode and none for patients without one, (d) every malformed
message in the dead-letter stream with the expected reason.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import redis

from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import Scenario
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics

MS = 1_000_000
MIN_NS = 60_000_000_000


@pytest.fixture(scope="module")
def e2e(mosquitto, redis_server, tmp_path_factory):
    sc = Scenario(patients=30, duration_s=1200, seed=11, codec="mixed", time_scale=120)
    tmp = tmp_path_factory.mktemp("e2e")
    with VictoriaMetrics(tmp / "vm") as vm:
        # Replay of compressed time: device stamps run ahead of the wall clock, so
        # the skew check is off; lateness covers the simulator's 20 s late sends.
        settings = settings_for(mosquitto.url, redis_server.url, vm.url, tmp / "spool",
                                max_clock_skew_s=None, allowed_lateness_s=30.0, rule_delay_s=25.0)
        with PipelineRun(settings, idle_stop_s=4.0) as run:
            stats = publish(sc, mosquitto.url, progress=False)
            totals = run.join()
        series = vm.export('{__name__=~"vitals_value|vitals_1m_.*|anomaly_score"}')
    r = redis.Redis.from_url(redis_server.url)
    alerts = [{k.decode(): v.decode() for k, v in e[1].items()}
              for e in r.xrange(settings.redis.alerts_stream)]
    dead = [{k.decode(): v for k, v in e[1].items()} for e in r.xrange(settings.redis.deadletter_stream)]
    return sc, stats, totals, series, alerts, dead


def _by_metric(series, name):
    out = {}
    for s in series:
        m = s["metric"]
        if m["__name__"] == name:
            out[(m["patient"], m["device"], m["signal"])] = dict(zip(s["timestamps"], s["values"]))
    return out


def test_every_message_acknowledged_after_storage(e2e):
    sc, stats, totals, *_ = e2e
    assert stats.acked == len(sc.messages())
    assert totals["messages"] == len(sc.messages())
    assert totals["acked"] == totals["messages"]


def test_every_valid_reading_stored_exactly_once(e2e):
    sc, _, _, series, *_ = e2e
    expected = collections.defaultdict(list)
    for r in sc.valid_readings():
        expected[(r.patient, r.device, r.signal)].append((r.event_ns // MS, r.value))
    stored = {}
    for s in series:
        m = s["metric"]
        if m["__name__"] == "vitals_value":
            stored[(m["patient"], m["device"], m["signal"])] = sorted(zip(s["timestamps"], s["values"]))
    assert stored.keys() == expected.keys()
    for key, pts in expected.items():
        # VictoriaMetrics keeps every sample it is sent, so a duplicate write would
        # show up here as a second point at the same millisecond.
        got, want = stored[key], sorted(pts)
        assert [t for t, _ in got] == [t for t, _ in want], key
        # VictoriaMetrics exports 12 significant digits.
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-11), key


def test_window_aggregates_equal_batch_computation(e2e):
    sc, _, _, series, *_ = e2e
    groups = collections.defaultdict(list)
    for r in sc.valid_readings():
        if r.motion:  # artefact-flagged readings are stored but not aggregated
            continue
        start = r.event_ns - r.event_ns % MIN_NS
        groups[(r.patient, r.device, r.signal, start // MS)].append((r.event_ns, r.value))
    fields = {f: _by_metric(series, f"vitals_1m_{f}") for f in ("count", "min", "max", "mean", "last")}
    n_windows = sum(len(v) for v in fields["count"].values())
    assert n_windows == len(groups)
    for (p, d, s, t_ms), pts in groups.items():
        pts.sort()
        v = np.array([x for _, x in pts])
        key = (p, d, s)
        assert fields["count"][key][t_ms] == len(v)
        # VictoriaMetrics exports 12 significant digits.
        assert fields["min"][key][t_ms] == pytest.approx(v.min(), rel=1e-11)
        assert fields["max"][key][t_ms] == pytest.approx(v.max(), rel=1e-11)
        assert fields["mean"][key][t_ms] == pytest.approx(v.mean(), rel=1e-10)
        assert fields["last"][key][t_ms] == pytest.approx(pts[-1][1], rel=1e-11)


def test_one_alert_per_injected_episode_none_for_others(e2e):
    sc, _, _, _, alerts, _ = e2e
    truth = sc.ground_truth()
    episodes = [g for g in truth if g["type"] == "episode"]
    assert episodes, "scenario must inject episodes for this test to mean anything"
    firing = [a for a in alerts if a["state"] == "firing"]
    for ep in episodes:
        mine = [a for a in firing if a["patient"] == ep["patient"] and a["rule"] == ep["rule"]
                and ep["onset_ns"] <= int(a["event_ns"]) <= ep["recovered_ns"]]
        assert len(mine) == 1, (ep, mine)
    with_episode = {ep["patient"] for ep in episodes}
    # the episode's other rules join its concern (grouped/escalated): no second page
    opened = [a for a in alerts if a["state"] in ("firing", "grouped", "escalated")]
    for a in opened:
        assert a["patient"] in with_episode, a
        allowed = {r for ep in episodes if ep["patient"] == a["patient"] for r in ep["rules"]}
        assert a["rule"] in allowed, a
    # ids are per episode: every resolved event belongs to an opened episode
    fired_ids = {a["alert_id"] for a in opened}
    assert all(a["alert_id"] in fired_ids for a in alerts)


def test_every_malformed_message_dead_lettered_with_reason(e2e):
    sc, *_, dead = e2e
    truth = [g for g in sc.ground_truth() if g["type"] == "malformed"]
    expected = collections.Counter((g["topic"], g["reason"]) for g in truth)
    got = collections.Counter((d["topic"].decode(), d["reason"].decode()) for d in dead)
    assert got == expected
    assert all(d["payload"] for d in dead)


def test_anomaly_scores_reach_the_store_and_flag_tachycardia(e2e):
    sc, _, _, series, *_ = e2e
    hr = collections.defaultdict(list)
    for s in series:
        m = s["metric"]
        if m["__name__"] == "anomaly_score" and m["signal"] == "heart_rate":
            hr[m["patient"]] = list(zip(s["timestamps"], s["values"]))
    patients = {r.patient for r in sc.valid_readings() if r.signal == "heart_rate"}
    assert set(hr) == patients
    for ep in (g for g in sc.ground_truth() if g["type"] == "episode" and g["kind"] == "tachycardia"):
        during = [v for t, v in hr[ep["patient"]] if ep["start_ns"] // MS <= t <= ep["end_ns"] // MS]
        assert max(during) > 4.0, ep  # the default detector's threshold
