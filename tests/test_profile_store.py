"""Profiles in a real Redis, annotations in a real InfluxDB 1.x, on a fake clock.

The care stage (``stream.care.CareService``) runs the profile over a simulated
hypertensive patient's home readings; the store must then answer what
``vitalstream profile show`` and ``vitalstream cohort list`` print, and every change
must be on the profile events stream exactly once, however often it is replayed.
"""

from __future__ import annotations

import json

from vitalstream.care import CareEvent
from vitalstream.operators.care import CareFlow
from vitalstream.operators.profile import Hypertension, ProfileRules
from vitalstream.sinks.profiles import ProfileStore
from vitalstream.stream.care import CareService, CareWriter
from vitalstream.testing import FakeClock

from test_profile import DAY, T0, first_guideline_time, home_bp

FLOW = CareFlow(profile=ProfileRules(rules=(Hypertension(),)))


class _Lines:
    """InfluxDB 1.x's /write behind the LineWriter interface the pipeline's writer has."""

    def __init__(self, db, name: str) -> None:
        self.db, self.name = db, name

    def write_lines(self, lines: list[str]) -> None:
        self.db.write(lines, self.name)


def test_profile_store_answers_show_and_cohort_and_emits_each_change_once(redis_client):
    store = ProfileStore(redis_client)
    readings = home_bp("p-htn", 150, 94, days=20, seed=21) + home_bp("p-ok", 114, 71, days=20, seed=22)
    readings.sort(key=lambda r: r.event_ns)
    svc = CareService(FLOW, CareWriter(store), FakeClock(T0))
    svc.feed(readings)
    expected = first_guideline_time([r for r in readings if r.patient == "p-htn"], 130, 80)
    t = store.tags("p-htn")["hypertension"]
    assert t["effective"]["start_ns"] == expected and t["manual"] is None
    assert t["effective"]["evidence"] and t["effective"]["guideline"].startswith("Whelton")
    assert store.tags("p-ok") == {}
    assert store.cohort("hypertension") == [("p-htn", expected)]
    events = redis_client.xrange("vitalstream:profile:events")
    n = len(events)
    assert n == sum(1 for x in svc.outputs) and n >= 1
    # a replay of the same readings (a restart without state) adds no event twice
    CareService(FLOW, CareWriter(store), FakeClock(T0)).feed(readings)
    assert len(redis_client.xrange("vitalstream:profile:events")) == n
    first = {k.decode(): v.decode() for k, v in events[0][1].items()}
    assert first["tag"] == "hypertension" and first["change"] == "set"
    assert json.loads(first["evidence"])[0]["signal"] == "bp"


def test_manual_tag_and_cohort_membership_set_by_the_care_team(redis_client):
    store = ProfileStore(redis_client)
    svc = CareService(FLOW, CareWriter(store), FakeClock(T0))
    store.command(CareEvent("p-man", "manual-tag", T0, "hypertension"))
    # shown at once, before the stage has seen the command
    assert store.cohort("hypertension") == [("p-man", T0)]
    svc.poll_commands(store)
    svc.feed(home_bp("p-man", 112, 70, days=30, seed=8, p_measure=1.0))
    tags = store.tags("p-man")["hypertension"]
    assert tags["effective"]["source"] == "manual" and tags["derived"] is None
    assert store.cohort("hypertension") == [("p-man", T0)]
    store.command(CareEvent("p-man", "clear-tag", T0 + 31 * DAY, "hypertension"))
    svc.poll_commands(store)
    assert store.cohort("hypertension") == []
    assert store.tags("p-man")["hypertension"]["effective"] is None


def test_changes_written_to_influxdb_as_annotations(redis_client, influxdb1):
    influxdb1.create_database("care")
    store = ProfileStore(redis_client)
    svc = CareService(FLOW, CareWriter(store, _Lines(influxdb1, "care")), FakeClock(T0))
    svc.feed(home_bp("p-ann", 152, 96, days=10, seed=30, p_measure=1.0))
    res = influxdb1.query('SELECT "title", "text", "confidence", "tag" FROM "profile_event" '
                          "WHERE \"patient\" = 'p-ann'", "care")
    rows = res["results"][0]["series"][0]["values"]
    sets = [c for c in svc.outputs if c.change == "set"]
    assert rows[0][0] == sets[0].at_ns and rows[0][1] == "hypertension set"
    assert rows[0][2] == sets[0].rule and rows[0][4] == "hypertension"
    assert len(rows) == len(svc.outputs)


def test_nudges_reach_a_consumer_group_valid_against_their_schema(redis_client, redis_server, capsys):
    """``vitalstream outreach consume --nudges``: each nudge once, as JSON of
    nudge-v1.schema.json, with the strategy and evidence that triggered it."""
    from vitalstream.care import Evidence, Nudge
    from vitalstream.stream.cli import main

    store = ProfileStore(redis_client)
    n = Nudge("p-n", "bp-missing", "patient-reminder", "sms", T0, T0 + 3600 * 10**9, "Please measure",
              "no bp_systolic reading for 3 days", (Evidence(T0 - 3 * DAY, "bp_systolic", 141.0, "last"),),
              "bp-reminder-2026", "sms")
    assert store.record([n, n]) == 1  # the second copy (a replay) is not queued again
    rc = main(["outreach", "consume", "--nudges", "--group", "sms-gw", "--consumer", "c1",
               "--once", "--json", "--redis-url", redis_server.url])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(lines) == 1
    got = lines[0]
    assert got["nudge_id"] == n.nudge_id and got["reason"] == n.reason and got["variant"] == "sms"
    assert got["evidence"][0]["value"] == 141.0 and got["at_ns"] == T0 + 3600 * 10**9
    assert redis_client.xlen("vitalstream:nudges:dead") == 0  # nothing failed the schema
