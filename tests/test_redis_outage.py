"""Redis outages on a real redis-server that the test stops and starts (issue 9, defect 7).

A Redis outage must never end the pipeline: the outreach writer holds what it
cannot write in a bounded buffer (alerts dropped last), returns at once, retries
with backoff and delivers in order, once, when Redis is back; the identity
registry keeps serving its last snapshot. Before, the writer retried for about
nine seconds on the flow's thread and then raised, which ended the process.

Each test gets a private redis-server on a fixed port (the session one is
shared) that keeps its data across stop/start (AOF), so a restart is an outage,
not a wipe, and "none twice" can be checked across it.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from vitalstream.connectors.registry import DeviceRegistry, RegistryResolver
from vitalstream.model import Alert, AlertState, DeadLetter, RawReading, alert_id
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach, connect
from vitalstream.stream.embedded.services import RedisServer, ServiceUnavailable, free_port

H = 3600 * 10**9
START_NS = 1_796_000_000 * 10**9


class DurableRedis(RedisServer):
    """redis-server whose data survives ``stop()``/``start()`` (append-only file, fsync always)."""

    def _command(self) -> list[str]:
        cmd = super()._command()
        cmd[cmd.index("--appendonly") + 1] = "yes"
        return [*cmd, "--appendfsync", "always"]


def start_durable_redis(workdir: Path) -> DurableRedis:
    """Started on a fixed port, so clients reconnect to the same address after a restart."""
    rs = DurableRedis(workdir, port=free_port())
    try:
        rs.start()
    except ServiceUnavailable as exc:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(str(exc))
        pytest.skip(reason=str(exc))
    return rs


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    rs = start_durable_redis(tmp_path / "redis")
    try:
        yield rs
    finally:
        rs.close()


def _alert(patient: str, i: int) -> Alert:
    start = START_NS + i * 60 * 10**9
    return Alert(alert_id(patient, "tachycardia", start), patient, "tachycardia", "heart_rate",
                 "warning", AlertState.FIRING, 131.0, 120.0, start + 300 * 10**9, start, 0)


def _dead(i: int) -> DeadLetter:
    return DeadLetter("decode", "bad_json", f"letter {i}", "vitalstream/d1/json", b"{", "d1", i)


def _entries(client: redis.Redis, stream: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in e[1].items()} for e in client.xrange(stream)]


def _timed(fn, *args):
    t0 = time.monotonic()
    out = fn(*args)
    return out, time.monotonic() - t0


def test_writes_during_an_outage_are_held_bounded_and_delivered_in_order_once(durable_redis):
    tag = uuid.uuid4().hex[:8]
    cfg = RedisConfig(url=durable_redis.url, alerts_stream=f"{tag}:alerts",
                      deadletter_stream=f"{tag}:deadletter", quarantine_stream=f"{tag}:quarantine",
                      buffer_max=8, retry_initial_s=0.1, retry_max_s=0.4)
    out = RedisOutreach(cfg)
    alerts = [_alert(f"p{i}", i) for i in range(7)]
    assert out.write_alerts(alerts[:1]) == 1 and not out.in_outage

    durable_redis.stop()
    calls = [(out.write_alerts, alerts[1:2]), (out.write_dead_letters, [_dead(i) for i in range(3)]),
             (out.write_quarantine, [{"device": "unmapped-1", "value": 70.0}]),
             (out.write_alerts, alerts[2:4]), (out.write_alerts, alerts[4:7])]
    for fn, items in calls:
        _, took = _timed(fn, items)
        assert took < 1.0, f"{fn.__name__} held the caller {took:.2f} s"
    # 1 + 3 + 1 + 2 + 3 = 10 items for 8 places: the two oldest dead letters gave way.
    st = out.state()
    assert st.in_outage and st.buffered == 8 and st.outages == 1
    assert out.dropped == 2 and out.dropped_by_stream() == {"alerts": 0, "dead_letters": 2,
                                                             "quarantine": 0}
    time.sleep(1.0)  # the retry thread keeps failing meanwhile, off the caller's thread
    assert out.state().failed_attempts >= 3

    durable_redis.start()
    assert out.flush(timeout_s=5.0), out.state()
    assert not out.in_outage and out.buffered == 0
    r = redis.Redis.from_url(durable_redis.url)
    try:
        assert [e["event_id"] for e in _entries(r, cfg.alerts_stream)] == [a.event_id for a in alerts]
        assert [e["detail"] for e in _entries(r, cfg.deadletter_stream)] == ["letter 2"]
        assert r.xlen(cfg.quarantine_stream) == 1
        # Delivered means delivered: a replay of every event adds nothing.
        assert out.write_alerts(alerts) == 0
        assert r.xlen(cfg.alerts_stream) == len(alerts)
    finally:
        r.close()
        out.close()


def test_alerts_are_dropped_last_and_counted(durable_redis):
    cfg = RedisConfig(url=durable_redis.url, alerts_stream=f"{uuid.uuid4().hex[:8]}:alerts",
                      buffer_max=3, retry_initial_s=5.0)
    out = RedisOutreach(cfg)
    durable_redis.stop()
    out.write_alerts([_alert("p1", 1), _alert("p2", 2)])
    out.write_dead_letters([_dead(1), _dead(2)])
    assert out.state().buffered == 3 and out.dropped_by_stream()["dead_letters"] == 1
    out.write_alerts([_alert("p3", 3), _alert("p4", 4)])  # only alerts left to give way
    st = out.state()
    assert st.buffered == 3 and st.dropped == 3 and st.dropped_alerts == 1
    durable_redis.start()
    assert out.flush(timeout_s=10.0)
    r = redis.Redis.from_url(durable_redis.url)
    try:
        assert [e["patient"] for e in _entries(r, cfg.alerts_stream)] == ["p2", "p3", "p4"]
    finally:
        r.close()
        out.close()


def test_a_hung_redis_is_an_outage_after_the_socket_timeout_and_nothing_doubles(durable_redis):
    cfg = RedisConfig(url=durable_redis.url, alerts_stream=f"{uuid.uuid4().hex[:8]}:alerts",
                      socket_timeout_s=0.3, retry_initial_s=0.1, retry_max_s=0.4)
    out = RedisOutreach(cfg)
    alerts = [_alert(f"p{i}", i) for i in range(3)]
    assert out.write_alerts(alerts[:1]) == 1
    os.killpg(durable_redis.pid, signal.SIGSTOP)  # alive, listening, answering nothing
    try:
        _, took = _timed(out.write_alerts, alerts[1:])
        assert took < 2.0 and out.in_outage
    finally:
        os.killpg(durable_redis.pid, signal.SIGCONT)
    # The timed-out commands may still run once the server wakes up; the re-send must not
    # add them a second time.
    assert out.flush(timeout_s=5.0)
    r = redis.Redis.from_url(durable_redis.url)
    try:
        assert [e["event_id"] for e in _entries(r, cfg.alerts_stream)] == [a.event_id for a in alerts]
    finally:
        r.close()
        out.close()


def test_registry_resolver_serves_its_last_snapshot_while_redis_is_down(durable_redis):
    registry = DeviceRegistry(connect(durable_redis.url), prefix=f"{uuid.uuid4().hex[:8]}:devices")
    registry.assign("strap-1", "p1", 0)
    resolver = RegistryResolver(registry, poll_s=0.1, retry_max_s=0.4)
    reading = RawReading("strap-1", None, "heart_rate", 70.0, "/min", H)
    assert resolver(reading) == "p1"

    durable_redis.stop()
    deadline = time.monotonic() + 1.5
    slowest = 0.0
    while time.monotonic() < deadline:  # the flow calls it for every reading
        patient, took = _timed(resolver, reading)
        assert patient == "p1"
        slowest = max(slowest, took)
        time.sleep(0.01)
    assert slowest < 0.5, f"a lookup waited {slowest:.2f} s for Redis"
    assert resolver.stale
    assert resolver.failed_polls <= 6  # backed off: not one failed poll every 0.1 s

    durable_redis.start()
    registry.assign("strap-1", "p2", 2 * H)  # a reassignment made once Redis is back
    deadline = time.monotonic() + 3.0
    while resolver(RawReading("strap-1", None, "heart_rate", 70.0, "/min", 3 * H)) != "p2":
        assert time.monotonic() < deadline, "the resolver did not reload after the outage"
        time.sleep(0.05)
    assert not resolver.stale and resolver(reading) == "p1"
    registry.r.close()


# -- the pipeline through an outage ------------------------------------------------------

OUTAGE_S = 12.0  # longer than the old writer's retry budget (~9 s), which then raised
BEFORE_S, AFTER_S = 3.0, 3.0  # Redis up before and after the outage
PATIENTS = 5


def _schedule(tag: str, anchor_ns: int) -> tuple[list, dict[str, list[int]]]:
    """Heart rate every 0.5 s per patient throughout; a hypertensive crisis (one reading fires)
    and its resolution per patient: patient 0 before the outage, the others during it; one
    malformed message during it. Returns (messages, readings' event ns by device)."""
    from vitalstream.simulators.scenario import OutMessage

    msgs: list[tuple[float, str, bytes]] = []
    stamps: dict[str, list[int]] = {}

    def reading(at_s: float, i: int, signal: str, value: float, unit: str) -> None:
        dev, t_ns = f"{tag}-d{i}", anchor_ns + round(at_s * 1e9)
        body = {"v": 1, "device": dev, "patient": f"{tag}-p{i}",
                "readings": [{"signal": signal, "value": value, "unit": unit, "t_ns": t_ns}]}
        msgs.append((at_s, f"vitalstream/{dev}/json", json.dumps(body).encode()))
        stamps.setdefault(dev, []).append(t_ns)

    total_s = BEFORE_S + OUTAGE_S + AFTER_S
    for k in range(int(total_s / 0.5)):
        for i in range(PATIENTS):
            reading(k * 0.5 + i * 0.01, i, "heart_rate", 72.0, "/min")
    for i in range(PATIENTS):
        crisis_s = 0.5 if i == 0 else BEFORE_S + 0.5 + 0.3 * i
        reading(crisis_s + 0.005, i, "bp_systolic", 190.0, "mm[Hg]")
        reading(crisis_s + 2.005, i, "bp_systolic", 120.0, "mm[Hg]")
    msgs.append((BEFORE_S + 1.0, f"vitalstream/{tag}-d0/json", b"{not json"))
    msgs.sort(key=lambda m: m[0])
    return [OutMessage(*m) for m in msgs], stamps


def test_pipeline_rides_out_a_redis_outage(mosquitto, victoria, tmp_path):
    import dataclasses
    import threading

    from vitalstream.simulators.publisher import publish
    from vitalstream.stream.bounded import PipelineRun, settings_for

    rs = start_durable_redis(tmp_path / "redis")
    tag = f"ro{uuid.uuid4().hex[:6]}"
    settings = settings_for(mosquitto.url, rs.url, victoria.url, tmp_path / "spool", tag=tag,
                            rule_delay_s=0.5)
    settings = dataclasses.replace(settings, redis=dataclasses.replace(
        settings.redis, retry_initial_s=0.2, retry_max_s=1.0))
    emitted: list[Alert] = []
    try:
        with PipelineRun(settings, idle_stop_s=3.0, on_alert=emitted.append) as run:
            live = run.pipeline.live
            anchor_ns = time.time_ns() + 500_000_000
            msgs, stamps = _schedule(tag, anchor_ns)
            pub = threading.Thread(target=publish, args=(msgs, mosquitto.url),
                                   kwargs={"progress": False, "anchor_ns": anchor_ns})
            pub.start()

            def at(offset_s: float) -> None:
                time.sleep(max(0.0, (anchor_ns - time.time_ns()) / 1e9 + offset_s))

            at(BEFORE_S)
            rs.stop()
            at(BEFORE_S + OUTAGE_S - 0.5)
            # Still down: the readings path went on, and the alerts wait in memory.
            published = sum(1 for m in msgs if m.publish_offset_s < BEFORE_S + OUTAGE_S - 1.5
                            and b"{not" not in m.payload)
            assert run.error is None and run._thread.is_alive()
            assert live.totals()["readings"] >= published
            outreach = [w.outreach for w in live.result_writers]
            assert any(o.in_outage for o in outreach) and sum(o.buffered for o in outreach) > 0
            assert len(emitted) >= 2 * (PATIENTS - 1)  # fired and resolved during the outage
            rs.start()
            pub.join()
            totals = run.join()
        r = redis.Redis.from_url(rs.url)
        deadline = time.monotonic() + 10
        while r.xlen(settings.redis.alerts_stream) < len(emitted) and time.monotonic() < deadline:
            time.sleep(0.1)
        stream = _entries(r, settings.redis.alerts_stream)
        dead = _entries(r, settings.redis.deadletter_stream)
        r.close()
    finally:
        rs.close()

    assert totals["messages"] == totals["acked"] == len(msgs)
    # Every alert reached the stream after Redis returned, none twice.
    ids = [e["event_id"] for e in stream]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(a.event_id for a in emitted)
    fired = sorted((e["patient"], e["state"]) for e in stream if e["rule"] == "hypertensive_crisis")
    assert fired == sorted((f"{tag}-p{i}", s) for i in range(PATIENTS) for s in ("firing", "resolved"))
    assert [d["topic"] for d in dead] == [f"vitalstream/{tag}-d0/json"]
    # Every reading stored, once, at its device time.
    series = victoria.export(f'vitals_value{{device=~"{tag}-d.*"}}')
    stored: dict[str, list[int]] = {}
    for s in series:
        stored.setdefault(s["metric"]["device"], []).extend(s["timestamps"])
    assert {d: sorted(ts) for d, ts in stored.items()} == \
        {d: sorted(t // 1_000_000 for t in ts) for d, ts in stamps.items()}
