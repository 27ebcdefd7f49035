"""The closed chronic-care loop (``stream.care_sim``): simulated patients, the real care
stage, Redis, and the reminders fed back to the patients.

Outcomes: the records the stream stored in Redis equal ``batch_outcomes`` over the
exposures read back from Redis and the readings the loop stored, exactly.

Known effect, end to end, with the real nudge engine deciding who is reminded (policy:
the packaged one, its experiment 50 % holdout / 50 % sms). The simulated sms response is
+0.25 vs the holdout's 0; the outcome is "measured within 2 days of the exposure"
(a reminder acts the day after it was sent). Size chosen on seeds 100-119: 1000
patients, 16 days, power 0.90 there. Measured here on seeds 1000-1019 (detected by the
always-valid CS, looked at after every exposure, in 18 of 20 runs; asserted >= 0.75) and,
for the null (sms response 0 as the holdout's), 40 runs of 400 patients on seeds
2000-2039 (false detection 1 of 40; asserted <= alpha + 3 SE = 0.153). These runs keep
the profile out of the stage (``profile=False``: the programme is the enrolment) and
write nothing to Redis, to stay within ~30 s.
"""

from __future__ import annotations

import doctest
import json
import math
from importlib import resources

import numpy as np
import yaml

import vitalstream.stream.care_sim as care_sim
import vitalstream.stream.experiment_cli as experiment_cli
from vitalstream.care import Exposure, Nudge, NudgeSuppressed
from vitalstream.operators.experiment.outcomes import OutcomeRecord, batch_outcomes
from vitalstream.operators.experiment.stats import diff_confidence_sequence
from vitalstream.operators.nudge import NudgePolicy
from vitalstream.simulators.adherence import DAY_NS, AdherenceCohort
from vitalstream.sinks.profiles import ProfileStore
from vitalstream.stream.care_sim import SIM_METRICS, simulate, stored_readings
from vitalstream.stream.cli import main

ALPHA = 0.05
TWO_DAYS = SIM_METRICS[1].name


def _two_arm_policy() -> NudgePolicy:
    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/nudges-default.yaml").read_text())
    exp = doc["strategies"][0]["experiment"]
    exp["variants"] = {"holdout": 0.5, "sms": 0.5}
    exp.pop("overrides")
    return NudgePolicy.from_dict(doc)


POLICY = _two_arm_policy()


def _detected(run) -> bool:
    recs = sorted((r for r in run.outcomes if r.metric == TWO_DAYS and r.value is not None),
                  key=lambda r: (r.exposed_ns, r.patient))
    y = np.array([r.value for r in recs])
    a = np.array([r.variant == "sms" for r in recs])
    return diff_confidence_sequence(y, a, 0.5, ALPHA).ever_excludes(0)


def test_streamed_outcomes_in_redis_equal_batch_over_the_stored_events(redis_client):
    store = ProfileStore(redis_client)
    run = simulate(AdherenceCohort(150, seed=11), 14, policy=POLICY, store=store)
    name = run.experiment.name
    stored = sorted((OutcomeRecord(**d) for d in store.outcomes(name)),
                    key=lambda r: (r.experiment, r.patient, r.metric))
    exposures = store.exposures(name)
    readings = stored_readings(redis_client)
    assert len(readings) == len(run.readings) > 1000
    batch = batch_outcomes(exposures + readings, SIM_METRICS, experiment=name, until_ns=run.until_ns)
    assert len(stored) > 150 and stored == batch
    # every exposure the engine emitted is stored, once, and each has its closed windows
    assert {(e.patient, e.variant, e.at_ns) for e in exposures} == \
        {(e.patient, e.variant, e.at_ns) for e in run.exposures}
    closed = {e.patient for e in exposures if e.at_ns + 2 * DAY_NS <= run.until_ns}
    assert {r.patient for r in stored if r.metric == TWO_DAYS} == closed


def test_the_loop_feeds_the_engine_s_reminders_back():
    """Who the simulator reminds on a day is exactly who the engine sent the strategy's
    nudge to (or held out) the day before; nobody is reminded before an exposure."""
    run = simulate(AdherenceCohort(120, seed=3), 12, policy=POLICY, profile=False)
    per_day: dict[int, int] = {}
    for x in run.outputs:
        if (type(x) is Nudge and x.strategy == "bp-missing") or \
                (type(x) is NudgeSuppressed and x.reason == "holdout"):
            per_day.setdefault((x.at_ns - run.start_ns) // DAY_NS, set()).add(x.patient)
    # the last day's reminders would act on a day that was not simulated
    assert run.nudged_days == sum(len(v) for d, v in per_day.items() if d < 11) > 50
    first = {}
    for x in run.outputs:
        if type(x) is Exposure:
            first.setdefault(x.patient, x.at_ns)
    for x in run.nudges:
        if x.strategy == "bp-missing":
            assert x.at_ns >= first[x.patient] and x.variant == "sms"


def test_known_effect_is_detected_and_a_null_one_is_not():
    runs = 20
    detect = 0
    for seed in range(1000, 1000 + runs):
        run = simulate(AdherenceCohort(1000, seed=seed, response_prob={"holdout": 0.0, "sms": 0.25}),
                       16, policy=POLICY, profile=False)
        assert 0.1 < run.true_effect("sms") < 0.25  # 0.25 * P(not measuring anyway)
        detect += _detected(run)
    null_runs = 40
    wrong = sum(_detected(simulate(AdherenceCohort(400, seed=s, response_prob={"holdout": 0.0, "sms": 0.0}),
                                   16, policy=POLICY, profile=False))
                for s in range(2000, 2000 + null_runs))
    print(f"detected {detect}/{runs}, null false detections {wrong}/{null_runs}")
    assert detect / runs >= 0.75, detect / runs
    assert wrong / null_runs <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / null_runs), wrong / null_runs


def test_cli_simulate_then_report_writes_table_png_and_checks_the_stream(redis_client, tmp_path, capsys):
    url = redis_client.connection_pool.connection_kwargs
    url = f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}"
    assert main(["care", "simulate", "--patients", "120", "--days", "12", "--seed", "5",
                 "--redis-url", url]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["patients"] == 120 and summary["experiment"] == "bp-reminder-2026"
    store = ProfileStore(redis_client)
    exposures = store.exposures("bp-reminder-2026")
    by_variant = {v: sum(1 for e in exposures if e.variant == v) for v in ("holdout", "sms", "app")}
    assert summary["exposures"] == by_variant and sum(by_variant.values()) > 60
    queued = [e for e in redis_client.xrange("vitalstream:nudges")]
    assert summary["nudges_sent"] == len(queued) > 0
    assert sum(summary["suppressed"].values()) == sum(store.suppressed().values())
    assert summary["suppressed"]["holdout"] >= by_variant["holdout"]
    assert summary["tags_set"]["hypertension"] == len(store.cohort("hypertension"))
    # a second run into the same experiment refuses (the exposures would mix)
    assert main(["care", "simulate", "--patients", "10", "--days", "2", "--redis-url", url]) == 2
    capsys.readouterr()

    out = tmp_path / "reports"
    assert main(["experiment", "report", "bp-reminder-2026", "--out", str(out), "--redis-url", url]) == 0
    text = capsys.readouterr().out
    png = out / "bp-reminder-2026.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    table = (out / "bp-reminder-2026.txt").read_text()
    assert table in text and f"metric {TWO_DAYS}" in table
    for v in ("holdout", "sms", "app"):
        assert f"\n{v} " in table
    assert str(png) in text
    verify = next(line for line in text.splitlines() if line.startswith("verify:"))
    assert verify.endswith(": equal") and "vitalstream:care:sim:readings" in verify
    body = json.loads((out / "bp-reminder-2026.json").read_text())
    assert body["counts"] == by_variant


def test_report_says_when_it_could_not_compare(redis_client, tmp_path, capsys):
    """Exposures and outcomes without stored readings (the live pipeline's case)."""
    store = ProfileStore(redis_client)
    run = simulate(AdherenceCohort(60, seed=2), 8, store=store, profile=False)
    redis_client.delete(care_sim.READINGS_STREAM)
    args = type("A", (), {"nudges": None, "json": False})()
    assert experiment_cli.report_from_redis(store, run.experiment.name, tmp_path, args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("verify:"))
    assert "not compared" in line


def test_doctests():
    for mod in (care_sim, experiment_cli):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0, mod.__name__
