"""The Redis outage buffer on disk (issue 14): what a process held survives its death.

Each test gets a private redis-server (the session one is shared) that keeps its data
across stop/start (AOF), so "exactly once" can be checked across the outage. A restart
after ``kill -9`` is a real SIGKILL of a child process in the first test; elsewhere it is
a second writer over the same directory while the first one is left as it was (never
closed, its retry thread asleep).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from vitalstream.model import Alert, AlertState, DeadLetter, alert_id
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach

from test_redis_outage import DurableRedis, start_durable_redis

START_NS = 1_796_000_000 * 10**9
ASLEEP_S = 3600.0  # a retry thread that does not wake during a test


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    rs = start_durable_redis(tmp_path / "redis")
    try:
        yield rs
    finally:
        rs.close()


def _cfg(url: str, spool: Path, **kw) -> RedisConfig:
    tag = uuid.uuid4().hex[:8]
    return RedisConfig(url=url, alerts_stream=f"{tag}:alerts", deadletter_stream=f"{tag}:dead",
                       quarantine_stream=f"{tag}:quarantine", spool_dir=str(spool), **kw)


def _alert(patient: str, i: int) -> Alert:
    start = START_NS + i * 60 * 10**9
    return Alert(alert_id(patient, "tachycardia", start), patient, "tachycardia", "heart_rate",
                 "warning", AlertState.FIRING, 131.0, 120.0, start + 300 * 10**9, start, 0,
                 "", f"HR {i}", covers=("*",) if i % 2 else ())


def _dead(i: int, size: int = 3) -> DeadLetter:
    return DeadLetter("decode", "bad_json", f"letter {i}", "vitalstream/d1/json",
                      bytes([0xFF, 0x00, i % 256]) * size, "d1", i)


def _entries(client: redis.Redis, stream: str) -> list[dict[str, bytes]]:
    return [{k.decode(): v for k, v in e[1].items()} for e in client.xrange(stream)]


def _spooled(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.jsonl"))


_CHILD = textwrap.dedent("""
    import sys, time
    from vitalstream.model import Alert, AlertState, alert_id
    from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
    url, alerts_stream, spool = sys.argv[1:4]
    out = RedisOutreach(RedisConfig(url=url, alerts_stream=alerts_stream, spool_dir=spool,
                                    retry_initial_s=3600.0, retry_max_s=3600.0))
    def alert(i):
        start = {start} + i * 60 * 10**9
        return Alert(alert_id(f"p{{i}}", "tachycardia", start), f"p{{i}}", "tachycardia",
                     "heart_rate", "warning", AlertState.FIRING, 131.0, 120.0,
                     start + 300 * 10**9, start, 0, "", f"HR {{i}}",
                     covers=("*",) if i % 2 else ())
    for batch in ([0, 1], [2], [3, 4, 5]):
        out.write_alerts([alert(i) for i in batch])
    print(out.buffered, flush=True)
    time.sleep(600)
""").format(start=START_NS)


def test_alerts_spooled_by_a_killed_process_are_delivered_in_order_once_by_the_next(
        durable_redis, tmp_path):
    spool = tmp_path / "spool"
    cfg = _cfg(durable_redis.url, spool, retry_initial_s=0.1, retry_max_s=0.4)
    alerts = [_alert(f"p{i}", i) for i in range(8)]
    r = redis.Redis.from_url(durable_redis.url)
    durable_redis.stop()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, cfg.url, cfg.alerts_stream,
                              str(spool)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "6"  # held: six alerts in three batches
    finally:
        child.send_signal(signal.SIGKILL)  # no close(), no flush: memory would be gone
        child.wait(10)
    files = _spooled(spool)
    assert [len(f.read_text().splitlines()) for f in files] == [2, 1, 3]
    on_disk = [json.loads(line)["alert_id"] for f in files for line in f.read_text().splitlines()]
    assert on_disk == [a.alert_id for a in alerts[:6]]

    restarted = RedisOutreach(cfg)  # Redis still down: it starts in the outage state
    assert restarted.in_outage and restarted.buffered == 6
    assert restarted.write_alerts(alerts[6:]) == 0  # new ones queue behind the old
    durable_redis.start()
    try:
        assert restarted.flush(timeout_s=10.0), restarted.state()
        got = _entries(r, cfg.alerts_stream)
        assert [e["event_id"].decode() for e in got] == [a.event_id for a in alerts]
        assert [e["covers"].decode() for e in got] == ['["*"]' if i % 2 else "" for i in range(8)]
        assert _spooled(spool) == [] and not (spool / "outage.json").exists()
        # Delivered means delivered: a third start finds nothing, a replay adds nothing.
        third = RedisOutreach(cfg)
        assert not third.in_outage and third.buffered == 0
        assert third.write_alerts(alerts) == 0 and r.xlen(cfg.alerts_stream) == len(alerts)
        third.close()
    finally:
        r.close()
        restarted.close()


def test_dead_letters_and_quarantine_survive_a_restart(durable_redis, tmp_path):
    spool = tmp_path / "spool"
    letters = [_dead(i) for i in range(5)]
    quarantined = [{"device": "unmapped-1", "value": 70.0}, {"device": "unmapped-2", "value": 0.0}]
    r = redis.Redis.from_url(durable_redis.url)
    durable_redis.stop()
    cfg = _cfg(durable_redis.url, spool, retry_initial_s=ASLEEP_S, retry_max_s=ASLEEP_S)
    first = RedisOutreach(cfg)
    first.write_dead_letters(letters[:3])
    first.write_quarantine(quarantined)
    first.write_dead_letters(letters[3:])
    assert first.buffered == 7 and len(_spooled(spool)) == 3
    # first is abandoned as a killed process would be: not closed, not flushed

    second = RedisOutreach(replace(cfg, retry_initial_s=0.1, retry_max_s=0.4))
    assert second.buffered == 7
    durable_redis.start()
    try:
        assert second.flush(timeout_s=10.0), second.state()
        dead = _entries(r, cfg.deadletter_stream)
        assert [e["detail"].decode() for e in dead] == [f"letter {i}" for i in range(5)]
        assert [e["payload"] for e in dead] == [bytes([0xFF, 0x00, i]) * 3 for i in range(5)]
        assert [e["recv_ns"] for e in dead] == [str(i).encode() for i in range(5)]
        assert [json.loads(e["reading"]) for e in _entries(r, cfg.quarantine_stream)] == quarantined
        assert _spooled(spool) == []
    finally:
        r.close()
        second.close()


def test_the_spool_bound_drops_dead_letters_before_alerts_and_counts(durable_redis, tmp_path):
    a_batch, b_batch, c_batch = [_alert("a", 1)], [_alert("b", 2)], [_alert("c", 3)]
    d1, d2 = [_dead(1, 1), _dead(2, 1)], [_dead(3, 1)]
    # The files' sizes, measured on a spool without a bound (same batches, same encoding).
    durable_redis.stop()
    probe_dir = tmp_path / "probe"
    probe = RedisOutreach(_cfg(durable_redis.url, probe_dir, retry_initial_s=ASLEEP_S))
    for write, batch in ((probe.write_alerts, a_batch), (probe.write_dead_letters, d1),
                         (probe.write_dead_letters, d2), (probe.write_alerts, b_batch),
                         (probe.write_alerts, c_batch)):
        write(batch)
    s_a, s_d1, s_d2, s_b, s_c = (f.stat().st_size for f in _spooled(probe_dir))
    # C needs more room than the last dead letter frees (A must go too), and fits then.
    assert s_d2 < s_c <= s_d2 + s_a

    spool = tmp_path / "spool"
    cfg = _cfg(durable_redis.url, spool, retry_initial_s=ASLEEP_S,
               spool_max_bytes=s_a + s_d2 + s_b)
    out = RedisOutreach(cfg)
    out.write_alerts(a_batch)
    out.write_dead_letters(d1)
    out.write_dead_letters(d2)
    out.write_alerts(b_batch)  # A + D1 + D2 + B: over by D1, the oldest dead letters
    assert out.dropped_by_stream() == {"alerts": 0, "dead_letters": 2, "quarantine": 0}
    assert out.buffered == 3
    out.write_alerts(c_batch)  # over by C: D2 goes, then (still over) the oldest alerts, A
    st = out.state()
    assert out.dropped_by_stream() == {"alerts": 1, "dead_letters": 3, "quarantine": 0}
    assert st.dropped == 4 and st.dropped_alerts == 1 and st.buffered == 2
    assert sum(f.stat().st_size for f in _spooled(spool)) == s_b + s_c <= cfg.spool_max_bytes

    durable_redis.start()
    r = redis.Redis.from_url(durable_redis.url)
    # out's retry thread is asleep: a restarted writer delivers what is left on disk
    restarted = RedisOutreach(replace(cfg, retry_initial_s=0.1, retry_max_s=0.4))
    try:
        assert restarted.flush(timeout_s=10.0), restarted.state()
        assert [e["patient"].decode() for e in _entries(r, cfg.alerts_stream)] == ["b", "c"]
        assert r.xlen(cfg.deadletter_stream) == 0
    finally:
        r.close()
        restarted.close()


def _outage_alerts(client: redis.Redis, stream: str) -> list[dict[str, str]]:
    return [{k: v.decode() for k, v in e.items()} for e in _entries(client, stream)
            if e["rule"] == b"redis_outage"]


def test_one_pipeline_alert_says_the_outage_ended_and_how_long_it_lasted(durable_redis, tmp_path):
    spool = tmp_path / "spool"
    cfg = _cfg(durable_redis.url, spool, retry_initial_s=0.1, retry_max_s=0.4)
    out = RedisOutreach(cfg, announce_outage=True)
    told: list[Alert] = []
    out.on_outage_alert = told.append
    alerts = [_alert(f"p{i}", i) for i in range(3)]
    assert out.write_alerts(alerts[:1]) == 1
    assert _outage_alerts(r := redis.Redis.from_url(durable_redis.url), cfg.alerts_stream) == []

    before_stop = time.time_ns()
    durable_redis.stop()
    out.write_alerts(alerts[1:])
    after_first_failure = time.time_ns()
    assert out.in_outage
    before_start = time.time_ns()
    durable_redis.start()
    try:
        assert out.flush(timeout_s=10.0), out.state()
        after_flush = time.time_ns()
        out.write_alerts([_alert("p9", 9)])  # later traffic, no outage: no second alert
        assert out.flush(timeout_s=1.0)
        stream = _entries(r, cfg.alerts_stream)
        # The held alerts first, then the announcement (it says the backlog is out).
        assert [e["event_id"].decode() for e in stream[:4]] == \
            [a.event_id for a in alerts] + [told[0].event_id]
        (ended,) = _outage_alerts(r, cfg.alerts_stream)
        start_ns, end_ns = int(ended["episode_start_ns"]), int(ended["event_ns"])
        assert before_stop <= start_ns <= after_first_failure
        assert before_start <= end_ns <= after_flush
        assert ended["alert_id"] == alert_id("pipeline", "redis_outage", start_ns)
        assert (ended["patient"], ended["state"]) == ("pipeline", "resolved")
        assert float(ended["value"]) == pytest.approx((end_ns - start_ns) / 1e9, abs=1e-3)
        assert [a.event_id for a in told] == [ended["event_id"]]
    finally:
        out.close()

    # A writer that restarted mid-outage raises the same alert (start kept on disk): once.
    spool2 = tmp_path / "spool2"
    cfg2 = _cfg(durable_redis.url, spool2, retry_initial_s=ASLEEP_S, retry_max_s=ASLEEP_S)
    durable_redis.stop()
    first = RedisOutreach(cfg2, announce_outage=True)
    first.write_alerts(alerts)
    started = json.loads((spool2 / "outage.json").read_text())["start_ns"]
    second = RedisOutreach(replace(cfg2, retry_initial_s=0.1, retry_max_s=0.4),
                           announce_outage=True)
    durable_redis.start()
    try:
        assert second.flush(timeout_s=10.0), second.state()
        (ended,) = _outage_alerts(r, cfg2.alerts_stream)
        assert ended["alert_id"] == alert_id("pipeline", "redis_outage", started)
        assert r.xlen(cfg2.alerts_stream) == len(alerts) + 1
        assert not spool2.joinpath("outage.json").exists() and _spooled(spool2) == []
    finally:
        r.close()
        second.close()


def test_settings_give_the_pipeline_a_spool_and_a_file_can_change_or_remove_it(tmp_path):
    from vitalstream.stream import settings as config

    assert RedisConfig().spool_dir is None  # the sink alone: memory only, as before
    assert config.load(env={}).redis.spool_dir == "vitalstream-data/redis-spool"
    site = tmp_path / "site.yaml"
    site.write_text(f"redis: {{spool_dir: {tmp_path}/rs, spool_max_bytes: 1048576}}\n")
    s = config.load(site, env={})
    assert (s.redis.spool_dir, s.redis.spool_max_bytes) == (f"{tmp_path}/rs", 2**20)
    site.write_text("redis: {spool_dir: null}\n")
    assert config.load(site, env={}).redis.spool_dir is None
