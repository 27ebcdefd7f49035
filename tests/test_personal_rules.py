"""Personalised detection, on by default: the packaged rules and detectors, through the
per-patient flow. Expected alert times are worked out in each test from the rule's form
and the patient's own level, which the test sets (e.g. HR alternating 63/67: mean 65,
standard deviation 2, the detector's floor)."""

from __future__ import annotations

import calendar

from vitalstream.model import Alert, Reading
from vitalstream.operators.contract import drive
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.personal import PersonalRule
from vitalstream.signals import Signal
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.settings import Settings

NS = 1_000_000_000
MIN = 60 * NS
H = 3600 * NS
DAY0 = calendar.timegm((2026, 10, 10, 0, 0, 0)) * NS  # midnight UTC
FLOW = patient_flow(Settings())  # the packaged configuration


def _hr(t_ns: int, v: float, sig: Signal = Signal.HEART_RATE, unit: str = "/min") -> Reading:
    return Reading("p1", "d1", sig, float(v), unit, t_ns, t_ns)


def _alerts(readings: list[Reading], flow: PatientFlow = FLOW) -> list[Alert]:
    return [x for x in drive(flow.build(key="p1"), readings) if type(x) is Alert]


def _resting(start_ns: int, minutes: int, low: float = 63, high: float = 67) -> list[Reading]:
    return [_hr(start_ns + i * MIN, low if i % 2 else high) for i in range(minutes)]


def test_packaged_configuration_has_personal_rules_below_clinical_priority():
    names = {p.name: p for p in FLOW.personal}
    assert {"hr_above_usual", "sbp_above_usual"} <= set(names)
    assert all(p.severity == "info" for p in FLOW.personal)
    assert {r.severity for r in FLOW.rules.rules} <= {"warning", "critical"}


def test_resting_65_patient_at_104_for_15_minutes_gets_a_personal_alert():
    # 3 h at 63/67 (10:00-13:00 UTC: day), then 104 for 15 min, then 65 again.
    # z = (104 - 65) / 2 = 19.5 >= 4 and 104 - 65 = 39 >= 25 /min: crossing from 13:00;
    # 80 % of 5 min = 240 s above -> fires on the 13:04 reading. 104 < 120: no threshold rule.
    start = DAY0 + 10 * H
    onset = start + 3 * H
    rs = _resting(start, 180) + [_hr(onset + i * MIN, 104) for i in range(15)] \
        + _resting(onset + 15 * MIN, 30)
    alerts = _alerts(rs)
    assert [(a.rule, a.state, (a.event_ns - onset) // MIN) for a in alerts] == \
        [("hr_above_usual", "firing", 4), ("hr_above_usual", "resolved", 15)]
    assert alerts[0].severity == "info"
    assert alerts[0].explanation == "HR 104 /min, usual 65 +- 2 at rest (day)"


def test_tachycardia_relative_95_to_110_that_never_crosses_120():
    # The trial's miss: resting in the 60s, then a sustained 95-110. 95 - 65 = 30 >= 25.
    start = DAY0 + 9 * H
    onset = start + 2 * H
    rise = [95, 102, 110, 98, 105, 100, 108, 96, 103, 99]
    rs = _resting(start, 120) + [_hr(onset + i * MIN, v) for i, v in enumerate(rise)]
    fired = [(a.rule, (a.event_ns - onset) // MIN) for a in _alerts(rs) if a.state == "firing"]
    assert fired == [("hr_above_usual", 4)]


def test_walking_is_scored_against_the_active_baseline_and_stays_quiet():
    # Same 104 /min for 15 min, but with 100 steps/min (walking cadence >= 60): the active
    # baseline has no data yet, so it is the population prior (75-170 /min), 104 is inside
    # it, and a prior never fires a personal rule (prior_z unset).
    start = DAY0 + 10 * H
    onset = start + 3 * H
    walk = []
    for i in range(15):
        walk += [_hr(onset + i * MIN, 104), _hr(onset + i * MIN + NS, 100, Signal.STEPS, "count")]
    rs = _resting(start, 180) + walk + _resting(onset + 15 * MIN, 30)
    assert _alerts(rs) == []


def test_circadian_rhythm_night_and_day_baselines_do_not_alert_each_morning():
    # 2.5 days: 55 /min at night (22-07 UTC) and 85 /min by day (30 /min apart, more than
    # min_delta 25). With one baseline every morning would fire; with day/night none does.
    rs = []
    for i in range(int(2.5 * 24 * 60)):
        t = DAY0 + i * MIN
        hour = (i // 60) % 24
        base = 85 if 7 <= hour < 22 else 55
        rs.append(_hr(t, base + (2 if i % 2 else -2)))
    assert [a for a in _alerts(rs) if a.rule == "hr_above_usual"] == []
    # the control: the same data with one baseline for day and night does fire
    import dataclasses
    from vitalstream.operators.anomaly.stage import AnomalyStage
    one = AnomalyStage.from_config({"heart_rate": {"kind": "ewz", "half_life_s": 21600,
                                                   "warmup_s": 3600, "split": []}})
    flow = dataclasses.replace(FLOW, anomaly=one, personal=(FLOW.personal[0],), news2=None,
                               news2_rule=None)
    assert [a.rule for a in _alerts(rs, flow) if a.state == "firing"][:1] == ["hr_above_usual"]


def test_single_reading_artefact_does_not_fire():
    start = DAY0 + 10 * H
    rs = _resting(start, 180) + [_hr(start + 180 * MIN, 140)] + _resting(start + 181 * MIN, 20)
    assert _alerts(rs) == []


def test_systolic_climbing_25_above_own_level_over_hours():
    # Cuff every 30 min from midnight for 58 h at 118/122 (mean 120, spread 2 -> floor
    # 3 mm[Hg]); then, at 10:00 (day: blood pressure has day and night baselines), a ramp
    # of 2.5 mm[Hg] per reading to 150 (k = 12, 6 h), held. The day baseline has ~66
    # readings' weight (half-life 3 days); ramp readings within 4 spreads (12 mm[Hg]: k <= 4)
    # are learned and move its mean by (2.5 + 5 + 7.5 + 10) / 66 < 0.5 mm[Hg], later ones
    # are not learned. So the bar 120 + 20 (+ < 0.5) is first met at k = 9 (142.5; k = 8 is
    # 140.0), and "2 of the last 3" fires at k = 10, 5 h into the rise. Below 180: no crisis.
    rs = []
    t = DAY0
    for i in range(116):
        rs += [_hr(t, 118 if i % 2 else 122, Signal.BP_SYSTOLIC, "mm[Hg]"),
               _hr(t, 75, Signal.BP_DIASTOLIC, "mm[Hg]")]
        t += 30 * MIN
    assert (t - DAY0) // H == 58
    ramp0 = t
    for k in range(1, 20):
        rs += [_hr(t, 120 + 2.5 * min(k, 12), Signal.BP_SYSTOLIC, "mm[Hg]"),
               _hr(t, 80, Signal.BP_DIASTOLIC, "mm[Hg]")]
        t += 30 * MIN
    fired = [(a.rule, (a.event_ns - ramp0) // (30 * MIN) + 1) for a in _alerts(rs)
             if a.state == "firing"]
    assert fired == [("sbp_above_usual", 10)]


def test_sparse_cuff_is_not_hidden_by_a_long_warm_up():
    # Hourly cuff: 6 readings at 118/122 are the baseline (warmup_n 6, no minimum age),
    # so a rise to 150 on the 7th and 8th reading fires on the 8th, 8 h after the first
    # reading; a 1-h/30-reading warm-up would have scored them against the population.
    rs = []
    for i, v in enumerate([118, 122, 118, 122, 118, 122, 150, 151]):
        rs.append(_hr(DAY0 + 8 * H + i * H, v, Signal.BP_SYSTOLIC, "mm[Hg]"))
    fired = [(a.rule, (a.event_ns - DAY0 - 8 * H) // H) for a in _alerts(rs)
             if a.state == "firing"]
    assert fired == [("sbp_above_usual", 7)]


def test_personal_rule_refuses_bad_config():
    import pytest

    from vitalstream.errors import ConfigError
    for bad in ({"signal": "heart_rate"}, {"name": "x", "signal": "nope"},
                {"name": "x", "signal": "heart_rate", "direction": "up"},
                {"name": "x", "signal": "heart_rate", "z": 2, "clear_z": 3}):
        with pytest.raises(ConfigError):
            PersonalRule.from_dict(bad)
