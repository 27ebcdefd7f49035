"""Delivery guarantees with real services: redelivery of unacked messages, the
InfluxDB outage spool, and resuming per-patient state across a restart."""

from __future__ import annotations

import collections
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from vitalstream.connectors.mqtt import MqttConfig, MqttReceiver
from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import Scenario
from vitalstream.sinks.influx import InfluxConfig, InfluxWriter
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics

MIN_NS = 60_000_000_000


def _publish_raw(url_host: str, port: int, n: int, topic: str = "vitalstream/d1/json") -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(url_host, port)
    c.loop_start()
    for i in range(n):
        c.publish(topic, f'{{"i": {i}}}', qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def _receive(rx: MqttReceiver, n: int, timeout_s: float = 10.0):
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        got += rx.drain(100)
        time.sleep(0.01)
    return got


def test_unacked_messages_are_redelivered_after_a_crash_and_acked_ones_are_not(mosquitto):
    cfg = MqttConfig(url=mosquitto.url, client_id="vs-redelivery", topic="vitalstream/+/+")
    rx = MqttReceiver(cfg)
    rx.start()
    assert rx.subscribed.wait(5)
    _publish_raw(mosquitto.host, mosquitto.port, 5)
    first = _receive(rx, 5)
    assert len(first) == 5
    # Crash: the socket dies without DISCONNECT and nothing was acked.
    rx._client.loop_stop()
    rx._client.socket().close()
    time.sleep(0.5)

    rx2 = MqttReceiver(cfg)
    rx2.start()
    again = _receive(rx2, 5)
    assert sorted(m.payload for m in again) == sorted(m.payload for m in first)
    for m in again:
        m.token()  # now "stored": acknowledge
    time.sleep(0.3)
    rx2._client.loop_stop()
    rx2._client.socket().close()
    time.sleep(0.5)

    rx3 = MqttReceiver(cfg)
    rx3.start()
    assert rx3.subscribed.wait(5) or rx3.connected
    assert _receive(rx3, 1, timeout_s=1.5) == []
    rx3.stop()


def test_influx_outage_spools_then_replays_in_order(tmp_path):
    with VictoriaMetrics(tmp_path / "vm") as vm:
        w = InfluxWriter(InfluxConfig(url=vm.url, spool_dir=str(tmp_path / "spool"), max_retries=2,
                                      backoff_s=0.01, probe_interval_s=0.0, timeout_ms=2000))
        w.write_lines(["vitals,patient=p,device=d,signal=heart_rate value=60 1000000000"])
        vm.stop()
        w.write_lines(["vitals,patient=p,device=d,signal=heart_rate value=61 2000000000"])
        w.write_lines(["vitals,patient=p,device=d,signal=heart_rate value=62 3000000000"])
        assert w.in_outage and w.batches_spooled == 2 and len(w.spool) == 2
        vm.start()
        w.write_lines(["vitals,patient=p,device=d,signal=heart_rate value=63 4000000000"])
        assert not w.in_outage and len(w.spool) == 0
        rows = vm.export('vitals_value{patient="p"}')
        w.close()
    assert rows[0]["timestamps"] == [1000, 2000, 3000, 4000]
    assert rows[0]["values"] == [60, 61, 62, 63]


def test_state_resumes_across_a_graceful_restart_with_recovery(mosquitto, redis_server, tmp_path):
    """Windows left open at a stop are completed after the restart, not written twice."""
    sc = Scenario(patients=6, duration_s=600, seed=5, codec="json", time_scale=120,
                  profiles=["healthy"] * 6)
    msgs = sc.messages()
    half = len(msgs) // 2
    with VictoriaMetrics(tmp_path / "vm") as vm:
        settings = settings_for(mosquitto.url, redis_server.url, vm.url, tmp_path / "spool",
                                tag="resume", max_clock_skew_s=None, allowed_lateness_s=60.0,
                                rule_delay_s=25.0, state_dir=str(tmp_path / "state"),
                                snapshot_interval_s=0.5)
        run1 = PipelineRun(settings, idle_stop_s=30.0).start()
        publish(msgs[:half], mosquitto.url, progress=False)
        deadline = time.monotonic() + 30
        while run1.pipeline.live.totals()["acked"] < half and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # let a snapshot epoch close
        run1.pipeline.request_stop()
        t1 = run1.join()
        assert t1["acked"] == half
        run2 = PipelineRun(settings, idle_stop_s=3.0).start()
        publish(msgs[half:], mosquitto.url, progress=False)
        run2.join()
        series = vm.export('{__name__=~"vitals_1m_count|vitals_1m_mean"}')
    groups = collections.defaultdict(list)
    for r in sc.valid_readings():
        if not r.motion:
            groups[(r.patient, r.device, r.signal, (r.event_ns - r.event_ns % MIN_NS) // 10**6)].append(r.value)
    got = collections.defaultdict(dict)
    for s in series:
        m = s["metric"]
        for t, v in zip(s["timestamps"], s["values"]):
            # A window written twice would show two samples at one timestamp.
            assert (m["__name__"], t) not in got[(m["patient"], m["device"], m["signal"])]
            got[(m["patient"], m["device"], m["signal"])][(m["__name__"], t)] = v
    assert sum(len(v) for v in got.values()) == 2 * len(groups)
    for (p, d, s, t), vals in groups.items():
        assert got[(p, d, s)][("vitals_1m_count", t)] == len(vals)
        assert got[(p, d, s)][("vitals_1m_mean", t)] == pytest.approx(np.mean(vals), rel=1e-10)


def test_polled_receiver_reconnects_after_broker_restart_and_keeps_its_session(tmp_path):
    from vitalstream.stream.embedded import Mosquitto

    with Mosquitto(tmp_path / "mq") as broker:
        cfg = MqttConfig(url=broker.url, client_id="vs-polled", reconnect_min_s=0.2,
                         reconnect_max_s=1.0)
        rx = MqttReceiver(cfg, polled=True)
        rx.start()
        assert rx.subscribed.is_set()
        _publish_raw(broker.host, broker.port, 3)
        first = _receive(rx, 3)
        for m in first:
            m.token()
        rx.drain(1)  # the pass that writes the acks
        time.sleep(0.5)  # let the broker read them before it stops
        broker.restart()
        _publish_raw(broker.host, broker.port, 3, topic="vitalstream/d2/json")
        second = _receive(rx, 3, timeout_s=15)
        assert [m.topic for m in second] == ["vitalstream/d2/json"] * 3
        for m in second:
            m.token()
        rx.stop()
    assert sorted(m.payload for m in first) == sorted(m.payload for m in second)
