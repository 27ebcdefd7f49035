"""The outreach queue on a real Redis: idempotent alert events, consumer groups."""

from __future__ import annotations

from vitalstream.model import Alert, AlertState, alert_id
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach


def _alert(state: str, seq: int, t_s: int) -> Alert:
    start = 1_764_064_800 * 10**9
    return Alert(alert_id("p1", "tachycardia", start), "p1", "tachycardia", "heart_rate", "warning",
                 state, 131.0, 120.0, start + t_s * 10**9, start, seq)


def test_replayed_alert_events_are_added_once_and_read_by_a_consumer_group(redis_client,
                                                                            redis_server):
    cfg = RedisConfig(url=redis_server.url, alerts_stream="t-outreach:alerts")
    out = RedisOutreach(cfg)
    events = [_alert(AlertState.FIRING, 0, 300), _alert(AlertState.REALERT, 1, 3900),
              _alert(AlertState.RESOLVED, 2, 4000)]
    assert out.write_alerts(events) == 3
    assert out.write_alerts(events) == 0  # a replay of the same readings
    assert out.write_alerts([events[1]]) == 0
    assert redis_client.xlen(cfg.alerts_stream) == 3

    out.ensure_group("care-team")
    out.ensure_group("care-team")  # idempotent
    got = redis_client.xreadgroup("care-team", "nurse-1", {cfg.alerts_stream: ">"}, count=10)
    entries = got[0][1]
    fields = [{k.decode(): v.decode() for k, v in e[1].items()} for e in entries]
    assert [f["state"] for f in fields] == ["firing", "realert", "resolved"]
    assert len({f["alert_id"] for f in fields}) == 1  # one episode
    assert [f["event_id"] for f in fields] == [e.event_id for e in events]
    assert float(fields[0]["value"]) == 131.0 and fields[0]["event_time"].startswith("2025-11-25T10:05")
    redis_client.xack(cfg.alerts_stream, "care-team", *[e[0] for e in entries])
    assert redis_client.xpending(cfg.alerts_stream, "care-team")["pending"] == 0
