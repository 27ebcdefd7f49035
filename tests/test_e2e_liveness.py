"""End to end over real mosquitto, Redis and VictoriaMetrics, with the pipeline and its
in-process alarm service: a BLE gateway that falls silent, the broker lost, and a day of
back-filled readings.

Times are shrunk so that a test takes seconds (a site policy in the rules file): stale
heart rate after 8 s, a gateway offline after 3 s, a source's release grace 2 s. Device
times are real (now), so the default clock-skew and back-fill checks are in force.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from importlib import resources

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import redis
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from vitalstream.simulators.ble_gateway import envelope, heart_rate_value
from vitalstream.sinks.alarm_state import outreach_schema
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.testing import wait_for as _wait

NS = 1_000_000_000


def _rules(tmp_path, **overrides) -> str:
    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text())
    doc.update(overrides)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _fast_policy(tmp_path) -> str:
    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text())
    lc = doc["lifecycle"]
    lc["release_grace_s"] = 2
    return _rules(tmp_path, stale={"heart_rate": 8}, gateways={"offline_after_s": 3},
                  lifecycle=lc)


class _Publisher:
    def __init__(self, url: str, client_id: str) -> None:
        from vitalstream.connectors.mqtt import parse_mqtt_url

        a = parse_mqtt_url(url)
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.connect(a.host, a.port)
        self.c.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _outreach(r: redis.Redis, stream: str) -> list[dict]:
    return [json.loads(f[b"message"]) for _, f in r.xrange(stream)]


def _validated(msgs: list[dict]) -> list[dict]:
    v = jsonschema.Draft202012Validator(outreach_schema())
    for m in msgs:
        v.validate(m)
    return msgs


def _straps(pub: _Publisher, gateway: str, macs: list[str], seconds: float) -> None:
    """Each strap sends its heart rate through ``gateway`` once a second, timed now."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for mac in macs:
            pub.send(f"vitalstream/{gateway}/ble",
                     envelope(gateway, mac, "2A37", heart_rate_value(66, False), time.time_ns(), "UTC"))
        time.sleep(1.0)


def test_a_silent_gateway_gives_one_alarm_naming_its_patients_and_no_stale_alarms(
        mosquitto, redis_server, tmp_path):
    settings = settings_for(mosquitto.url, redis_server.url, "http://127.0.0.1:9", tmp_path / "spool")
    settings = dataclasses.replace(settings, rules_path=_fast_policy(tmp_path))
    prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
    r = redis.Redis.from_url(redis_server.url)
    macs = ["02:00:01:00:00:0A", "02:00:01:00:00:0B", "02:00:01:00:00:0C"]  # patients = devices
    gw = f"gw-{prefix}"
    pub = _Publisher(mosquitto.url, f"pub-{prefix}")
    try:
        with PipelineRun(settings, idle_stop_s=None) as run:
            _straps(pub, gw, macs, 3)
            # the gateway falls silent: its alarm 3 s after its last message
            offline = _wait(lambda: [m for m in _outreach(r, f"{prefix}:outreach")
                                     if m["rule"] == "gateway_offline"], "gateway_offline")
            assert [(m["patient"], m["reason"], m["priority"], m["covers"]) for m in offline] == [
                (f"gateway:{gw}", "raised", "medium", macs)]
            assert all(mac in offline[0]["explanation"] for mac in macs)
            # well past every patient's stale T (8 s after their last reading): nothing more
            # is sent, and the three stale alarms are on record as suppressed
            def held():
                got = [f for _, f in r.xrange(f"{prefix}:audit") if f[b"action"] == b"suppressed"]
                return got if len(got) == 3 else None
            audit = _wait(held, "three suppressed stale alarms")
            assert sorted(f[b"patient"].decode() for f in audit) == macs
            time.sleep(2.0)
            sent = _outreach(r, f"{prefix}:outreach")
            assert [m["rule"] for m in sent] == ["gateway_offline"]
            # the gateway comes back with two of its three patients
            _straps(pub, gw, macs[:2], 3)
            raised = _wait(lambda: [m for m in _outreach(r, f"{prefix}:outreach")
                                    if m["rule"] == "no_data"], "the still-silent patient's alarm")
            time.sleep(1.0)
            sent = _validated(_outreach(r, f"{prefix}:outreach"))
            run.pipeline.request_stop()
        got = [(m["patient"], m["rule"], m["reason"]) for m in sent]
        assert got == [(f"gateway:{gw}", "gateway_offline", "raised"),
                       (f"gateway:{gw}", "gateway_offline", "resolved"),
                       (macs[2], "no_data", "raised")], got
        assert raised[0]["patient"] == macs[2]
    finally:
        pub.close()


def test_the_broker_lost_gives_one_pipeline_alarm_and_holds_the_stale_ones(redis_server, tmp_path):
    from vitalstream.stream.embedded.services import Mosquitto

    with Mosquitto(tmp_path / "mq") as broker:
        settings = settings_for(broker.url, redis_server.url, "http://127.0.0.1:9",
                                tmp_path / "spool", broker_lost_after_s=2.0)
        settings = dataclasses.replace(settings, rules_path=_fast_policy(tmp_path))
        prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
        r = redis.Redis.from_url(redis_server.url)
        with PipelineRun(settings, idle_stop_s=None) as run:
            pub = _Publisher(broker.url, f"pub-{prefix}")
            for p in ("bl-1", "bl-2"):
                pub.send(f"vitalstream/{p}/json", json.dumps(
                    {"device": p, "readings": [{"signal": "heart_rate", "value": 70,
                                                "t_ns": time.time_ns()}]}).encode())
            pub.close()
            time.sleep(1.0)
            broker.kill()
            lost = _wait(lambda: [m for m in _outreach(r, f"{prefix}:outreach")
                                  if m["rule"] == "broker_lost"], "broker_lost")
            # stale T 8 s after the readings: both patients' alarms are held, none sent
            _wait(lambda: len([1 for _, f in r.xrange(f"{prefix}:audit")
                               if f[b"action"] == b"suppressed"]) == 2, "two held stale alarms")
            broker.start()
            _wait(lambda: [m for m in _outreach(r, f"{prefix}:outreach")
                           if m["rule"] == "broker_lost" and m["reason"] == "recovered"],
                  "the broker back", timeout_s=40)
            time.sleep(3.5)  # past the 2 s release grace: both still silent, both raised
            sent = _validated(_outreach(r, f"{prefix}:outreach"))
            run.pipeline.request_stop()
    assert [(m["patient"], m["reason"], m["priority"], m.get("covers")) for m in lost] == [
        ("pipeline", "raised", "high", ["*"])]
    got = sorted((m["patient"], m["rule"], m["reason"]) for m in sent)
    assert got == [("bl-1", "no_data", "raised"), ("bl-2", "no_data", "raised"),
                   ("pipeline", "broker_lost", "raised"), ("pipeline", "broker_lost", "recovered")], got


def test_a_day_of_backfilled_bradycardia_pages_nobody_and_sends_one_historical_summary(
        mosquitto, redis_server, victoria, tmp_path):
    """1,440 minutes of yesterday (HR 36 /min for six hours: a bradycardia if it were live)
    uploaded in one go, then live readings: no alarm, one summary, and every minute window
    of yesterday stored with the batch values."""
    settings = settings_for(mosquitto.url, redis_server.url, victoria.url, tmp_path / "spool")
    prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
    patient = f"bf-{prefix}"
    now = time.time_ns()
    start = now - now % (60 * NS) - 86_400 * NS - 3 * 3600 * NS  # minute-aligned, 27 h ago
    values = [36.0 if 360 <= i < 720 else 64.0 + i % 5 for i in range(1440)]
    r = redis.Redis.from_url(redis_server.url)
    pub = _Publisher(mosquitto.url, f"pub-{prefix}")
    try:
        # the back-fill ends (windows written, summary sent) 1.5 s after its last reading
        fast = dataclasses.replace(settings, pipeline=dataclasses.replace(
            settings.pipeline, backfill_idle_s=1.5))
        with PipelineRun(fast, idle_stop_s=None) as run:
            for k in range(0, 1440, 60):  # an hour of readings per message, as a phone syncs
                pub.send(f"vitalstream/{patient}/json", json.dumps(
                    {"device": patient, "readings": [
                        {"signal": "heart_rate", "value": values[i], "t_ns": start + i * 60 * NS}
                        for i in range(k, k + 60)]}).encode())
            for _ in range(3):
                pub.send(f"vitalstream/{patient}/json", json.dumps(
                    {"device": patient, "readings": [{"signal": "heart_rate", "value": 70,
                                                      "t_ns": time.time_ns()}]}).encode())
                time.sleep(0.3)
            summary = _wait(lambda: [m for m in _outreach(r, f"{prefix}:outreach")
                                     if m["patient"] == patient], "the back-fill summary")
            time.sleep(2.0)
            sent = _validated(_outreach(r, f"{prefix}:outreach"))
            run.pipeline.request_stop()
    finally:
        pub.close()
    assert [(m["rule"], m["reason"], m["priority"], m["historical"], m["value"], m["unit"])
            for m in sent if m["patient"] == patient] == [
        ("backfill", "backfill", "low", True, 1440.0, "{readings}")]
    assert "heart_rate 1440 (36-68 /min)" in summary[0]["explanation"]
    events = [{k.decode(): v.decode() for k, v in f.items()}
              for _, f in r.xrange(settings.redis.alerts_stream)]
    assert [e["rule"] for e in events if e["patient"] == patient] == ["backfill"]
    # the store: yesterday's minute means are the readings' own values (one per minute)
    def means():
        rows = victoria.export(f'vitals_1m_mean{{patient="{patient}",signal="heart_rate"}}')
        return {t * 10**6: v for row in rows for t, v in zip(row["timestamps"], row["values"])
                if t * 10**6 < now - 3600 * NS}
    got = _wait(lambda: means() if len(means()) == 1440 else None, "1440 stored windows")
    assert got == {start + i * 60 * NS: values[i] for i in range(1440)}
