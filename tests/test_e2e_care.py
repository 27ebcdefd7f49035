"""The care stage live: MQTT -> bytewax (stage A, then the care step keyed by person) -> Redis.

Over real mosquitto, Redis and VictoriaMetrics, a hypertensive patient's home readings of
the past days (device times trusted) make the pipeline tag them; a care-team command
(a manual tag) reaches the running stage through Redis; an identity merge made before
the run puts a merged id's readings on the person. Expected times come from the
guideline's definition over the published readings (tests/test_profile.py's batch scan).
"""

from __future__ import annotations

import dataclasses
import json
import time

import paho.mqtt.publish as mqtt_publish
import pytest
import redis

from vitalstream.care import CareEvent
from vitalstream.connectors.persons import PersonRegistry
from vitalstream.sinks.profiles import ProfileStore
from vitalstream.stream import assembly
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics
from vitalstream.testing import wait_for
from vitalstream.timeutil import to_datetime

from test_profile import DAY, first_guideline_time, home_bp


def _payloads(readings) -> list[tuple[str, str]]:
    by_time: dict[tuple[str, int], list] = {}
    for r in readings:
        by_time.setdefault((r.patient, r.event_ns), []).append(r)
    out = []
    for (patient, t), rs in sorted(by_time.items(), key=lambda kv: kv[0][1]):
        out.append((f"vitalstream/cuff-{patient}/json", json.dumps(
            {"v": 1, "device": f"cuff-{patient}", "patient": patient,
             "readings": [{"signal": r.signal.value, "value": r.value, "unit": r.unit,
                           "t": to_datetime(t).isoformat()} for r in rs]})))
    return out


POLICY = """
timezone: UTC
strategies:
  - name: hypertension-welcome
    when: {tag_set: hypertension}
    send: {kind: care-task, channel: care-team, message: "New hypertension tag: review."}
    experiment:
      name: welcome-2026
      seed: welcome-v1
      variants: {holdout: 0.5, call: 0.5}
"""


@pytest.fixture(scope="module")
def run(mosquitto, redis_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-care")
    (tmp / "nudges.yaml").write_text(POLICY)
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    start = (time.time_ns() // DAY - 10) * DAY  # ten days ago, midnight UTC
    htn = home_bp("p-care", 152, 96, days=8, seed=41, p_measure=1.0, start_ns=start)
    merged = home_bp("p-old-id", 150, 95, days=8, seed=42, p_measure=1.0, start_ns=start)
    PersonRegistry(client).link("p-person", "patient", "p-old-id", by="test")
    store = ProfileStore(client)
    with VictoriaMetrics(tmp / "vm") as vm:
        s = settings_for(mosquitto.url, redis_server.url, vm.url, tmp / "spool", max_clock_skew_s=None)
        # a bounded run stops 3 s after the last message: commands are polled faster than that
        s = dataclasses.replace(s, care=dataclasses.replace(s.care, commands_poll_s=0.2,
                                                            nudges=str(tmp / "nudges.yaml")))
        pipeline_resolver = assembly.resolver(s)  # payload patient, then the person registry
        with PipelineRun(s, idle_stop_s=3.0, patient_resolver=pipeline_resolver) as prun:
            msgs = [(t, p, 1, False) for t, p in _payloads(htn + merged)]
            host, port = mosquitto.url.split("//")[1].split(":")
            for i in range(0, len(msgs), 50):
                mqtt_publish.multiple([{"topic": t, "payload": p, "qos": 1} for t, p, _, _ in msgs[i:i + 50]],
                                      hostname=host, port=int(port))
            store.command(CareEvent("p-care", "manual-tag", time.time_ns(), "low-activity"))
            wait_for(lambda: store.cohort("hypertension"), "a hypertension tag", timeout_s=30)
            totals = prun.join()
        stored = vm.export('{__name__="vitals_value", device="cuff-p-old-id"}')
        report = _report(redis_server.url, vm.url, tmp)
    return {"store": store, "htn": htn, "merged": merged, "totals": totals, "client": client,
            "stored": stored, "report": report}


def _report(redis_url: str, vm_url: str, tmp) -> tuple[int, str]:
    import contextlib
    import io

    from vitalstream.stream.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["experiment", "report", "welcome-2026", "--out", str(tmp / "report"),
                   "--nudges", str(tmp / "nudges.yaml"), "--redis-url", redis_url,
                   "--influx-url", vm_url])
    return rc, buf.getvalue()


def test_pipeline_tags_the_hypertensive_patient_when_the_evidence_is_complete(run):
    store = run["store"]
    expected = first_guideline_time(run["htn"], 130, 80)
    tag = store.tags("p-care")["hypertension"]["effective"]
    assert tag["start_ns"] == expected and tag["source"] == "derived"
    assert run["totals"]["tag_changes"] >= 2


def test_care_team_command_reaches_the_running_stage(run):
    tags = run["store"].tags("p-care")
    assert tags["low-activity"]["effective"]["source"] == "manual"


def test_merged_id_readings_are_profiled_as_the_person_but_stored_with_their_device(run):
    store = run["store"]
    expected = first_guideline_time(run["merged"], 130, 80)
    assert store.tags("p-old-id") == {}
    assert store.tags("p-person")["hypertension"]["effective"]["start_ns"] == expected
    members = dict(store.cohort("hypertension"))
    assert set(members) == {"p-care", "p-person"}
    # the welcome task of the packaged policy went to the person, not to the old id
    assert any(n["strategy"] == "hypertension-welcome" for n in store.nudges("p-person"))
    assert store.nudges("p-old-id") == []
    # raw readings keep their device; after the merge they are stored under the person
    assert {x["metric"]["patient"] for x in run["stored"]} == {"p-person"}
    assert sum(len(x["values"]) for x in run["stored"]) == len(run["merged"])


def test_live_experiment_outcomes_equal_a_batch_recomputation_from_the_stores(run):
    """Exposures (Redis) and readings (VictoriaMetrics, read back) give, in batch, exactly
    the outcome records the running pipeline streamed."""
    store = run["store"]
    exposures = store.exposures("welcome-2026")
    assert {e.patient for e in exposures} == {"p-care", "p-person"}  # one per person, ITT
    outcomes = store.outcomes("welcome-2026")
    measured = [o for o in outcomes if o["metric"] == "measured_within_86400s:bp_systolic"]
    assert len(measured) == 2 and all(o["value"] == 1.0 for o in measured)  # twice a day
    # the bounded run's end closed the longer windows too (30-day trend, 14-day TIR): with
    # what had come, which is what the batch recomputation has as well
    rc, out = run["report"]
    verify = next(line for line in out.splitlines() if line.startswith("verify:"))
    assert rc == 0 and verify.endswith(": equal") and "time-series store" in verify
    assert f"{len(outcomes)} streamed outcome records" in verify
