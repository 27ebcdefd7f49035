"""NEWS2 inside the per-patient flow (packaged configuration): charted observations arrive as
readings of ``oxygen``, ``consciousness`` and ``spo2_scale``, the alarm fires on a move into
the high band held for 80 % of 10 minutes, and missing parameters are reported. Scores are
worked out by hand from the RCP 2017 chart in each comment."""

from __future__ import annotations

import calendar

from vitalstream.model import Alert, Reading
from vitalstream.operators.contract import drive
from vitalstream.operators.news2 import News2Result
from vitalstream.signals import Signal
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.settings import Settings

NS = 1_000_000_000
MIN = 60 * NS
T0 = calendar.timegm((2026, 10, 10, 12, 0, 0)) * NS
FLOW = patient_flow(Settings())
UNITS = {Signal.RESP_RATE: "/min", Signal.SPO2: "%", Signal.BP_SYSTOLIC: "mm[Hg]",
         Signal.HEART_RATE: "/min", Signal.BODY_TEMP: "Cel"}


def _r(t: int, sig: Signal, v: float) -> Reading:
    return Reading("p1", "d1", sig, float(v), UNITS.get(sig, "1"), t, t)


def _minutes(n: int, vitals: dict[Signal, float], chart: dict[Signal, float]) -> list[Reading]:
    rs = [_r(T0, s, v) for s, v in chart.items()]
    for i in range(n):
        rs += [_r(T0 + i * MIN + NS, s, v) for s, v in vitals.items()]
    return rs


def test_high_band_from_consciousness_alerts_after_eight_minutes():
    # RR 22 -> 2, SpO2 95 (scale 1) -> 1, air -> 0, SBP 105 -> 1, HR 112 -> 2, P (pain) -> 3,
    # temp 37.0 -> 0: total 9, high. No threshold rule covers these values or ACVPU, so the
    # NEWS2 alarm pages itself: high for 80 % of 10 min = 480 s, reached on the 9th minute's
    # readings (the first complete score is at 0 min + 1 s, so 8 min later).
    out = drive(FLOW.build(key="p1"), _minutes(15, {
        Signal.RESP_RATE: 22, Signal.SPO2: 95, Signal.BP_SYSTOLIC: 105, Signal.HEART_RATE: 112},
        {Signal.OXYGEN: 0, Signal.CONSCIOUSNESS: 3, Signal.BODY_TEMP: 37.0}))
    alerts = [a for a in out if type(a) is Alert]
    assert [(a.rule, a.state, a.severity, (a.event_ns - T0 - NS) // MIN) for a in alerts] == \
        [("news2", "firing", "critical", 8)]
    assert alerts[0].value == 9.0
    assert alerts[0].explanation.startswith("NEWS2 9 (high): resp_rate 2, spo2 1, bp_systolic 1, "
                                            "heart_rate 2, consciousness 3; red: consciousness")
    last = [x for x in out if type(x) is News2Result][-1].news2
    assert last.complete and last.score == 9


def test_spo2_scale_2_on_oxygen_scores_high_saturation():
    # scale 2 on oxygen: 97 % scores 3 (>= 97), air would score 0; oxygen itself scores 2.
    out = drive(FLOW.build(key="p1"), _minutes(2, {Signal.SPO2: 97},
                                               {Signal.SPO2_SCALE: 2, Signal.OXYGEN: 1}))
    last = [x for x in out if type(x) is News2Result][-1].news2
    assert last.scores()["spo2"] == 3 and last.scores()["oxygen"] == 2
    out = drive(FLOW.build(key="p1"), _minutes(2, {Signal.SPO2: 97},
                                               {Signal.SPO2_SCALE: 2, Signal.OXYGEN: 0}))
    last = [x for x in out if type(x) is News2Result][-1].news2
    assert last.scores()["spo2"] == 0 and last.scores()["oxygen"] == 0


def test_missing_parameters_are_reported_never_scored_as_normal():
    out = drive(FLOW.build(key="p1"), _minutes(3, {Signal.HEART_RATE: 135}, {}))
    last = [x for x in out if type(x) is News2Result][-1].news2
    assert last.score == 3 and not last.complete
    assert last.missing == ("resp_rate", "spo2", "oxygen", "bp_systolic", "consciousness",
                            "body_temp")


def test_a_code_outside_acvpu_is_not_evidence():
    out = drive(FLOW.build(key="p1"), _minutes(2, {Signal.HEART_RATE: 70},
                                               {Signal.CONSCIOUSNESS: 2.5}))
    last = [x for x in out if type(x) is News2Result][-1].news2
    assert "consciousness" in last.missing
