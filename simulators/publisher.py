"""Publish a scenario to an MQTT broker (paho-mqtt 2.x), paced, with a progress bar.

Pacing, in order of precedence:

- ``realtime=True``: each message goes out when the wall clock reaches
  ``scenario.start_ns + publish_offset_s`` (build the scenario with
  ``start_ns`` = now and ``time_scale=1``: event times then track the wall clock);
- ``rate=R``: a fixed R messages per second, in scenario order (``rate=math.inf``
  or 0: as fast as the broker acks);
- otherwise the scenario's own offsets from the moment publishing starts, which
  ``time_scale`` already compressed (600 s of event time in 10 s with
  ``time_scale=60``). Event times in the payloads never change.

paho queues QoS 1 messages beyond ``max_inflight`` itself; past ``max_queued`` it
returns ``MQTT_ERR_QUEUE_SIZE`` (also when all 65,535 packet ids are in use).
Every rc is checked: a refused message is retried after a short back-off, never
dropped. ``publish`` returns once every message is acknowledged (PUBACK for QoS 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from vitalstream.connectors.mqtt import parse_mqtt_url
from vitalstream.errors import VitalstreamError
from vitalstream.simulators.scenario import CODECS, OutMessage, Scenario


class PublishError(VitalstreamError):
    """The broker could not be reached or refused messages for good."""


@dataclass(frozen=True, slots=True)
class PublishStats:
    sent: int
    acked: int
    retries: int  # publish calls refused (queue full / no connection) and retried
    elapsed_s: float
    rate_per_s: float  # acked messages per second of elapsed wall time


class _Progress:
    """A one-line bar on a stream, redrawn at most 5 times per second."""

    def __init__(self, total: int, stream: IO[str] | None) -> None:
        self.total, self.stream, self._last = total, stream, 0.0

    def update(self, sent: int, acked: int, elapsed_s: float, force: bool = False) -> None:
        now = time.monotonic()
        if self.stream is None or (not force and now - self._last < 0.2):
            return
        self._last = now
        width = 30
        done = int(width * sent / self.total) if self.total else width
        rate = acked / elapsed_s if elapsed_s > 0 else 0.0
        self.stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {sent}/{self.total} sent "
                          f"{acked} acked {rate:,.0f} msg/s")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def publish(scenario: Scenario | Sequence[OutMessage], mqtt_url: str, *, rate: float | None = None,
            realtime: bool = False, progress: bool = True, qos: int = 1,
            client_id: str | None = None, max_inflight: int = 1000, max_queued: int = 20_000,
            connect_timeout_s: float = 10.0, ack_timeout_s: float = 60.0,
            stream: IO[str] | None = None) -> PublishStats:
    """Publish every message of ``scenario`` in order; return once all are acknowledged."""
    msgs: Sequence[OutMessage] = scenario.messages() if isinstance(scenario, Scenario) else scenario
    if realtime and not isinstance(scenario, Scenario):
        raise PublishError("publish", None, "bad_option", "realtime needs a Scenario (its start_ns)")
    if realtime and scenario.time_scale != 1.0:  # type: ignore[union-attr]
        raise PublishError("publish", None, "bad_option", "realtime needs time_scale=1")
    addr = parse_mqtt_url(mqtt_url)
    lock = threading.Lock()
    acked = [0]
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        else:
            connected.set()

    def on_disconnect(client, userdata, flags, reason_code, properties) -> None:
        connected.clear()

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        with lock:
            acked[0] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"vitalstream-sim-{os.getpid()}-{time.monotonic_ns()}",
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.on_connect, client.on_disconnect, client.on_publish = on_connect, on_disconnect, on_publish
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(max_queued)
    if addr.username is not None:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set()
    try:
        client.connect(addr.host, addr.port, keepalive=30)
    except OSError as exc:
        raise PublishError("publish", None, "connect_failed", f"{addr.host}:{addr.port}: {exc}") from exc
    client.loop_start()
    bar = _Progress(len(msgs), (stream or sys.stderr) if progress else None)
    try:
        if not connected.wait(connect_timeout_s):
            raise PublishError("publish", None, "connect_failed",
                               f"{addr.host}:{addr.port}: {refused[0] if refused else 'no CONNACK'}")
        t0 = time.monotonic()
        sent, retries = _send_all(client, msgs, qos, _schedule(scenario, msgs, rate, realtime), connected,
                                  lambda s: bar.update(s, acked[0], time.monotonic() - t0))
        deadline = time.monotonic() + ack_timeout_s
        while acked[0] < sent:
            if time.monotonic() > deadline:
                raise PublishError("publish", None, "ack_timeout",
                                   f"{sent - acked[0]} of {sent} messages unacknowledged")
            bar.update(sent, acked[0], time.monotonic() - t0)
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        bar.update(sent, acked[0], elapsed, force=True)
    finally:
        bar.close()
        client.disconnect()
        client.loop_stop()
    return PublishStats(sent, acked[0], retries, elapsed, acked[0] / elapsed if elapsed > 0 else math.inf)


def _schedule(scenario: object, msgs: Sequence[OutMessage], rate: float | None,
              realtime: bool) -> Iterable[float | None]:
    """Per message, the monotonic time it is due (None: now)."""
    now_mono = time.monotonic()
    if realtime:
        # Anchor event time to the wall clock once; then pace on the monotonic clock.
        lag_s = (time.time_ns() - scenario.start_ns) / 1e9  # type: ignore[attr-defined]
        return (now_mono + m.publish_offset_s - lag_s for m in msgs)
    if rate is not None:
        if rate == 0 or math.isinf(rate):
            return (None for _ in msgs)
        return (now_mono + i / rate for i in range(len(msgs)))
    return (now_mono + m.publish_offset_s for m in msgs)


def _send_all(client: mqtt.Client, msgs: Sequence[OutMessage], qos: int, due: Iterable[float | None],
              connected: threading.Event, tick) -> tuple[int, int]:
    sent = retries = 0
    backoff_s = 0.001
    for m, at in zip(msgs, due):
        if at is not None:
            while (wait := at - time.monotonic()) > 0:
                time.sleep(min(wait, 0.05))
                tick(sent)
        while True:
            rc = client.publish(m.topic, m.payload, qos=qos).rc
            if rc == mqtt.MQTT_ERR_SUCCESS or (rc == mqtt.MQTT_ERR_NO_CONN and qos > 0):
                # With QoS > 0 paho keeps a message published while disconnected and
                # sends it on reconnect, so it is not lost.
                break
            if rc not in (mqtt.MQTT_ERR_QUEUE_SIZE, mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_AGAIN):
                raise PublishError("publish", None, "publish_failed", mqtt.error_string(rc))
            retries += 1
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 0.1)
            tick(sent)
        backoff_s = 0.001
        sent += 1
        if sent % 256 == 0:
            tick(sent)
    return sent, retries


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vitalstream simulate`` (the CLI wires the sub-command)."""
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--duration", type=float, default=600.0, help="event-time seconds")
    parser.add_argument("--rate", type=float, default=None, help="messages/s (default: event-time pacing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--codec", choices=CODECS, default="json")
    parser.add_argument("--ground-truth", dest="ground_truth", default=None, help="JSON-lines file")
    parser.add_argument("--mqtt-url", dest="mqtt_url", default="mqtt://localhost:1883")
    parser.add_argument("--time-scale", dest="time_scale", type=float, default=1.0)
    parser.add_argument("--realtime", action="store_true")
    parser.add_argument("--readings-per-message", dest="readings_per_message", type=int, default=3)
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    from vitalstream.simulators.ble_gateway import add_ble_arguments

    add_ble_arguments(parser)


def simulate(*, patients: int, duration: float, seed: int, codec: str, mqtt_url: str,
             rate: float | None = None, ground_truth: str | None = None, time_scale: float = 1.0,
             realtime: bool = False, readings_per_message: int = 3, qos: int = 1,
             progress: bool = True) -> PublishStats:
    """Build a scenario, write its ground truth first (readers may start at once), publish it."""
    kw = {}
    if realtime:
        kw["start_ns"] = time.time_ns() // 1_000_000 * 1_000_000
        time_scale = 1.0
    sc = Scenario(patients=patients, duration_s=duration, seed=seed, codec=codec,
                  time_scale=time_scale, readings_per_message=readings_per_message, **kw)
    if ground_truth:
        sc.write_ground_truth(ground_truth)
    return publish(sc, mqtt_url, rate=rate, realtime=realtime, progress=progress, qos=qos)


def simulate_main(args: argparse.Namespace) -> int:
    """Entry point for ``vitalstream simulate``: prints the stats as one JSON line."""
    if getattr(args, "via", "direct") == "ble-gateway":
        from vitalstream.simulators.ble_gateway import simulate_ble_main

        return simulate_ble_main(args)
    stats = simulate(patients=args.patients, duration=args.duration, seed=args.seed, codec=args.codec,
                     mqtt_url=args.mqtt_url, rate=args.rate, ground_truth=args.ground_truth,
                     time_scale=getattr(args, "time_scale", 1.0),
                     realtime=getattr(args, "realtime", False),
                     readings_per_message=getattr(args, "readings_per_message", 3),
                     qos=getattr(args, "qos", 1), progress=getattr(args, "progress", True))
    print(json.dumps(asdict(stats)))
    return 0
