"""Readings that waited in a queue are judged by when they were received.

Found by benchmarks/pipeline_bench.py: under a backlog, patients' clocks ran on
processing time, so queued readings arrived "late for rules" and alerts were
lost. Here the processing runs 30 s behind the receive times and timers fire
between batches, as a runtime's would.
"""

from __future__ import annotations

from vitalstream.model import Alert, Reading
from vitalstream.operators.clock import FakeClock
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.check import Clocked
from vitalstream.operators.shard import PatientHost
from vitalstream.operators.window import TumblingWindow
from vitalstream.signals import Signal

NS = 10**9
T0 = 1_764_064_800 * NS  # event times
RECV0 = 1_900_000_000 * NS  # receive times, on the runtime's clock
RULE = {"name": "tachy", "signal": "heart_rate", "op": ">", "threshold": 120, "clear": 110}


def _flow() -> PatientFlow:
    return PatientFlow(TumblingWindow(60 * NS, 10 * NS), RuleSet.from_dicts([RULE]), 2 * NS)


def _readings(patient: str) -> list[Reading]:
    # one reading a second, received a second apart; 130 /min from 10 s to 14 s
    return [Reading(patient, "d", Signal.HEART_RATE, 130.0 if 10 <= i < 15 else 70.0, "/min",
                    T0 + i * NS, RECV0 + i * NS) for i in range(40)]


def _run(backlog_s: int, caught_up) -> tuple[list, tuple[int, int]]:
    system = FakeClock(RECV0 + backlog_s * NS)
    host = Clocked(PatientHost(_flow(), idle_grace_ns=30 * NS, caught_up=caught_up).build(), system)
    readings = [r for p in ("a", "b") for r in _readings(p)]
    readings.sort(key=lambda r: r.recv_ns)
    out = []
    for k in range(0, len(readings), 6):
        system.advance(NS // 2)  # processing is faster than arrival: the backlog shrinks
        out += host.on_notify()
        out += host.on_batch(readings[k:k + 6])
        out += host.on_notify()
    out += host.on_eof()
    return [(a.patient, a.state, a.event_ns) for a in out if type(a) is Alert], host.late_counts()


def test_backlog_shorter_than_grace_loses_no_alert():
    alerts, late = _run(backlog_s=25, caught_up=lambda: False)
    assert late == (0, 0)
    for p in ("a", "b"):
        assert (p, "firing", T0 + 10 * NS) in alerts
        assert (p, "resolved", T0 + 15 * NS) in alerts


def test_same_alerts_with_and_without_backlog():
    without, _ = _run(backlog_s=0, caught_up=lambda: True)
    with_backlog, _ = _run(backlog_s=25, caught_up=lambda: False)
    assert sorted(with_backlog) == sorted(without)


def test_patient_processed_slower_than_real_time_is_never_late():
    """Receive times 1.2 s apart for readings 1 s apart (the broker holds the backlog):
    the patient's clock must follow its own data, not run ahead of it."""
    system = FakeClock(RECV0)
    host = Clocked(PatientHost(_flow()).build(), system)
    out = []
    for i in range(120):
        system.set(RECV0 + i * 1_200_000_000)
        r = Reading("a", "d", Signal.HEART_RATE, 130.0 if 60 <= i < 65 else 70.0, "/min",
                    T0 + i * NS, system.now_ns())
        out += host.on_notify()
        out += host.on_batch([r])
    out += host.on_eof()
    assert host.late_counts() == (0, 0)
    assert [(a.state, a.event_ns) for a in out if type(a) is Alert] == [
        ("firing", T0 + 60 * NS), ("resolved", T0 + 65 * NS)]
