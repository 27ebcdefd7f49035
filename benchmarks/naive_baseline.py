"""The naive baseline of shared notes/performance.md, as one would write it first.

One paho ``on_message`` callback does everything: ``json.loads`` the SenML pack,
resolve base fields into dicts, drop duplicates (a set of (device, signal, time)
keys kept for 600 s), build an influxdb-client ``Point`` per reading and hand it
to the client's reactive batching writer (batch 1000, flush 1 s), update
1-minute count/mean/min/max windows in dicts, and check one threshold per
signal, ``XADD``-ing each fired/resolved alert synchronously. paho acknowledges
a QoS 1 message when the callback returns, not when its points are written:
like the peers, a crash loses up to a second of data.

Same stores and layout as vitalstream (``vitals`` raw points, ``vitals_1m``
aggregates, ``vitalstream:alerts`` stream with ``event_ns`` and ``state``
fields), so pipeline_bench.py counts and times both the same way.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import redis
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import WriteOptions
from paho.mqtt.enums import CallbackAPIVersion

NS = 1_000_000_000
WINDOW_NS = 60 * NS
LATENESS_NS = 10 * NS
DEDUP_HORIZON_NS = 600 * NS
# signal -> (op, threshold), the benchmark rules (for_s 0)
Thresholds = dict[str, tuple[str, float]]


@dataclass
class NaiveStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    aggregates: int = 0
    alerts: int = 0
    errors: int = 0


@dataclass
class NaiveState:
    seen: set = field(default_factory=set)
    seen_order: deque = field(default_factory=deque)  # (event_ns, key) for expiry
    windows: dict = field(default_factory=dict)  # (device, signal, start) -> [n, sum, min, max]
    firing: dict = field(default_factory=dict)  # (device, signal) -> bool
    max_event_ns: int = 0


class NaiveLoop:
    def __init__(self, mqtt_url: str, redis_url: str, influx_url: str, thresholds: Thresholds,
                 *, client_id: str = "naive-baseline", topic: str = "vitalstream/+/+",
                 bucket: str = "vitals", org: str = "vitalstream",
                 alerts_stream: str = "vitalstream:alerts") -> None:
        self.thresholds = thresholds
        self.stats = NaiveStats()
        self.state = NaiveState()
        self.bucket, self.org, self.alerts_stream = bucket, org, alerts_stream
        self.redis = redis.Redis.from_url(redis_url)
        self.influx = InfluxDBClient(url=influx_url, token="", org=org)
        self.write_api = self.influx.write_api(write_options=WriteOptions(batch_size=1000,
                                                                          flush_interval=1000))
        u = urlparse(mqtt_url)
        self.host, self.port, self.topic = u.hostname or "127.0.0.1", u.port or 1883, topic
        self.last_message = time.monotonic()
        self.connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.on_connect = lambda cl, ud, fl, rc, pr: (cl.subscribe(topic, qos=1), self.connected.set())
        c.on_message = self.on_message
        self.client = c

    def on_message(self, client, userdata, msg) -> None:
        self.last_message = time.monotonic()
        st = self.stats
        st.messages += 1
        try:
            pack = json.loads(msg.payload)
        except ValueError:
            st.errors += 1
            return
        bn, bt = "", 0.0
        for rec in pack:
            bn = rec.get("bn", bn)
            bt = rec.get("bt", bt)
            device, _, signal = (bn + rec["n"]).rpartition(":")
            t_ns = round((bt + rec.get("t", 0.0)) * 1e6) * 1000
            self.reading(device, signal, float(rec["v"]), t_ns)

    def reading(self, device: str, signal: str, value: float, t_ns: int) -> None:
        s, st = self.state, self.stats
        key = (device, signal, t_ns)
        if key in s.seen:
            st.duplicates += 1
            return
        s.seen.add(key)
        s.seen_order.append((t_ns, key))
        st.readings += 1
        self.write_api.write(self.bucket, self.org, Point("vitals").tag("patient", device)
                             .tag("device", device).tag("signal", signal).field("value", value)
                             .time(t_ns, WritePrecision.NS))
        start = t_ns - t_ns % WINDOW_NS
        w = s.windows.get((device, signal, start))
        if w is None:
            s.windows[(device, signal, start)] = [1, value, value, value]
        else:
            w[0] += 1
            w[1] += value
            w[2] = min(w[2], value)
            w[3] = max(w[3], value)
        if t_ns > s.max_event_ns:
            s.max_event_ns = t_ns
            self.close_windows(t_ns - WINDOW_NS - LATENESS_NS)
            while s.seen_order and s.seen_order[0][0] < t_ns - DEDUP_HORIZON_NS:
                s.seen.discard(s.seen_order.popleft()[1])
        self.check(device, signal, value, t_ns)

    def check(self, device: str, signal: str, value: float, t_ns: int) -> None:
        rule = self.thresholds.get(signal)
        if rule is None:
            return
        op, thr = rule
        crossing = value > thr if op == ">" else value >= thr if op == ">=" else (
            value < thr if op == "<" else value <= thr)
        was = self.state.firing.get((device, signal), False)
        if crossing == was:
            return
        self.state.firing[(device, signal)] = crossing
        self.redis.xadd(self.alerts_stream, {
            "patient": device, "rule": f"bench_{signal}", "signal": signal,
            "state": "firing" if crossing else "resolved", "value": repr(value),
            "threshold": repr(thr), "event_ns": str(t_ns)})
        self.stats.alerts += 1

    def close_windows(self, horizon_ns: int, all_: bool = False) -> None:
        due = [k for k in self.state.windows if all_ or k[2] <= horizon_ns]
        for k in due:
            n, total, lo, hi = self.state.windows.pop(k)
            device, signal, start = k
            self.write_api.write(self.bucket, self.org, Point("vitals_1m").tag("patient", device)
                                 .tag("device", device).tag("signal", signal)
                                 .field("count", n).field("min", lo).field("max", hi)
                                 .field("mean", total / n).time(start, WritePrecision.NS))
            self.stats.aggregates += 1

    def run(self, idle_stop_s: float) -> NaiveStats:
        """Consume until ``idle_stop_s`` without a message (after a first one), then close
        windows and flush."""
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.connected.wait(10)
        while self.stats.messages == 0 or time.monotonic() - self.last_message < idle_stop_s:
            time.sleep(0.2)
        self.client.disconnect()
        self.client.loop_stop()
        self.close_windows(0, all_=True)
        self.write_api.close()  # flushes the last batch
        self.influx.close()
        return self.stats
