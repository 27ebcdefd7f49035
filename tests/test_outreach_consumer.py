"""The outreach consumer (``sinks/outreach_consumer.py``, ``vitalstream outreach consume``) on a
real Redis started by the tests: read and ack, redelivery after a consumer killed with SIGKILL,
a restarted consumer's own pending entries first, poison to ``<stream>:dead``, the CLI.

Messages are written by the real producers: ``AlarmService`` on alert events, or
``RedisAlarmState.commit`` with the lifecycle's ``Notice`` records. Expectations are read back
from Redis itself (XRANGE, XPENDING), not from the consumer under test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import redis

from vitalstream.model import Alert
from vitalstream.operators.lifecycle import LifecycleState, Notice
from vitalstream.sinks.alarm_state import RedisAlarmState, outreach_message
from vitalstream.sinks.outreach_consumer import OutreachConsumer
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
from vitalstream.stream.alarms import AlarmService
from vitalstream.stream.cli import main
from vitalstream.testing import FakeClock

NS = 1_000_000_000
STREAM = "vitalstream:outreach"
DEAD = STREAM + ":dead"


def _notice(i: int, alert_id: str | None = None, reason: str = "raised") -> Notice:
    return Notice(alert_id or f"a{i}", f"p{i}", "bradycardia", "high", "active", reason,
                  1_700_000_000 * NS + i * NS, 0, "", f"HR {40 - i} /min: <= 40 /min",
                  "heart_rate", float(40 - i), 40.0)


def _produce(r, notices: list[Notice]) -> list[str]:
    """Commit notices as the alarm service does; the ids of the new outreach entries."""
    before = {e for e, _ in r.xrange(STREAM)}
    store = RedisAlarmState(r)
    for n in notices:
        store.commit(n.patient, LifecycleState(), [n])
    return [e.decode() for e, _ in r.xrange(STREAM) if e not in before]


def _stream(r, name: str = STREAM) -> dict[str, dict]:
    return {e.decode(): {k.decode(): v.decode() for k, v in f.items()} for e, f in r.xrange(name)}


def _pending(r, group: str, consumer: str | None = None) -> list[dict]:
    return r.xpending_range(STREAM, group, "-", "+", 1000, consumername=consumer)


def test_a_consumer_reads_and_acks_each_message_once(redis_client, redis_server):
    r = redis_client
    t0 = time.time_ns()
    clock = FakeClock(t0)
    RedisOutreach(RedisConfig(url=redis_server.url, alerts_stream="vitalstream:alerts")
                  ).write_alerts([Alert("b1", "p1", "bradycardia", "heart_rate", "critical",
                                        "firing", 38.0, 40.0, t0, t0, 0, "",
                                        "HR 38 /min: <= 40 /min for 30% of 10 min", "")])
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    service.step()
    clock.set(t0 + 301 * NS)  # re-notification and escalation tier 1
    service.step()
    written = _stream(r)
    assert [json.loads(f["message"])["reason"] for f in written.values()] == [
        "raised", "renotify", "escalated"]

    c = OutreachConsumer(r, STREAM, "pager", "pager-1")
    c.ensure_group()
    c.ensure_group()  # BUSYGROUP is tolerated
    seen: list = []
    assert c.run(seen.append, once=True) == 3
    assert [m.entry_id for m in seen] == list(written)
    assert [m.message for m in seen] == [json.loads(f["message"]) for f in written.values()]
    assert [m.deliveries for m in seen] == [1, 1, 1]
    assert r.xpending(STREAM, "pager")["pending"] == 0
    assert c.run(seen.append, once=True) == 0 and len(seen) == 3  # nothing is handled twice
    assert r.xlen(DEAD) == 0


def _taken_by(r, group: str, consumer: str) -> list[dict]:
    try:
        return _pending(r, group, consumer)
    except redis.ResponseError as exc:  # NOGROUP: the child has not created it yet
        assert "NOGROUP" in str(exc)
        return []


CRASHY = textwrap.dedent("""
    import sys, time
    import redis
    from vitalstream.sinks.outreach_consumer import OutreachConsumer

    c = OutreachConsumer(redis.Redis.from_url(sys.argv[1]), sys.argv[2], "pager", "crashy")
    c.ensure_group()

    def handler(msg):
        print(msg.entry_id, flush=True)
        time.sleep(3600)  # the page is "being sent" when the process is killed

    c.run(handler, count=2)
""")


def test_messages_of_a_consumer_killed_before_its_ack_are_redelivered(
        redis_client, redis_server, tmp_path):
    r = redis_client
    ids = _produce(r, [_notice(i) for i in range(3)])
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY)
    proc = subprocess.Popen([sys.executable, str(script), redis_server.url, STREAM],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while len(_taken_by(r, "pager", "crashy")) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "consumer never read"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    crashed = [p["message_id"].decode() for p in _pending(r, "pager", "crashy")]
    assert crashed == ids[:2]  # one batch of count=2, in stream order
    assert out.split() == ids[:1]  # its handler took the first and never returned

    claim_idle_ms = 200
    time.sleep(claim_idle_ms * 1.5 / 1000)  # idle long enough to be taken over
    rescuer = OutreachConsumer(r, STREAM, "pager", "rescuer", claim_idle_ms=claim_idle_ms)
    seen: list = []
    assert rescuer.run(seen.append, once=True) == 3
    assert [m.entry_id for m in seen] == ids  # the crashed consumer's first, then the new one
    got = {m.entry_id: m.deliveries for m in seen}
    assert all(got[i] >= 2 for i in crashed) and got[ids[2]] == 1
    assert [m.message["alert_id"] for m in seen] == ["a0", "a1", "a2"]
    assert r.xpending(STREAM, "pager")["pending"] == 0
    assert r.xlen(DEAD) == 0


def test_a_restarted_consumer_gets_its_own_pending_entries_first(redis_client):
    r = redis_client
    ids = _produce(r, [_notice(i) for i in range(3)])
    first = OutreachConsumer(r, STREAM, "sms", "sms-1")
    first.ensure_group()
    taken = first.poll(count=2, block_ms=None)
    assert [m.entry_id for m in taken] == ids[:2]
    del first  # "crashed" before acking
    ids += _produce(r, [_notice(3)])

    again = OutreachConsumer(r, STREAM, "sms", "sms-1")  # claim_idle_ms 60 s: no claiming
    batch = again.poll(count=10, block_ms=None)
    assert [(m.entry_id, m.deliveries) for m in batch] == [(ids[0], 2), (ids[1], 2)]
    for m in batch:
        again.ack(m.entry_id)
    rest = again.poll(count=10, block_ms=None)
    assert [(m.entry_id, m.deliveries) for m in rest] == [(ids[2], 1), (ids[3], 1)]
    for m in rest:
        again.ack(m.entry_id)
    assert r.xpending(STREAM, "sms")["pending"] == 0


def test_messages_off_the_schema_go_to_dead_and_do_not_block_the_next(redis_client):
    r = redis_client
    bad = outreach_message(_notice(0))
    bad["priority"] = "urgent"  # not one of high, medium, low
    off_schema = r.xadd(STREAM, {"message": json.dumps(bad)}).decode()
    not_json = r.xadd(STREAM, {"message": "{not json"}).decode()
    (good,) = _produce(r, [_notice(1)])

    c = OutreachConsumer(r, STREAM, "ehr", "ehr-1")
    c.ensure_group()
    seen: list = []
    assert c.run(seen.append, once=True) == 1
    assert [m.entry_id for m in seen] == [good]
    dead = list(_stream(r, DEAD).values())
    assert [d["entry_id"] for d in dead] == [off_schema, not_json]
    assert "priority" in dead[0]["error"] and "urgent" in dead[0]["error"]
    assert json.loads(dead[0]["message"]) == bad  # the original, for whoever looks into it
    assert "JSON" in dead[1]["error"] and dead[1]["message"] == "{not json"
    assert [d["deliveries"] for d in dead] == ["1", "1"]
    assert r.xpending(STREAM, "ehr")["pending"] == 0


def test_a_handler_that_always_raises_dead_letters_after_max_deliveries(redis_client):
    r = redis_client
    ids = _produce(r, [_notice(0, alert_id="bad"), _notice(1)])
    calls: list[tuple[str, int]] = []

    def handler(msg):
        calls.append((msg.message["alert_id"], msg.deliveries))
        if msg.message["alert_id"] == "bad":
            raise RuntimeError("pager gateway refused it")

    c = OutreachConsumer(r, STREAM, "pager", "pager-1", claim_idle_ms=30)
    c.ensure_group()
    deadline = time.monotonic() + 20
    handled = c.run(handler, block_ms=50, max_deliveries=3,
                    stop=lambda: r.xlen(DEAD) > 0 or time.monotonic() > deadline)
    assert handled == 1
    assert calls[:2] == [("bad", 1), ("a1", 1)]  # the next one went through at once
    assert [d for a, d in calls if a == "bad"] == [1, 2, 3]
    (dead,) = _stream(r, DEAD).values()
    assert dead["entry_id"] == ids[0] and dead["deliveries"] == "3"
    assert dead["error"] == "handler: RuntimeError: pager gateway refused it"
    assert r.xpending(STREAM, "pager")["pending"] == 0


def test_a_message_delivered_too_often_without_an_ack_is_dead_lettered(redis_client):
    """What a message that kills its consumer each time looks like: deliveries, no error."""
    r = redis_client
    (entry,) = _produce(r, [_notice(0)])
    c = OutreachConsumer(r, STREAM, "pager", "pager-1", claim_idle_ms=0)
    c.ensure_group()
    for _ in range(5):  # delivered (">" once, then claimed), never acked
        c.poll(block_ms=None)
    assert _pending(r, "pager")[0]["times_delivered"] == 5
    calls: list = []
    assert c.run(calls.append, max_deliveries=5, once=True) == 0
    assert calls == []
    (dead,) = _stream(r, DEAD).values()
    assert (dead["entry_id"], dead["deliveries"]) == (entry, "6")
    assert "without an ack" in dead["error"]
    assert r.xpending(STREAM, "pager")["pending"] == 0


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_prints_one_line_per_message_and_acks_them(redis_client, redis_server, capsys,
                                                       as_json):
    r = redis_client
    ids = _produce(r, [_notice(0), _notice(1, reason="renotify"), _notice(2)])
    messages = [json.loads(f["message"]) for f in _stream(r).values()]
    argv = ["outreach", "consume", "--group", "cli", "--consumer", "c1", "--once",
            "--redis-url", redis_server.url] + (["--json"] if as_json else [])
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ids) == 3
    if as_json:
        assert [json.loads(x) for x in lines] == messages
    else:
        for line, m in zip(lines, messages):
            assert line.split()[:4] == [m["priority"], m["patient"], m["rule"], m["reason"]]
            assert line.endswith(m["explanation"])
    assert r.xpending(STREAM, "cli")["pending"] == 0
    assert main(argv) == 0 and capsys.readouterr().out == ""  # acked: not printed again
