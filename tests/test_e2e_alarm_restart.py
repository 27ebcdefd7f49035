"""End to end: ``vitalstream run`` is killed (SIGKILL) in the middle of a clinical episode and
started again with the same config and state directory. No duplicate alert and no lost alert.

Real mosquitto, Redis and VictoriaMetrics (the session fixtures); the pipeline is a real
``python3 -m vitalstream run --config site.yaml`` subprocess with durable state (``state:
{dir: ...}``, README "Stop and restart") and the in-process alarm lifecycle service (the
default). One patient's heart rate, QoS 1, device times an hour ago (``max_clock_skew_s:
null``, as tests/test_alarm_service.py does): 20 readings at 60 /min, then 20 hovering at
39-43 /min (the packaged ``bradycardia``: <= 40 for 30 % of 10 min, clear 45), then 5 at
60 /min, which end it. The process is killed at one of three points of the episode:

- ``after_raise``: as soon as the outreach stream has the 'raised' notice;
- ``mid_episode``: after five more readings of the episode were processed;
- ``before_end``: after every reading of the episode but the last was processed.

While it is down, the rest of the episode is published (the broker's persistent session
holds it); after the restart, the readings that end it. Then a 'recovered' notice (high
priority latches), ``vitalstream alerts ack`` and a 'resolved' notice.

Each point is run twice:

- ``snapshotted``: the kill comes once a state snapshot (``snapshot_interval_s: 0.5``)
  was committed after the kill point (the test polls the recovery store for it);
- ``unsnapshotted``: the kill comes before the next snapshot (``snapshot_interval_s:
  3600`` makes that certain; with the default 5 s it is so for any crash within 5 s of
  the readings). README ("Known limit") says only that window aggregates are then short;
  for the alarms it is a duplicate page or a lost recovery: xfail (strict), see DEFECT.

Expected values come from the input and the packaged rule (``_expected_episode``), never
from the program's output: the alert id is ``model.alert_id(patient, rule, start)``.

``test_a_message_stored_but_not_acknowledged_when_killed_is_stored_once`` makes the other
window of a kill deterministic (the store confirmed a write, the acks were not yet sent:
a proxy holds the store's answer) and checks "every reading stored exactly once" across
it: xfail (strict), see STORED_TWICE.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import redis
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vitalstream.connectors.mqtt import parse_mqtt_url
from vitalstream.model import alert_id
from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import OutMessage
from vitalstream.sinks.alarm_state import RedisAlarmState, outreach_schema
from vitalstream.stream.cli import main
from vitalstream.stream.embedded import free_port
from vitalstream.testing import metric as _metric

NS = 1_000_000_000
MIN_NS = 60 * NS
CLI = [sys.executable, "-m", "vitalstream"]
RULE = "bradycardia"

BASELINE = [60.0] * 20
HOVER = [39.0, 42.0, 43.0, 40.0, 42.0, 39.0, 43.0, 42.0, 40.0, 41.0,
         40.0, 42.0, 39.0, 43.0, 41.0, 40.0, 42.0, 39.0, 41.0, 40.0]
RECOVERY = [60.0] * 5
VALUES = BASELINE + HOVER + RECOVERY
EPISODE_END = len(BASELINE) + len(HOVER)  # first index of the readings that end it
FIRST_BATCH = 30  # published before any kill: the raise must come from these
# kill point -> readings processed before the kill (the rest of the episode is
# published while the pipeline is down)
KILL_AFTER = {"after_raise": FIRST_BATCH, "mid_episode": 35, "before_end": EPISODE_END - 1}

DEFECT = (
    "rule state lost by a kill -9 between two snapshots: stage A acks each MQTT message as "
    "soon as its raw readings are stored (stream/store.py:144-146 OutcomeWriter.write, "
    "stream/app.py:183 ack=token()), independent of bytewax's snapshot epochs (stream/app.py:"
    "216-230 _recovery, epoch_interval=snapshot_interval_s), so readings the patients step "
    "processed after the last snapshot are neither in the resumed RuleState nor redelivered. "
    "The resumed bradycardia rule then re-fires under a new alert_id (core/model.py:131, "
    "episode start taken from post-restart readings: a second 'raised'), or never sees the "
    "end of an episode it has no record of (no 'resolved' event, the first alarm is never "
    "'recovered'). README 'Known limit' admits only short window aggregates")


# -- the input and what it must give --------------------------------------------------

def _rule() -> dict:
    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text())
    (rule,) = [r for r in doc["rules"] if r["name"] == RULE]
    return rule


@dataclass(frozen=True)
class Episode:
    fire: int  # index of the reading that fires it
    start_ns: int  # episode start (first crossing time in the window)
    end: int  # index of the reading that ends it


def _expected_episode(times: list[int], values: list[float]) -> Episode:
    """The packaged rule applied to the input by its documented definition (README,
    "fraction"): crossing (<= threshold) for at least ``min`` of the last ``within_s``,
    each crossing reading counting until the next one, at most ``hold_s``; the episode
    starts at the first crossing time inside that window and ends at the first reading
    back past ``clear``. It opens only on a reading that itself crosses."""
    rule = _rule()
    f = rule["fraction"]
    assert rule["op"] == "<=" and set(f) == {"min", "within_s", "hold_s"}, rule
    within, hold = f["within_s"] * NS, f["hold_s"] * NS
    crossing = [v <= rule["threshold"] for v in values]
    for k in range(len(values)):
        window_start = times[k] - within
        on, first = 0, None
        for i in range(k):
            if crossing[i]:
                lo, hi = max(times[i], window_start), min(times[i + 1], times[i] + hold)
                if hi > lo:
                    on += hi - lo
                    first = lo if first is None else first
        if crossing[k] and on >= f["min"] * within:
            end = next(j for j in range(k + 1, len(values)) if values[j] > rule["clear"])
            # no re-alert (realert_s) and no end by staleness (end_after_s) in between
            assert times[end] - times[k] < min(rule["realert_s"], rule["end_after_s"]) * NS
            return Episode(k, first, end)
    raise AssertionError("the input never fires the rule")


# -- the pipeline as a user runs it ---------------------------------------------------

def _wait(cond, what: str, timeout_s: float = 20.0, proc: "_Run | None" = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        if proc is not None:
            proc.check_alive()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}"
                         + (f"\n{proc.log_tail()}" if proc is not None else ""))


def _poll(cond, timeout_s: float, proc: "_Run | None" = None):
    """``cond()`` once true, else its last value at the deadline (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got or time.monotonic() >= deadline:
            return got
        if proc is not None:
            proc.check_alive()
        time.sleep(0.05)


class AlarmContinuityBroken(AssertionError):
    """The episode's alarm did not come through the kill as one alarm (a second alert id,
    or no end): what the xfail of the unsnapshotted cases expects, and only that."""


def _same_alarm(ok: bool, what: str) -> None:
    if not ok:
        raise AlarmContinuityBroken(what)


class _Run:
    """``python3 -m vitalstream run --config site.yaml`` in ``site``, as a user starts it."""

    def __init__(self, site: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("VITALSTREAM_")}
        with open(log, "a") as err:
            self.proc = subprocess.Popen([*CLI, "run", "--config", "site.yaml",
                                          "--metrics-port", str(self.port)],
                                         cwd=site, env=env, stdout=err, stderr=err)

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"vitalstream run exited with {self.proc.returncode}\n{self.log_tail()}")

    def acked(self) -> int:
        return int(_metric(self.port, "vitalstream_messages_acked_total"))

    def wait_acked(self, n: int) -> None:
        _wait(lambda: self.acked() >= n, f"{n} messages acknowledged", proc=self)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        assert self.proc.returncode == 0, self.log_tail()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _open_session(mqtt_url: str, client_id: str, topic: str, expiry_s: int = 3600) -> None:
    """Create the pipeline's persistent session (same client id, QoS 1 subscription) before
    it first starts, so nothing published before its first connect is lost."""
    addr = parse_mqtt_url(mqtt_url)
    granted = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
    c.on_subscribe = lambda *_: granted.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    c.connect(addr.host, addr.port, clean_start=False, properties=props)
    c.loop_start()
    try:
        assert granted.wait(10), "broker did not grant the subscription"
    finally:
        c.disconnect()
        c.loop_stop()


def _commit_epoch(state_dir: Path) -> int:
    """The epoch bytewax would resume from (every snapshot before it is written)."""
    try:
        with closing(sqlite3.connect(f"file:{state_dir}/part-0.sqlite3?mode=ro", uri=True,
                                     timeout=1)) as c:
            row = c.execute("SELECT max(commit_epoch) FROM commits").fetchone()
    except sqlite3.Error:
        return -1
    return -1 if row is None or row[0] is None else int(row[0])


def _wait_snapshot(state_dir: Path, run: _Run) -> None:
    """Until an epoch that began after now is committed: what was processed so far is in
    the state a restart resumes."""
    # Epochs start at 1; what is processed now is in the epoch after the last committed
    # one (or the one after that, if it is closing): two commits later it is written.
    now = max(_commit_epoch(state_dir), 1)
    _wait(lambda: _commit_epoch(state_dir) >= now + 2, "a snapshot after the kill point", proc=run)


# -- what came out --------------------------------------------------------------------

def _alert_events(r: redis.Redis, stream: str, patient: str) -> list[dict]:
    out = []
    for _, f in r.xrange(stream):
        d = {k.decode(): v.decode() for k, v in f.items()}
        if d["patient"] == patient:
            out.append(d)
    return out


def _outreach(r: redis.Redis, stream: str, patient: str) -> list[dict]:
    """The patient's outreach messages, each validated against the published schema."""
    validator = jsonschema.Draft202012Validator(outreach_schema())
    out = []
    for _, f in r.xrange(stream):
        msg = json.loads(f[b"message"])
        validator.validate(msg)
        assert (msg["alert_id"], msg["reason"]) == (f[b"alert_id"].decode(), f[b"reason"].decode())
        if msg["patient"] == patient:
            out.append(msg)
    return out


@pytest.mark.parametrize("snapshot", [
    "snapshotted",
    pytest.param("unsnapshotted", marks=pytest.mark.xfail(
        strict=True, raises=AlarmContinuityBroken, reason=DEFECT)),
])
@pytest.mark.parametrize("kill_at", list(KILL_AFTER))
def test_killed_mid_episode_then_restarted_no_duplicate_and_no_lost_alert(
        mosquitto, redis_server, victoria, tmp_path, kill_at, snapshot):
    tag = f"e2e-kill-{uuid.uuid4().hex[:8]}"
    patient = device = f"p-{tag}"
    client_id = f"vs-{tag}"
    topic = f"vitalstream/{device}/+"
    prefix = tag
    state_dir = tmp_path / "state"
    site = tmp_path / "site"
    site.mkdir()
    interval = 0.5 if snapshot == "snapshotted" else 3600
    (site / "site.yaml").write_text(
        f"mqtt: {{url: '{mosquitto.url}', client_id: {client_id}, topic: '{topic}'}}\n"
        f"redis: {{url: '{redis_server.url}', alerts_stream: '{prefix}:alerts', "
        f"deadletter_stream: '{prefix}:deadletter', quarantine_stream: '{prefix}:quarantine'}}\n"
        f"influx: {{url: '{victoria.url}', spool_dir: '{tmp_path}/spool'}}\n"
        f"pipeline: {{max_clock_skew_s: null}}\n"
        f"state: {{dir: '{state_dir}', snapshot_interval_s: {interval}}}\n")
    r = redis.Redis.from_url(redis_server.url)
    alerts, outreach = f"{prefix}:alerts", f"{prefix}:outreach"

    t0 = (time.time_ns() - 3600 * NS) // 10**6 * 10**6  # whole ms: the store keeps ms
    times = [t0 + i * MIN_NS for i in range(len(VALUES))]
    msgs = [OutMessage(0.0, f"vitalstream/{device}/json", json.dumps(
        {"device": device, "readings": [{"signal": "heart_rate", "value": v, "unit": "/min",
                                         "t_ns": t}]}).encode())
            for t, v in zip(times, VALUES)]
    ep = _expected_episode(times, VALUES)
    assert ep.fire < FIRST_BATCH <= KILL_AFTER[kill_at] < EPISODE_END <= ep.end
    expected_id = alert_id(patient, RULE, ep.start_ns)
    kill_after = KILL_AFTER[kill_at]

    def send(lo: int, hi: int, phase: str) -> None:
        publish(msgs[lo:hi], mosquitto.url, progress=False, client_id=f"pub-{tag}-{phase}")

    _open_session(mosquitto.url, client_id, topic)
    log = tmp_path / "pipeline.log"
    runs: list[_Run] = []
    try:
        # 1. running: the baseline and the start of the episode, until it is raised
        run1 = _Run(site, log)
        runs.append(run1)
        send(0, FIRST_BATCH, "1")
        _wait(lambda: [m for m in _outreach(r, outreach, patient) if m["reason"] == "raised"],
              "the 'raised' notice", proc=run1)
        if kill_after > FIRST_BATCH:
            send(FIRST_BATCH, kill_after, "2")
        if snapshot == "snapshotted":
            run1.wait_acked(kill_after)
            _wait_snapshot(state_dir, run1)
        elif kill_after > FIRST_BATCH:
            run1.wait_acked(kill_after)
        # 2. kill -9 in mid-episode; the rest of the episode arrives while it is down
        run1.kill9()
        killed_ns = time.time_ns()
        send(kill_after, EPISODE_END, "down")
        # 3. the same command again: the held readings, then those that end the episode
        run2 = _Run(site, log)
        runs.append(run2)
        run2.wait_acked(EPISODE_END - kill_after)
        send(EPISODE_END, len(msgs), "end")
        run2.wait_acked(len(msgs) - kill_after)

        # The alerts stream: one episode, one id, fired once and resolved once.
        events = _poll(lambda: [e for e in _alert_events(r, alerts, patient)
                                if e["state"] == "resolved"] and _alert_events(r, alerts, patient),
                       timeout_s=10, proc=run2) or _alert_events(r, alerts, patient)
        got = [(e["alert_id"], e["state"], int(e["event_ns"])) for e in events]
        _same_alarm(got == [(expected_id, "firing", times[ep.fire]),
                            (expected_id, "resolved", times[ep.end])],
                    f"alert events {got}, expected one episode {expected_id}: firing at reading "
                    f"{ep.fire}, resolved at reading {ep.end}")
        assert {int(e["episode_start_ns"]) for e in events} == {ep.start_ns}
        assert float(events[0]["value"]) == VALUES[ep.fire]

        # The lifecycle: raised before the kill, recovered after the restart (latching)
        notices = _poll(lambda: [m for m in _outreach(r, outreach, patient)
                                 if m["reason"] == "recovered"] and _outreach(r, outreach, patient),
                        timeout_s=10, proc=run2) or _outreach(r, outreach, patient)
        pairs = [(m["alert_id"], m["reason"]) for m in notices]
        _same_alarm(pairs == [(expected_id, "raised"), (expected_id, "recovered")],
                    f"outreach notices {pairs}, expected {expected_id} raised then recovered")

        # The store: every reading published, exactly once (a second write of the same
        # point would be a second sample in VictoriaMetrics). Checked after the alarms: in
        # the unsnapshotted cases the kill follows the last acks within milliseconds, and a
        # message whose ack had not reached the broker is redelivered and stored again
        # (STORED_TWICE, test_a_message_stored_but_not_acknowledged_when_killed_is_stored_once).
        rows = victoria.export(f'vitals_value{{patient="{patient}",signal="heart_rate"}}')
        stored = Counter((t, v) for row in rows for t, v in zip(row["timestamps"], row["values"]))
        assert stored == Counter((t // 10**6, v) for t, v in zip(times, VALUES)), stored

        assert main(["alerts", "ack", expected_id, "--by", "nurse-7", "--reason", "at bedside",
                     "--config", str(site / "site.yaml")]) == 0
        _wait(lambda: [m for m in _outreach(r, outreach, patient) if m["reason"] == "resolved"],
              "the 'resolved' notice after the ack", timeout_s=10, proc=run2)
        run2.stop()
    finally:
        for run in runs:
            run.close()

    notices = _outreach(r, outreach, patient)
    assert [(m["alert_id"], m["rule"], m["priority"], m["reason"]) for m in notices] == [
        (expected_id, RULE, "high", "raised"), (expected_id, RULE, "high", "recovered"),
        (expected_id, RULE, "high", "resolved")], notices
    keys = Counter((m["alert_id"], m["reason"], m["event_ns"]) for m in notices)
    assert max(keys.values()) == 1, keys
    raised, recovered = notices[0], notices[1]
    # raised by the first process, recovered by the second (the service stamps a notice
    # with its own clock: the data's times are an hour old)
    assert raised["event_ns"] < killed_ns < recovered["event_ns"]
    assert (raised["signal"], raised["value"], raised["unit"], raised["threshold"]) == (
        "heart_rate", VALUES[ep.fire], "/min", float(_rule()["threshold"]))
    audit = [{k.decode(): v.decode() for k, v in f.items()} for _, f in r.xrange(f"{prefix}:audit")]
    assert [(a["alert_id"], a["who"], a["action"], a["reason"]) for a in audit] == [
        (expected_id, "nurse-7", "acknowledged", "at bedside")]
    assert RedisAlarmState(r, prefix).alarms(patient) == []  # nothing left open
    assert r.xpending(alerts, "vitalstream-lifecycle")["pending"] == 0  # every event applied

    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)


class _HoldingStore:
    """An HTTP proxy in front of VictoriaMetrics. The first write that carries raw readings
    (measurement ``vitals``) is stored, and then its answer is held back until ``close``:
    the pipeline dies between the store's confirmation and its MQTT acks, the window that
    README ("No silent loss") says redelivery plus stage A's dedup cover."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.held = threading.Event()
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             method=self.command, headers={
                                                 k: v for k, v in self.headers.items()
                                                 if k.lower() not in ("host", "content-length")})
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    status, data = err.code, err.read()
                raw = body is not None and any(
                    line.startswith(b"vitals,") for line in body.split(b"\n"))
                if raw and status < 300 and not proxy.held.is_set():
                    proxy.held.set()  # stored: now the answer never comes
                    proxy._release.wait()
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


class StoredTwice(AssertionError):
    """A reading is in the store more than once."""


STORED_TWICE = (
    "stage A's dedup does not survive a crash: the process's one LockedDedup (stream/app.py:"
    "153, Pipeline.__init__) is in memory and not in the bytewax recovery state, so a message "
    "whose readings were stored but whose ack had not reached the broker when the process "
    "was killed is redelivered to the restarted process and stored again. README 'No silent "
    "loss' ('A crash before the ack means redelivery, and stage A dedups the redelivered "
    "copy') holds only within one process; InfluxDB overwrites the identical point, "
    "VictoriaMetrics keeps both, and the copy also reaches the patients step again")


@pytest.mark.xfail(strict=True, raises=StoredTwice, reason=STORED_TWICE)
def test_a_message_stored_but_not_acknowledged_when_killed_is_stored_once(
        mosquitto, redis_server, victoria, tmp_path):
    """kill -9 while the store's confirmation of a write is on its way: the messages of
    that write were stored, not acknowledged; the restarted process gets them again."""
    tag = f"e2e-store-{uuid.uuid4().hex[:8]}"
    patient = device = f"p-{tag}"
    client_id, topic = f"vs-{tag}", f"vitalstream/{device}/+"
    store = _HoldingStore(victoria.url)
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.yaml").write_text(
        f"mqtt: {{url: '{mosquitto.url}', client_id: {client_id}, topic: '{topic}'}}\n"
        f"redis: {{url: '{redis_server.url}', alerts_stream: '{tag}:alerts', "
        f"deadletter_stream: '{tag}:deadletter', quarantine_stream: '{tag}:quarantine'}}\n"
        f"influx: {{url: '{store.url}', spool_dir: '{tmp_path}/spool'}}\n"
        f"pipeline: {{max_clock_skew_s: null}}\n"
        f"state: {{dir: '{tmp_path}/state', snapshot_interval_s: 0.5}}\n")
    t0 = (time.time_ns() - 3600 * NS) // 10**6 * 10**6
    readings = [(t0 + i * MIN_NS, 60.0 + i) for i in range(10)]
    msgs = [OutMessage(0.0, f"vitalstream/{device}/json", json.dumps(
        {"device": device, "readings": [{"signal": "heart_rate", "value": v, "unit": "/min",
                                         "t_ns": t}]}).encode()) for t, v in readings]
    _open_session(mosquitto.url, client_id, topic)
    log = tmp_path / "pipeline.log"
    runs: list[_Run] = []
    try:
        run1 = _Run(site, log)
        runs.append(run1)
        publish(msgs, mosquitto.url, progress=False, client_id=f"pub-{tag}")
        _wait(store.held.is_set, "a stored write whose answer is held", proc=run1)
        assert run1.acked() <= 0  # the store's answer never came: nothing acknowledged
        run1.kill9()
        run2 = _Run(site, log)
        runs.append(run2)
        run2.wait_acked(len(msgs))  # every message again: none had been acknowledged
        run2.stop()
    finally:
        for run in runs:
            run.close()
        store.close()
    rows = victoria.export(f'vitals_value{{patient="{patient}",signal="heart_rate"}}')
    stored = Counter((t, v) for row in rows for t, v in zip(row["timestamps"], row["values"]))
    assert set(stored) == {(t // 10**6, v) for t, v in readings}, stored  # none lost
    twice = sorted(k for k, n in stored.items() if n > 1)
    if twice:
        raise StoredTwice(f"{len(twice)} of {len(readings)} readings stored twice: {twice}")


def test_a_firing_never_names_a_value_back_past_clear():
    """Three minutes at 39 /min, then 60 /min: the packaged bradycardia may fire, but not
    on (and quoting) the 60 /min reading that is back past its clear level of 45."""
    from vitalstream.model import Reading
    from vitalstream.operators.rules import Rule
    from vitalstream.signals import Signal

    spec = _rule()
    logic = Rule.from_dict(spec).build(key="p1")
    values = [60.0] * 5 + [39.0, 39.0, 39.0, 60.0, 60.0]
    fired = []
    for i, v in enumerate(values):
        for a in logic.on_reading(Reading("p1", "d1", Signal.HEART_RATE, v, "/min",
                                          i * MIN_NS, i * MIN_NS, "json")):
            if a.state == "firing":
                fired.append((i, a.value))
    assert all(v <= spec["clear"] for _, v in fired), fired
