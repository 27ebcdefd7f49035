"""Stale data on processing time, through the per-patient flow on a fake clock: a signal
that stops fires one ``no_data`` alert T after its last arrival, resolves when data comes
back, and a signal the patient never sent never fires."""

from __future__ import annotations

import math

import pytest

from vitalstream.model import Alert, Reading
from vitalstream.operators.check import Clocked
from vitalstream.operators.liveness import StaleData
from vitalstream.operators.patient import PatientFlow
from vitalstream.signals import Signal
from vitalstream.testing import FakeClock

NS = 1_000_000_000
T0 = 1_790_000_000 * NS


def test_silence_fires_once_at_t_after_the_last_arrival_and_data_resolves_it():
    clock = FakeClock(T0)
    flow = PatientFlow(stale=StaleData({"heart_rate": 600, "spo2": 600}))
    logic = Clocked(flow.build(key="p1"), clock)
    out = []
    for i in range(5):  # HR at 0..240 s, received 1 s after it was measured; no SpO2 ever
        t = T0 + i * 60 * NS
        clock.set(t + NS)
        out += logic.on_item(Reading("p1", "w", Signal.HEART_RATE, 70.0, "/min", t, t + NS))
    # last arrival 241 s: due at 841 s. Timers before that (windows closing) fire nothing.
    while (due := logic.notify_at()) is not None and due < T0 + 841 * NS:
        clock.set(due)
        out += logic.on_notify()
    assert [a for a in out if type(a) is Alert] == []
    assert logic.notify_at() == T0 + 841 * NS
    clock.set(T0 + 841 * NS)
    out += logic.on_notify()
    clock.set(T0 + 2000 * NS)
    out += logic.on_notify()  # still silent: no second alert
    t = T0 + 2100 * NS
    clock.set(t)
    out += logic.on_item(Reading("p1", "w", Signal.HEART_RATE, 72.0, "/min", t, t))
    alerts = [a for a in out if type(a) is Alert]
    assert [(a.rule, a.signal, a.state, (a.event_ns - T0) // NS) for a in alerts] == [
        ("no_data", "heart_rate", "firing", 841), ("no_data", "heart_rate", "resolved", 2100)]
    assert alerts[0].alert_id == alerts[1].alert_id and math.isnan(alerts[0].value)
    assert alerts[0].threshold == 600.0 and "10 min" in alerts[0].explanation


def test_bad_stale_settings_are_refused():
    with pytest.raises(ValueError):
        StaleData({"heart_rate": 0})
