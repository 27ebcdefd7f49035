"""End to end over real mosquitto, Redis and VictoriaMetrics: BLE gateways, the
device registry, quarantine and replay.

Three simulated people each carry a phone gateway relaying four BLE devices
(raw GATT values in gateway envelopes) plus a native JSON device. The registry
maps the devices, except:

- X, p0002's HR strap, is unmapped: its readings are quarantined, then X is
  assigned retroactively (start one hour before the run) and ``replay`` stores
  them as historical data: aggregated, never alerted on, each exactly once;
- Y, p0003's oximeter, is handed to p0099 *while the pipeline runs*, from event
  time T_mid on: readings before T_mid stay with p0003, later ones go to p0099;
- Z, p0003's thermometer, is never mapped: it stays quarantined.

Expected placement comes from the simulated ground truth and the three rules
above, not from the pipeline.
"""

from __future__ import annotations

import collections
import json
import time

import pytest
import redis
from vitalstream.connectors.registry import DeviceRegistry, RegistryResolver
from vitalstream.model import Message
from vitalstream.operators.normalise import Normaliser
from vitalstream.simulators.ble_gateway import ble_gateway_run, mac_of
from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import Scenario
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.quarantine import replay_quarantine
from vitalstream.stream.reference import run_reference
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics

NS = 1_000_000_000
MS = 1_000_000
H = 3600 * NS
MIN_NS = 60 * NS
X, Y, Z = mac_of("hr_strap", 2), mac_of("oximeter", 3), mac_of("thermometer", 3)
SPLIT_S = 450.0  # true seconds: messages up to here are published before Y is handed over


@pytest.fixture(scope="module")
def e2e(mosquitto, redis_server, tmp_path_factory):
    sc = Scenario(patients=3, duration_s=900, seed=21, time_scale=90,
                  profiles=["healthy", "tachycardia", "healthy"])
    run = ble_gateway_run(sc, tz="Europe/Berlin")
    t_mid = sc.start_ns + round((SPLIT_S + 10) * NS)  # after every stamp published in part 1
    tmp = tmp_path_factory.mktemp("e2e-identity")
    client = redis.Redis.from_url(redis_server.url)
    with VictoriaMetrics(tmp / "vm") as vm:
        settings = settings_for(mosquitto.url, redis_server.url, vm.url, tmp / "spool",
                                max_clock_skew_s=None, allowed_lateness_s=30.0, rule_delay_s=25.0)
        registry = DeviceRegistry(client, prefix=f"{settings.mqtt.client_id}:devices")
        for d in run.devices:
            if d.mac not in (X, Z):
                registry.assign(d.mac, d.person, sc.start_ns - H, user=d.user)
        split = SPLIT_S / sc.time_scale
        part1 = [m for m in run.messages if m.publish_offset_s <= split]
        part2 = [m for m in run.messages if m.publish_offset_s > split]
        resolver = RegistryResolver(registry)
        with PipelineRun(settings, idle_stop_s=3.0, patient_resolver=resolver) as prun:
            publish(part1, mosquitto.url, rate=0, progress=False)
            registry.assign(Y, "p0099", t_mid)  # the running pipeline must pick this up
            time.sleep(2 * resolver.poll_s)
            publish(part2, mosquitto.url, rate=0, progress=False)
            totals = prun.join()
        quarantined_live = client.xlen(settings.redis.quarantine_stream)
        alerts_before = client.xlen(settings.redis.alerts_stream)
        registry.assign(X, "p0002", sc.start_ns - H)  # retroactive
        stats = replay_quarantine(settings, registry)
        again = replay_quarantine(settings, registry)
        series = vm.export('{__name__=~"vitals_value|vitals_1m_count"}')
    left = [e[1] for e in client.xrange(settings.redis.quarantine_stream)]
    alerts = [{k.decode(): v.decode() for k, v in e[1].items()}
              for e in client.xrange(settings.redis.alerts_stream)]
    return {"sc": sc, "run": run, "t_mid": t_mid, "totals": totals, "stats": stats,
            "again": again, "series": series, "left": left, "alerts": alerts,
            "alerts_before": alerts_before, "quarantined_live": quarantined_live,
            "settings": settings}


def owner(e, t_mid: int) -> str | None:
    """Who a simulated reading belongs to, by the registry rules of this test."""
    if e.device == Z:
        return None
    if e.device == Y and e.event_ns >= t_mid:
        return "p0099"
    return e.patient


def _stored(series, name):
    out = collections.defaultdict(list)
    for s in series:
        m = s["metric"]
        if m["__name__"] == name:
            out[(m["patient"], m["device"], m["signal"])] += list(zip(s["timestamps"], s["values"]))
    return {k: sorted(v) for k, v in out.items()}


def test_every_reading_lands_on_the_right_patient_exactly_once(e2e):
    want = collections.defaultdict(list)
    for e in e2e["run"].expected:
        who = owner(e, e2e["t_mid"])
        if who is not None:
            want[(who, e.device, e.signal)].append((e.event_ns // MS, e.value))
    got = _stored(e2e["series"], "vitals_value")
    assert got.keys() == want.keys()
    for key, pts in want.items():
        # VictoriaMetrics keeps every sample written: a duplicate would show as a second point.
        assert [t for t, _ in got[key]] == [t for t, _ in sorted(pts)], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in sorted(pts)], rel=1e-11), key
    assert ("p0099", Y, "spo2") in got and ("p0003", Y, "spo2") in got
    assert ("p0002", X, "heart_rate") in got


def test_unmapped_device_was_quarantined_then_replayed_once_and_the_rest_stays(e2e):
    run, stats = e2e["run"], e2e["stats"]
    x_msgs = [m for m in run.messages if f'"device":"{X}"'.encode() in m.payload]
    z_msgs = [m for m in run.messages if f'"device":"{Z}"'.encode() in m.payload]
    x_readings = [e for e in run.expected if e.device == X]
    assert e2e["quarantined_live"] == len(x_msgs) + len(z_msgs)  # redeliveries included
    assert stats.mapped == len(x_msgs) and stats.repeats == len(x_msgs) - len(x_readings)
    assert stats.readings == len(x_readings) and stats.dead_letters == 0
    assert stats.still_quarantined == len(z_msgs)
    assert (e2e["again"].mapped, e2e["again"].readings) == (0, 0)
    assert {json.loads(f[b"reading"])["device"] for f in e2e["left"]} == {Z}


def test_replayed_readings_are_aggregated_like_a_batch_computation(e2e):
    per_min = collections.Counter(e.event_ns // MIN_NS * MIN_NS // MS
                                  for e in e2e["run"].expected if e.device == X and not e.motion)
    got = dict(_stored(e2e["series"], "vitals_1m_count")[("p0002", X, "heart_rate")])
    assert got == per_min
    assert e2e["stats"].aggregates >= len(per_min)


def test_replayed_historical_readings_raise_no_alert_though_live_ones_would(e2e):
    assert e2e["stats"].alerts == 0
    assert len(e2e["alerts"]) == e2e["alerts_before"]
    # Control: the same messages of X, mapped live (not historical), do fire the rule.
    x_msgs = [Message(m.topic, m.payload, e2e["sc"].start_ns + round(m.publish_offset_s * NS))
              for m in e2e["run"].messages if f'"device":"{X}"'.encode() in m.payload]
    control = run_reference(x_msgs, patient_flow(e2e["settings"]),
                            lambda: Ingest(Normaliser(None), patient_of=lambda raw: "p0002"))
    assert any(a.rule == "tachycardia" for a in control.alerts)


def test_live_run_acknowledged_everything(e2e):
    t = e2e["totals"]
    assert t["messages"] == len(e2e["run"].messages) == t["acked"]
    assert t["dead_letters"] == 0
