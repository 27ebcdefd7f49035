"""The bytewax runtime gives exactly what the reference runner gives, on 1 and 2 workers.

Every message carries the same receive time and the flow gets a fixed wall clock
at that time, so event time alone drives windows and rules in both runtimes
(the reference runner sets its wall clock to each message's receive time; here
that never moves). The constant is far in the future so that bytewax, which
wakes a step when its ``notify_at`` passes the real clock, is never woken by a
timer: whatever closes does so on event time or at EOF, as in the reference.
"""

from __future__ import annotations

import json
import threading
from importlib import resources

import pytest
import yaml
from bytewax.testing import cluster_main, run_main

from vitalstream.model import Alert, DeadLetter, Message, Reading, WindowAggregate
from vitalstream.operators.clock import FakeClock
from vitalstream.operators.normalise import Normaliser
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.shard import PatientHost
from vitalstream.operators.window import TumblingWindow
from vitalstream.stream.bytewax_flow import ListReceiver, ReceiverSource, WriterSink, build_flow
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.reference import run_reference

NS = 1_000_000_000
T0_S = 1795600800  # 2026-11-25T10:00:00Z
RECV = 4_000_000_000 * NS  # 2096: after any real clock this test meets


def _flow() -> PatientFlow:
    text = resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text()
    rules = RuleSet.from_dicts(yaml.safe_load(text)["rules"])
    return PatientFlow(TumblingWindow(60 * NS, 10 * NS), rules, rule_delay_ns=2 * NS)


def _ingest() -> Ingest:
    return Ingest(Normaliser(max_clock_skew_ns=None))


class _Collect:
    """A writer for ``WriterSink``: appends every item to one shared list."""

    def __init__(self, into: list, lock: threading.Lock) -> None:
        self.into, self.lock = into, lock

    def write(self, items: list) -> None:
        with self.lock:
            self.into.extend(items)


def _run_bytewax(parts: list[list[Message]], workers: int):
    outcomes, results, lock = [], [], threading.Lock()
    source = ReceiverSource(lambda i, n: ListReceiver(parts[i] if i < len(parts) else []))
    flow, _ = build_flow(source, _ingest, PatientHost(_flow()), WriterSink(lambda i: _Collect(outcomes, lock)),
                         WriterSink(lambda i: _Collect(results, lock)), shards=16,
                         clock=FakeClock(RECV))
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return outcomes, results


def _agg_key(a: WindowAggregate) -> tuple:
    return (a.patient, a.signal.value, a.device, a.start_ns, a.end_ns, a.count, a.min, a.max,
            a.mean, a.last)


def _alert_key(a: Alert) -> tuple:
    return (a.event_id, a.patient, a.rule, a.state, a.event_ns, a.episode_start_ns,
            repr(a.value), a.threshold, a.seq)


def _reading_key(r: Reading) -> tuple:
    return (r.patient, r.device, r.signal.value, r.event_ns, r.value, r.quality)


def _assert_same(msgs: list[Message], parts: list[list[Message]], workers: int):
    ref = run_reference(msgs, _flow(), _ingest)
    outcomes, results = _run_bytewax(parts, workers)
    aggs = [x for x in results if type(x) is WindowAggregate]
    alerts = [x for x in results if type(x) is Alert]
    assert len(aggs) + len(alerts) == len(results)
    assert sorted(map(_agg_key, aggs)) == sorted(map(_agg_key, ref.aggregates))
    assert sorted(map(_alert_key, alerts)) == sorted(map(_alert_key, ref.alerts))
    assert sorted(_reading_key(r) for r in outcomes if type(r) is Reading) == \
        sorted(map(_reading_key, ref.readings))
    assert sorted((d.topic, d.reason) for d in outcomes if type(d) is DeadLetter) == \
        sorted((d.topic, d.reason) for d in ref.dead_letters)
    return ref


def _json(device: str, patient: str, readings: list[tuple[str, float, int]]) -> Message:
    body = {"patient": patient, "readings": [
        {"signal": s, "value": v, "t": f"2026-11-25T10:{t // 60:02d}:{t % 60:02d}Z"}
        for s, v, t in readings]}
    return Message(f"vitalstream/{device}/json", json.dumps(body).encode(), RECV)


def _senml(device: str, records: list[dict]) -> Message:
    return Message(f"vitalstream/{device}/senml", json.dumps(records).encode(), RECV)


def _hand_messages() -> tuple[list[Message], list[Message]]:
    """Two patients per group; group A's devices go to worker 0, group B's to worker 1."""
    a: list[Message] = []
    b: list[Message] = []
    # p-tachy: HR 130 every 30 s from 10:00:00 to 10:08:00 (tachycardia: > 120 for 80 % of
    # 300 s, each reading holding until the next, fires at 10:04:00 with 240 s above), then
    # 100 from 10:08:30 (< clear 110: resolved).
    for k in range(17):
        a.append(_json("watch-1", "p-tachy", [("heart_rate", 130, 30 * k)]))
    a.append(_json("watch-1", "p-tachy", [("heart_rate", 100, 510), ("spo2", 97, 510)]))
    a.append(a[3])  # QoS 1 redelivery of an earlier message
    # p-crisis: one cuff reading of 185/95 (hypertensive crisis fires at once)
    a.append(_json("cuff-1", "p-crisis", [("bp_systolic", 185, 120), ("bp_diastolic", 95, 120)]))
    a.append(_json("cuff-1", "p-crisis", [("bp_systolic", 150, 900), ("bp_diastolic", 90, 900)]))
    # ox-7 (SenML, no patient: keyed by device): SpO2 as a ratio every 20 s, 0.83 from
    # 60 s to 200 s, 0.97 again at 220 s; one bad record, one pack naming another device.
    for k in range(12):
        b.append(_senml("ox-7", [{"bn": "ox-7:", "bt": T0_S + 20 * k, "n": "spo2", "u": "/",
                                  "v": 0.83 if 3 <= k <= 10 else 0.97},
                                 {"n": "heart_rate", "u": "beat/min", "v": 80 + k}]))
    b.append(_senml("ox-7", [{"bn": "ox-7:", "bt": T0_S + 400, "n": "spo2", "v": True}]))
    b.append(_senml("ox-7", [{"bn": "ox-8:", "bt": T0_S + 400, "n": "spo2", "v": 0.9}]))
    # a late reading for p-other's first window, arriving after that window closed
    b.append(_json("band-2", "p-other", [("heart_rate", 70, 5)]))
    b.append(_json("band-2", "p-other", [("heart_rate", 72, 200)]))
    b.append(_json("band-2", "p-other", [("heart_rate", 71, 10)]))  # window [0, 60) closed at 70 s
    return a, b


def _interleave(a: list[Message], b: list[Message]) -> list[Message]:
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i:i + 1] + b[i:i + 1]
    return out


def test_hand_messages_one_worker_same_as_reference():
    a, b = _hand_messages()
    msgs = _interleave(a, b)
    ref = _assert_same(msgs, [msgs], workers=1)
    fired = sorted((x.patient, x.rule, x.event_ns // NS - T0_S) for x in ref.alerts
                   if x.state == "firing")
    # tachycardia: above from 0 s, 240 s of the last 300 at 240 s; severe desaturation: < 85 %
    # from 60 s, fires 60 s later; desaturation (< 90 % for 40 % of 300 s = 120 s) fires at
    # 180 s; crisis at once at 120 s.
    assert fired == [("ox-7", "desaturation", 180), ("ox-7", "desaturation_severe", 120),
                     ("p-crisis", "hypertensive_crisis", 120), ("p-tachy", "tachycardia", 240)]
    resolved = sorted((x.patient, x.rule) for x in ref.alerts if x.state == "resolved")
    assert resolved == [("ox-7", "desaturation"), ("ox-7", "desaturation_severe"),
                        ("p-crisis", "hypertensive_crisis"), ("p-tachy", "tachycardia")]
    other = [(g.start_ns // NS - T0_S, g.count) for g in ref.aggregates if g.patient == "p-other"]
    assert other == [(0, 1), (180, 1)]  # the 10 s reading came after its window closed
    assert sorted(d.reason for d in ref.dead_letters) == ["bad_value", "identity_mismatch"]


def test_hand_messages_two_workers_split_by_device_same_as_reference():
    a, b = _hand_messages()
    _assert_same(_interleave(a, b), [a, b], workers=2)


def _scenario_messages() -> list[Message]:
    from vitalstream.simulators.scenario import Scenario

    sc = Scenario(patients=8, duration_s=600, seed=11, codec="mixed")
    return [Message(m.topic, m.payload, RECV) for m in sc.messages()]


def test_scenario_one_worker_same_as_reference():
    msgs = _scenario_messages()
    ref = _assert_same(msgs, [msgs], workers=1)
    assert len(ref.aggregates) > 8 * 10 and ref.dead_letters  # malformed messages included


def test_scenario_two_workers_split_by_device_same_as_reference():
    msgs = _scenario_messages()
    devices = sorted({m.topic.split("/")[1] for m in msgs})
    first = set(devices[::2])
    parts = [[m for m in msgs if m.topic.split("/")[1] in first],
             [m for m in msgs if m.topic.split("/")[1] not in first]]
    assert parts[0] and parts[1]
    _assert_same(msgs, parts, workers=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_empty_input_ends_cleanly(workers):
    outcomes, results = _run_bytewax([[], []], workers)
    assert outcomes == [] and results == []
