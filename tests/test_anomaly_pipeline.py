"""Anomaly scores inside the per-patient flow: a rule on ``anomaly_score`` catches
each simulated tachycardia without any fixed HR threshold, and stays quiet for
healthy patients who fidget (a few steps a minute is not exercise)."""

from __future__ import annotations

import dataclasses
import pickle

from vitalstream.stream.settings import load
from vitalstream.model import Message
from vitalstream.operators.anomaly.stage import PatientScore
from vitalstream.operators.normalise import Normaliser
from vitalstream.operators.rules import RuleSet
from vitalstream.simulators.scenario import Scenario
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.reference import run_reference

T0 = 4_000_000_000_000_000_000  # receive time after every event: only event time matters
UNUSUAL = {"name": "unusual_for_patient", "signal": "anomaly_score", "op": ">", "threshold": 4.5,
           "clear": 3, "for_s": 120, "severity": "info"}


def _run(sc: Scenario):
    flow = dataclasses.replace(patient_flow(load(env={})), rules=RuleSet.from_dicts([UNUSUAL]))
    msgs = [Message(m.topic, m.payload, T0) for m in sc.messages()]
    return run_reference(msgs, flow, lambda: Ingest(Normaliser(None)), start_wall_ns=T0)


def test_rule_on_anomaly_score_fires_once_per_tachycardia_and_never_for_healthy():
    sc = Scenario(patients=12, duration_s=3600, seed=2, codec="json",
                  profiles=["tachycardia"] * 4 + ["healthy"] * 8)
    res = _run(sc)
    episodes = {g["patient"]: g for g in sc.ground_truth() if g["type"] == "episode"}
    assert len(episodes) == 4
    firing = [a for a in res.alerts if a.state == "firing"]
    assert sorted(a.patient for a in firing) == sorted(episodes)
    for a in firing:
        ep = episodes[a.patient]
        # Flagged during the episode, within 5 minutes of its onset.
        assert ep["onset_ns"] <= a.event_ns <= ep["onset_ns"] + 300 * 10**9


def test_scores_explain_themselves_and_are_finite():
    sc = Scenario(patients=3, duration_s=1200, seed=9, codec="senml", profiles=["healthy"] * 3)
    res = _run(sc)
    scores = [x for x in res.scores if type(x) is PatientScore]
    assert len(scores) > 500
    for x in scores:
        e = x.score.explanation
        assert x.score.score >= 0 and x.score.score == x.score.score
        assert e.signal in {"heart_rate", "spo2", "resp_rate", "body_temp", "bp_systolic"}
        assert e.baseline_n >= 0 and e.context
    warm = [x for x in scores if x.score.explanation.warmup]
    assert warm and all(x.score.explanation.source.startswith("prior") for x in warm)


def test_anomaly_state_survives_snapshot_and_resume():
    """A restart does not reset baselines: the stage's snapshot pickles and resumes equal."""
    flow = patient_flow(load(env={}))
    sc = Scenario(patients=1, duration_s=900, seed=3, codec="json", profiles=["healthy"])
    from vitalstream.operators.clock import FakeClock
    from vitalstream.operators.check import Clocked
    from vitalstream.operators.shard import PatientHost

    ingest = Ingest(Normaliser(None))
    readings = []
    for m in sc.messages():
        out: list = []
        ingest.process(Message(m.topic, m.payload, T0), out)
        readings += [o for o in out if type(o).__name__ == "Reading"]
    half = len(readings) // 2
    a = Clocked(PatientHost(flow).build(), FakeClock(T0))
    first = a.on_batch(readings[:half])
    b = Clocked(PatientHost(flow).build(pickle.loads(pickle.dumps(a.snapshot()))), FakeClock(T0))
    rest_a = a.on_batch(readings[half:]) + a.on_eof()
    rest_b = b.on_batch(readings[half:]) + b.on_eof()
    sa = [(x.score.event_ns, x.score.score) for x in rest_a if type(x) is PatientScore]
    sb = [(x.score.event_ns, x.score.score) for x in rest_b if type(x) is PatientScore]
    assert first and sa and sa == sb
