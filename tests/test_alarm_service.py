"""The alarm service on a real Redis (started by the tests): alert events in as the pipeline
writes them, notices out to the outreach stream, acks from the CLI taking effect, and a
restart that neither repeats nor forgets. The service's clock is a fake one; the CLI stamps
its commands with the wall clock, so the fake clock starts at the wall clock's now."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest
import redis

from vitalstream.model import Alert
from vitalstream.sinks.alarm_state import outreach_schema
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
from vitalstream.stream.alarms import AlarmService
from vitalstream.stream.cli import main
from vitalstream.testing import FakeClock, wait_for

NS = 1_000_000_000


@pytest.fixture
def db(redis_server):
    """A Redis database of its own (the server is shared by the session)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/7"
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url, r
    r.flushdb()


def _alert(aid, rule, sev, state, t_ns, group=""):
    return Alert(aid, "p1", rule, "heart_rate", sev, state, 38.0, 40.0, t_ns, t_ns, 0, "",
                 "HR 38 /min: <= 40 /min for 30% of 10 min", group)


def _validated(r, stream: str) -> list[dict]:
    """Every message of an outreach stream, each checked against the published schema."""
    schema = outreach_schema()
    out = []
    for _, f in r.xrange(stream):
        msg = json.loads(f[b"message"])
        jsonschema.validate(msg, schema)
        assert (msg["alert_id"], msg["reason"]) == (f[b"alert_id"].decode(), f[b"reason"].decode())
        out.append(msg)
    return out


def _notices(r) -> list[tuple[str, str, str]]:
    return [(m["alert_id"], m["reason"], str(m["level"])) for m in _validated(r, "vitalstream:outreach")]


def test_raise_renotify_escalate_then_ack_from_the_cli_stops_it(db, capsys):
    url, r = db
    t0 = time.time_ns()
    clock = FakeClock(t0)
    outreach = RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts"))
    outreach.write_alerts([_alert("b1", "bradycardia", "critical", "firing", t0)])
    service = AlarmService(r, "vitalstream:alerts", clock=clock)
    assert service.step() == 1
    assert _notices(r) == [("b1", "raised", "0")]

    assert main(["alerts", "list", "--redis-url", url, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["alert_id"], listed["priority"], listed["state"]) == ("b1", "high", "active")

    clock.set(t0 + 301 * NS)  # past 300 s: re-notify and tier 1
    service.step()
    assert _notices(r)[1:] == [("b1", "renotify", "0"), ("b1", "escalated", "1")]

    assert main(["alerts", "ack", "b1", "--by", "nurse-7", "--reason", "at bedside",
                 "--redis-url", url]) == 0
    clock.set(t0 + 302 * NS)
    service.step()
    clock.set(t0 + 2000 * NS)  # tier 2 (900 s) and re-notifications would be due
    service.step()
    assert len(_notices(r)) == 3
    audit = [{k.decode(): v.decode() for k, v in f.items()} for _, f in r.xrange("vitalstream:audit")]
    assert [(a["alert_id"], a["who"], a["action"], a["reason"]) for a in audit] == [
        ("b1", "nurse-7", "acknowledged", "at bedside")]

    assert main(["alerts", "history", "b1", "--redis-url", url]) == 0
    kinds = [json.loads(x)["kind"] for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert kinds.count("notice") == 3 and kinds.count("audit") == 1


def test_a_restarted_service_neither_repeats_nor_forgets(db):
    url, r = db
    t0 = time.time_ns()
    outreach = RedisOutreach(RedisConfig(url=url, alerts_stream="vitalstream:alerts"))
    outreach.write_alerts([_alert("m1", "tachycardia", "warning", "firing", t0)])
    first = AlarmService(r, "vitalstream:alerts", clock=FakeClock(t0 + NS))
    first.step()
    del first  # "killed" after its commit
    again = AlarmService(r, "vitalstream:alerts", clock=FakeClock(t0 + 100 * NS))
    again.step()  # nothing new to read: no second "raised"
    assert _notices(r) == [("m1", "raised", "0")]
    again.clock.set(t0 + 901 * NS)  # the 900-s re-notification survived the restart
    again.step()
    assert _notices(r) == [("m1", "raised", "0"), ("m1", "renotify", "0")]
    assert r.xpending("vitalstream:alerts", "vitalstream-lifecycle")["pending"] == 0


def test_cli_refuses_an_unknown_alarm_with_one_line(db, capsys):
    url, _ = db
    assert main(["alerts", "ack", "nope", "--by", "x", "--redis-url", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown_alarm" in err[0]


def test_vitalstream_run_starts_the_service_and_its_notices_reach_the_outreach_stream(
        mosquitto, redis_server, tmp_path, capsys):
    """A bradycardia over real MQTT into the pipeline: the in-process service raises it
    (one notice, high priority) and ``vitalstream alerts list`` shows it, on the run's own
    stream names (prefix from ``redis.alerts_stream``)."""
    from vitalstream.simulators.publisher import publish
    from vitalstream.simulators.scenario import OutMessage
    from vitalstream.stream.bounded import PipelineRun, settings_for

    settings = settings_for(mosquitto.url, redis_server.url, "http://127.0.0.1:9",
                            tmp_path / "spool", max_clock_skew_s=None)
    prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
    t0 = time.time_ns() - 3600 * NS
    hover = [60] * 20 + [39, 42, 43, 40, 42, 39, 43, 42, 40, 41]
    msgs = [OutMessage(i * 0.001, "vitalstream/p-run/json", json.dumps(
        {"device": "p-run", "readings": [{"signal": "heart_rate", "value": v,
                                          "t_ns": t0 + i * 60 * NS}]}).encode())
            for i, v in enumerate(hover)]
    with PipelineRun(settings, idle_stop_s=3.0) as run:
        publish(msgs, mosquitto.url, progress=False)
        run.join()
    r = redis.Redis.from_url(redis_server.url)
    msgs = _validated(r, f"{prefix}:outreach")
    assert [(m["rule"], m["reason"], m["priority"]) for m in msgs] == [("bradycardia", "raised", "high")]
    # <= 40 on hover minutes 0, 3 and 5 (60 s each) is 30 % of 10 min from minute 6 on; an
    # episode opens on a reading that itself crosses: minute 8's (40 /min) is the alert's
    # value (the window [-2, 8] min still holds all three); the unit is the catalogue's
    assert (msgs[0]["signal"], msgs[0]["value"], msgs[0]["unit"], msgs[0]["threshold"]) == (
        "heart_rate", 40.0, "/min", 40.0)
    cfg = tmp_path / "site.yaml"
    cfg.write_text(f"redis: {{url: '{redis_server.url}', alerts_stream: '{settings.redis.alerts_stream}'}}\n")
    assert main(["alerts", "list", "--config", str(cfg), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["patient"], listed["rule"], listed["state"]) == ("p-run", "bradycardia", "active")


def test_schema_command_prints_the_published_schema(capsys):
    assert main(["schema", "outreach"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == outreach_schema()
    assert printed["properties"]["schema"]["const"] == "vitalstream.outreach/1"
    jsonschema.Draft202012Validator.check_schema(printed)


def test_escalation_on_time_and_an_ack_from_the_cli_stops_renotification_while_running(
        mosquitto, redis_server, tmp_path):
    """A site policy in seconds (re-notify high every 2 s, charge nurse after 3 s): over real
    MQTT a bradycardia is raised, re-notified, escalated 3 s after it was raised (give or take
    the service's 0.2 s poll), and an ack from the CLI while the pipeline runs ends it all."""
    from importlib import resources

    import yaml

    from vitalstream.simulators.publisher import publish
    from vitalstream.simulators.scenario import OutMessage
    from vitalstream.stream.bounded import PipelineRun, settings_for

    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text())
    doc["lifecycle"] = {"renotify_s": {"high": 2, "medium": 60, "low": None},
                        "tiers": [{"name": "charge-nurse", "after_s": 3},
                                  {"name": "physician", "after_s": 60}]}
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(doc))
    settings = settings_for(mosquitto.url, redis_server.url, "http://127.0.0.1:9",
                            tmp_path / "spool", max_clock_skew_s=None)
    import dataclasses
    settings = dataclasses.replace(settings, rules_path=str(rules))
    prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
    r = redis.Redis.from_url(redis_server.url)
    stream = f"{prefix}:outreach"
    t0 = time.time_ns() - 3600 * NS
    hover = [60] * 20 + [39, 42, 43, 40, 42, 39, 43, 42, 40, 41]
    msgs = [OutMessage(i * 0.001, "vitalstream/p-esc/json", json.dumps(
        {"device": "p-esc", "readings": [{"signal": "heart_rate", "value": v,
                                          "t_ns": t0 + i * 60 * NS}]}).encode())
            for i, v in enumerate(hover)]
    cfg = tmp_path / "site.yaml"
    cfg.write_text(f"redis: {{url: '{redis_server.url}', alerts_stream: '{settings.redis.alerts_stream}'}}\n")
    with PipelineRun(settings, idle_stop_s=15.0) as run:
        publish(msgs, mosquitto.url, progress=False)
        esc = wait_for(lambda: [m for m in _validated(r, stream) if m["reason"] == "escalated"],
                       "the escalation", 15.0, 0.05)
        raised = [m for m in _validated(r, stream) if m["reason"] == "raised"]
        assert len(raised) == 1 and esc[0]["tier"] == "charge-nurse" and esc[0]["level"] == 1
        assert 2.8 <= (esc[0]["event_ns"] - raised[0]["event_ns"]) / NS <= 4.0
        assert main(["alerts", "ack", raised[0]["alert_id"], "--by", "nurse-7",
                     "--reason", "at bedside", "--config", str(cfg)]) == 0
        acked = wait_for(lambda: [m for m in r.xrange(f"{prefix}:audit")], "the ack applied", 15.0, 0.05)
        acked_ns = int(acked[0][1][b"event_ns"])
        time.sleep(4.5)  # two re-notification intervals after the ack
        after = [m for m in _validated(r, stream) if m["event_ns"] > acked_ns + NS // 2]
        run.pipeline.request_stop()
        run.join()
    renotified = [m for m in _validated(r, stream) if m["reason"] == "renotify"]
    assert renotified  # the 2-s re-notification did run before the ack
    assert after == []
