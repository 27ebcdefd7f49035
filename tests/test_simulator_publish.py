"""The publisher against a real mosquitto: every message arrives, byte for byte."""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from vitalstream.simulators.publisher import (
    add_simulate_arguments,
    publish,
    simulate_main,
)
from vitalstream.simulators.scenario import Scenario


class Collector:
    """A QoS 1 subscriber that records every (topic, payload) it is delivered."""

    def __init__(self, url: str, pattern: str) -> None:
        host, port = url.split("://")[1].rsplit(":", 1)
        self.got: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(pattern, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    def wait_for(self, n: int, timeout_s: float = 20.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.got) < n:
            time.sleep(0.02)
        time.sleep(0.1)  # anything beyond n would be a bug too: give it a moment to show
        return list(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    return f"simtest-{uuid.uuid4().hex[:8]}"


def test_every_message_is_delivered_once_with_identical_bytes(mosquitto, prefix):
    sc = Scenario(patients=20, duration_s=120, seed=5, codec="mixed", topic_prefix=prefix)
    expected = Counter((m.topic, m.payload) for m in sc.messages())
    sub = Collector(mosquitto.url, f"{prefix}/#")
    try:
        stats = publish(sc, mosquitto.url, rate=0, progress=False)
        got = sub.wait_for(len(sc.messages()))
    finally:
        sub.close()
    assert stats.sent == stats.acked == len(sc.messages())
    assert Counter(got) == expected


def test_full_queue_is_retried_not_dropped(mosquitto, prefix):
    # A queue of 5 with 2 in flight: paho refuses with MQTT_ERR_QUEUE_SIZE most of the time.
    sc = Scenario(patients=10, duration_s=60, seed=9, codec="json", topic_prefix=prefix)
    sub = Collector(mosquitto.url, f"{prefix}/#")
    try:
        stats = publish(sc, mosquitto.url, rate=0, progress=False, max_inflight=2, max_queued=5)
        got = sub.wait_for(len(sc.messages()))
    finally:
        sub.close()
    assert stats.retries > 0
    assert Counter(got) == Counter((m.topic, m.payload) for m in sc.messages())


def test_time_scale_pacing_takes_the_compressed_duration(mosquitto, prefix):
    # 30 s of event time at time_scale 30: the last message is due ~1 s after the first.
    sc = Scenario(patients=3, duration_s=30, seed=4, time_scale=30, topic_prefix=prefix)
    last_due = sc.messages()[-1].publish_offset_s
    assert 0.8 < last_due < 1.2
    stats = publish(sc, mosquitto.url, progress=False)
    assert stats.acked == len(sc.messages())
    assert stats.elapsed_s >= last_due


def test_simulate_main_writes_ground_truth_and_prints_stats(mosquitto, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    gt = tmp_path / "truth.jsonl"
    args = parser.parse_args(["--patients", "4", "--duration", "60", "--seed", "3", "--rate", "0",
                              "--codec", "senml", "--ground-truth", str(gt), "--mqtt-url", mosquitto.url,
                              "--no-progress"])
    assert simulate_main(args) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lines = [json.loads(x) for x in gt.read_text().splitlines()]
    assert lines[0]["type"] == "scenario" and lines[0]["patients"] == 4 and lines[0]["codec"] == "senml"
    assert sum(1 for d in lines if d["type"] == "patient") == 4
    assert stats["sent"] == stats["acked"] == lines[-1]["messages"]
