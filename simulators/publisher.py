"""Publish a scenario to an MQTT broker (paho-mqtt 2.x), paced, with a progress bar.

Pacing, in order of precedence:

- ``realtime=True``: each message goes out when the wall clock reaches
  ``scenario.start_ns + publish_offset_s`` (build the scenario with
  ``start_ns`` = now and ``time_scale=1``: event times then track the wall clock);
- ``rate=R``: a fixed R messages per second, in scenario order (``rate=math.inf``
  or 0: as fast as the broker acks);
- otherwise the scenario's own offsets, which ``time_scale`` already compressed
  (600 s of event time in 10 s with ``time_scale=60``). Event times in the
  payloads never change.

The offsets count from ``anchor_ns`` (a wall-clock time) when it is given, else
from the moment publishing starts. ``vitalstream simulate`` anchors them to the
moment the command started, so building the scenario (seconds for hundreds of
patients) does not shift device times against the wall clock.

Where the simulated period sits on the wall clock (``place``): a pipeline
replaces a device time further than ``max_clock_skew_s`` (300 s) from the
receive time by the receive time, which also defeats dedup of re-sent messages.
With a time scale k, event time runs k times faster than the wall clock, so
device times cannot follow it for the whole run: the gap changes by
D * (1 - 1/k) over D event seconds. By default the period is centred on the
publishing interval: device time equals wall time halfway through publishing,
and no device time is further than D * (1 - 1/k) / 2 from the moment it is sent
(600 s at x10: 270 s, starting 270 s before the command). At k = 1 (and with
``--realtime``) that is simply "starts now". ``--start`` fixes the start instead
(reproducible runs; the pipeline needs ``max_clock_skew_s: null`` for a start far
from now).

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
from vitalstream.operators.normalise import Normaliser
from vitalstream.simulators.scenario import CODECS, OutMessage, Scenario
from vitalstream.timeutil import parse_iso8601_ns

NS = 1_000_000_000
MS = 1_000_000
# The pipeline's default max_clock_skew_s: the warning below is about that setting.
PIPELINE_SKEW_S = (Normaliser().max_clock_skew_ns or 0) / NS


class PublishError(VitalstreamError):
    """The broker could not be reached or refused messages for good."""


@dataclass(frozen=True, slots=True)
class PublishStats:
    sent: int
    acked: int
    retries: int  # publish calls refused (queue full / no connection) and retried
    elapsed_s: float
    rate_per_s: float  # acked messages per second of elapsed wall time


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a run's simulated period sits on the wall clock."""

    start_ns: int  # event time of scenario offset 0 (device clocks add their own error)
    anchor_ns: int | None  # wall time at which publish offset 0 is due; None: when publishing starts
    max_gap_s: float  # largest |device time - wall time| at sending, before late sends

    def warning(self, late_s: float = 0.0, skew_s: float = PIPELINE_SKEW_S) -> str | None:
        """A sentence for stderr when a pipeline with ``skew_s`` would correct device times."""
        if self.max_gap_s + late_s <= skew_s:
            return None
        return (f"device times will be up to {self.max_gap_s + late_s:.0f} s from the wall clock "
                f"when received: a pipeline with max_clock_skew_s={skew_s:g} replaces those beyond "
                f"{skew_s:g} s by the receive time (and its dedup misses their re-sends); use a "
                f"shorter --duration or a smaller --time-scale, or max_clock_skew_s: null")


def place(duration_s: float, wall_s: float, now_ns: int) -> Placement:
    """Centre ``duration_s`` of event time, published over ``wall_s``, on now .. now + wall_s.

    Device time equals wall time halfway through publishing; the largest gap is
    (duration - wall) / 2, half of what starting (or ending) at now would give.

    >>> p = place(600.0, 60.0, 1_800_000_000 * NS)
    >>> (1_800_000_000 * NS - p.start_ns) / NS, p.max_gap_s
    (270.0, 270.0)
    >>> place(600.0, 600.0, 1_800_000_000 * NS).start_ns == 1_800_000_000 * NS
    True
    """
    half_s = max(0.0, duration_s - wall_s) / 2
    start_ns = (now_ns - round(half_s * NS)) // MS * MS  # device clocks tick in ms
    return Placement(start_ns, now_ns, half_s)


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
            stream: IO[str] | None = None, anchor_ns: int | None = None) -> PublishStats:
    """Publish every message of ``scenario`` in order; return once all are acknowledged.

    ``anchor_ns``: wall time (ns since the epoch) at which publish offset 0 is due
    (with ``realtime``, the default is the scenario's start); messages already due
    go out at once. None: offsets count from the moment publishing starts.
    """
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
        due = _schedule(scenario, msgs, rate, realtime, anchor_ns)
        sent, retries = _send_all(client, msgs, qos, due, connected,
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
              realtime: bool, anchor_ns: int | None = None) -> Iterable[float | None]:
    """Per message, the monotonic time it is due (None: now)."""
    now_mono = time.monotonic()
    if realtime and anchor_ns is None:
        anchor_ns = scenario.start_ns  # type: ignore[attr-defined]
    # Anchor to the wall clock once; then pace on the monotonic clock (immune to steps).
    t0 = now_mono if anchor_ns is None else now_mono - (time.time_ns() - anchor_ns) / NS
    if not realtime and rate is not None:
        if rate == 0 or math.isinf(rate):
            return (None for _ in msgs)
        return (t0 + i / rate for i in range(len(msgs)))
    return (t0 + m.publish_offset_s for m in msgs)


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


def _aware_start(text: str) -> int:
    try:
        return parse_iso8601_ns(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (e.g. 2026-11-25T10:00:00Z)") from None


SIMULATE_TIME_HELP = (
    "Device times: by default the simulated period is placed around now, so a pipeline "
    "keeps the device times (its max_clock_skew_s, 300 s, replaces any further from the "
    "receive time, and dedup then misses re-sends). Event time runs TIME_SCALE times faster "
    "than the wall clock, so the period is centred on the publishing interval: device time "
    "equals wall time halfway through, and no device time is further than "
    "DURATION * (1 - 1/TIME_SCALE) / 2 from the moment it is sent (600 s at x10: 270 s, "
    "the period starting 270 s before the command). A warning says when that exceeds 300 s. "
    "--start fixes the start instead, for reproducible runs.")


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vitalstream simulate`` (the CLI wires the sub-command)."""
    if parser.epilog is None:
        parser.epilog = SIMULATE_TIME_HELP
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--duration", type=float, default=600.0, help="event-time seconds")
    parser.add_argument("--rate", type=float, default=None,
                        help="messages/s (default: event-time pacing; 0: as fast as acked)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--codec", choices=CODECS, default="json")
    parser.add_argument("--ground-truth", dest="ground_truth", default=None, help="JSON-lines file")
    parser.add_argument("--mqtt-url", dest="mqtt_url", default="mqtt://localhost:1883")
    parser.add_argument("--time-scale", dest="time_scale", type=float, default=1.0,
                        help="event seconds per wall second (default 1)")
    parser.add_argument("--start", type=_aware_start, default=None, metavar="ISO8601",
                        help="event time of the period's start, with a zone (e.g. "
                             "2026-11-25T10:00:00Z); default: placed around now (see below)")
    parser.add_argument("--realtime", action="store_true",
                        help="time scale 1, the period starting now")
    parser.add_argument("--readings-per-message", dest="readings_per_message", type=int, default=3)
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    from vitalstream.simulators.ble_gateway import add_ble_arguments

    add_ble_arguments(parser)


def placement_for(duration_s: float, time_scale: float, rate: float | None, n_messages: int | None,
                  start_ns: int | None, now_ns: int) -> Placement:
    """The placement ``simulate`` uses: ``start_ns`` if given, else centred on the publishing."""
    if rate is None:
        wall_s = duration_s / time_scale
    elif rate == 0 or math.isinf(rate):
        wall_s = 0.0
    else:
        wall_s = (n_messages or 0) / rate
    if start_ns is None:
        return place(duration_s, wall_s, now_ns)
    # A fixed start, paced from when publishing starts (about now): the gap runs from
    # start - now at the first message to that plus (duration - wall) at the last.
    first_s = (start_ns - now_ns) / NS
    last_s = first_s + max(0.0, duration_s - wall_s)
    return Placement(start_ns, None, max(abs(first_s), abs(last_s)))


def simulate(*, patients: int, duration: float, seed: int, codec: str, mqtt_url: str,
             rate: float | None = None, ground_truth: str | None = None, time_scale: float = 1.0,
             realtime: bool = False, readings_per_message: int = 3, qos: int = 1,
             progress: bool = True, start_ns: int | None = None, now_ns: int | None = None,
             warn: IO[str] | None = None) -> PublishStats:
    """Build a scenario, write its ground truth first (readers may start at once), publish it.

    ``start_ns`` None places the period around ``now_ns`` (default: the system
    clock now) as ``place`` says; a given ``start_ns`` is used as is.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    if realtime:
        if start_ns is not None:
            raise PublishError("simulate", None, "bad_option", "--realtime starts now: drop --start")
        time_scale, rate = 1.0, None
    sc, where = _placed(patients, duration, seed, codec, time_scale, readings_per_message,
                        rate, start_ns, now_ns)
    note = where.warning(sc.faults.late_max_s / time_scale + 2.0)  # + late sends, device clocks
    if note is not None:
        print(f"vitalstream simulate: warning: {note}", file=warn or sys.stderr)
    if ground_truth:
        sc.write_ground_truth(ground_truth)
    return publish(sc, mqtt_url, rate=rate, realtime=realtime, progress=progress, qos=qos,
                   anchor_ns=where.anchor_ns)


def _placed(patients: int, duration: float, seed: int, codec: str, time_scale: float,
            readings_per_message: int, rate: float | None, start_ns: int | None,
            now_ns: int) -> tuple[Scenario, Placement]:
    def build(start: int) -> Scenario:
        return Scenario(patients=patients, duration_s=duration, seed=seed, codec=codec,
                        time_scale=time_scale, readings_per_message=readings_per_message,
                        start_ns=start)

    where = placement_for(duration, time_scale, rate, None, start_ns, now_ns)
    sc = build(where.start_ns)
    if start_ns is None and rate is not None and rate > 0 and not math.isinf(rate):
        # A fixed rate: how long publishing takes depends on the message count, known
        # only once built; build again at the start that count implies.
        where = placement_for(duration, time_scale, rate, len(sc.messages()), None, now_ns)
        sc = build(where.start_ns)
    return sc, where


def simulate_main(args: argparse.Namespace) -> int:
    """Entry point for ``vitalstream simulate``: prints the stats as one JSON line."""
    # "Now" is when the command started: building hundreds of patients takes seconds,
    # and publishing is anchored to this instant, not to when building ends.
    now_ns = time.time_ns()
    if getattr(args, "via", "direct") == "ble-gateway":
        from vitalstream.simulators.ble_gateway import simulate_ble_main

        return simulate_ble_main(args, now_ns=now_ns)
    stats = simulate(patients=args.patients, duration=args.duration, seed=args.seed, codec=args.codec,
                     mqtt_url=args.mqtt_url, rate=args.rate, ground_truth=args.ground_truth,
                     time_scale=getattr(args, "time_scale", 1.0),
                     realtime=getattr(args, "realtime", False),
                     readings_per_message=getattr(args, "readings_per_message", 3),
                     qos=getattr(args, "qos", 1), progress=getattr(args, "progress", True),
                     start_ns=getattr(args, "start", None), now_ns=now_ns)
    print(json.dumps(asdict(stats)))
    return 0
