"""The rule condition forms (operators/persistence.py) and episode ends, on hand-worked timelines.

Each timeline is written out in the test with the arithmetic that gives its answer;
the last tests run the forms inside the per-patient flow on a fake clock.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from vitalstream.errors import ConfigError
from vitalstream.model import AlertState, Quality, Reading, alert_id
from vitalstream.operators.check import Clocked
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.persistence import (Consecutive, CountWithin, FractionWithin,
                                               PersistState, form_from_dict)
from vitalstream.operators.rules import Rule, RuleLogic, RuleSet
from vitalstream.signals import Signal
from vitalstream.testing import FakeClock

NS = 1_000_000_000
MIN = 60 * NS
H = 3600 * NS
T0 = 1_790_000_000 * NS


def _r(t_ns: int, v: float, sig: Signal = Signal.HEART_RATE, q: Quality = Quality.OK) -> Reading:
    return Reading("p1", "d1", sig, float(v), "/min", T0 + t_ns, T0 + t_ns, "json", q)


def _feed(rule: dict, timeline: list[tuple[int, float]], sig: Signal = Signal.HEART_RATE):
    logic = RuleLogic(Rule.from_dict(rule), "p1")
    return [(a.state, (a.event_ns - T0) / NS) for t, v in timeline
            for a in logic.on_reading(_r(t, v, sig))]


BRADY_COUNT = {"name": "brady", "signal": "heart_rate", "op": "<=", "threshold": 40, "clear": 45,
               "count": {"n": 3, "within_s": 600}}


def test_count_fires_on_a_value_oscillating_around_the_threshold():
    # 39, 42, 40, 43, 39 at 1/min: readings <= 40 at 0, 2 and 4 min: the third hit at 240 s.
    # A "<= 40 for 120 s" rule never fires here: no two consecutive readings are <= 40.
    tl = [(i * MIN, v) for i, v in enumerate([39, 42, 40, 43, 39])]
    assert _feed(BRADY_COUNT, tl) == [("firing", 240.0)]
    assert _feed(dict(BRADY_COUNT, count=None, for_s=120), tl) == []


def test_count_one_wild_reading_does_not_fire_and_old_hits_drop_out():
    # hits at 0, 6 and 12 min: never 3 within 10 min (at 12 min the window is [2, 12] min:
    # only the 6- and 12-min hits are in it).
    tl = [(0, 38), (3 * MIN, 70), (6 * MIN, 38), (9 * MIN, 70), (12 * MIN, 38)]
    assert _feed(BRADY_COUNT, tl) == []


def test_count_of_m_is_the_historical_n_of_m():
    st = PersistState()
    form = CountWithin(2, of=3)
    # hits at readings 1 and 4 of [T, F, F, T]: the last 3 are F, F, T: one hit
    assert [form.step(st, c, i, False) for i, c in enumerate([True, False, False, True])] == \
        [None, None, None, None]
    assert form.step(st, True, 4, False) == 3  # last 3: F, T, T -> starts at the first hit


def test_fraction_is_time_weighted_not_counted():
    # 5-s readings above for 4 min then 1-min readings: what counts is time, not readings.
    # fraction 0.8 of 300 s = 240 s. Readings every 30 s above from 0: at t the time above is
    # t (each reading covers until the next), so the rule fires at 240 s.
    rule = {"name": "tachy", "signal": "heart_rate", "op": ">", "threshold": 120, "clear": 110,
            "fraction": {"min": 0.8, "within_s": 300, "hold_s": 120}}
    tl = [(k * 30 * NS, 130) for k in range(12)]
    assert _feed(rule, tl) == [("firing", 240.0)]


def test_fraction_a_reading_holds_only_for_hold_s():
    # above at 0 and 200 s, hold 60 s: the 0-s reading covers [0, 60) only, so at 260 s the
    # time above is 60 + 60 = 120 of 300 -> 40 %: below 50 %, no alert; with hold 300 the
    # 0-s reading covers [0, 200): 200 s >= 150 s when the 200-s reading arrives -> fires.
    base = {"name": "x", "signal": "heart_rate", "op": ">", "threshold": 120, "clear": 110}
    tl = [(0, 130), (200 * NS, 130), (260 * NS, 130)]
    short = dict(base, fraction={"min": 0.5, "within_s": 300, "hold_s": 60})
    long_ = dict(base, fraction={"min": 0.5, "within_s": 300, "hold_s": 300}, max_gap_s=600)
    assert _feed(short, tl) == []
    assert _feed(long_, tl) == [("firing", 200.0)]


def test_fraction_single_spike_never_fires_at_one_per_minute():
    rule = {"name": "desat", "signal": "spo2", "op": "<", "threshold": 90, "clear": 92,
            "fraction": {"min": 0.4, "within_s": 300, "hold_s": 120}}
    # one reading at 60 % among 97s: it covers 60 s of 300 = 20 % < 40 %
    tl = [(i * MIN, 60 if i == 5 else 97) for i in range(15)]
    assert _feed(rule, tl, Signal.SPO2) == []


BRADY_FRACTION = {"name": "brady", "signal": "heart_rate", "op": "<=", "threshold": 40,
                  "clear": 45, "fraction": {"min": 0.3, "within_s": 600, "hold_s": 120}}


def _alerts(rule: dict, timeline: list[tuple[int, float]]):
    logic = RuleLogic(Rule.from_dict(rule), "p1")
    return [a for t, v in timeline for a in logic.on_reading(_r(t, v))]


def test_fraction_never_fires_on_a_reading_back_past_clear():
    # 60 at 0-4 min, 39 at 5, 6, 7 min, then 60 at 8 and 9 min (the packaged bradycardia:
    # <= 40 for 0.3 of 600 s = 180 s, hold 120 s, clear 45).
    # At 7 min: [5,6) + [6,7) = 120 s. At 8 min: + [7,8) = 180 s >= 180 s, but the 8-min
    # reading is 60, back past clear 45: no episode opens on it (it would be resolved by
    # the very next reading). At 9 min: window [-1, 9] min, still 180 s, and 60 again:
    # nothing. Consecutive(180 s) gives the same: 39 at 5 min and 60 at 8 min.
    tl = [(i * MIN, v) for i, v in enumerate([60] * 5 + [39, 39, 39, 60, 60])]
    assert _alerts(BRADY_FRACTION, tl) == []
    assert _feed(dict(BRADY_FRACTION, fraction=None, for_s=180), tl) == []


def test_fraction_opens_at_the_next_crossing_reading_while_the_fraction_still_holds():
    # 39 at 0, 1, 2 min, 60 at 3 min, 39 at 4 min.
    # 3 min: [0,3) = 180 s >= 180 s, but 60 is back past clear: none.
    # 4 min: window [-6, 4] min: [0,3) = 180 s (60 at 3 min covers [3,4) off the alarm
    # side), and 39 is <= 40: fires at 4 min, the episode starting at the first hit (0).
    tl = [(i * MIN, v) for i, v in enumerate([39, 39, 39, 60, 39])]
    (a,) = _alerts(BRADY_FRACTION, tl)
    assert (a.state, (a.event_ns - T0) / MIN, a.value, a.episode_start_ns) == \
        ("firing", 4.0, 39.0, T0)
    assert a.explanation == "HR 39 /min: <= 40 /min for 30% of 10 min"


def test_fraction_in_band_readings_do_not_open_and_the_evidence_ages_out():
    # 39 at 0, 1, 2 min, then 42 (between threshold 40 and clear 45) at 3-15 min, 39 at 16.
    # 3 min: [0,3) = 180 s, but 42 is not <= 40: none (before the fix: fired here, quoting
    # "HR 42 /min: <= 40 /min"). 4-15 min: 42s only add time off the alarm side. 16 min:
    # window [6, 16] min: the hits of 0-2 min are out of it, [15,16) is 42: 0 s: none.
    tl = [(i * MIN, 39 if i < 3 or i == 16 else 42) for i in range(17)]
    assert _alerts(BRADY_FRACTION, tl) == []
    # a solid run of 39 at 0-3 min fires on its last reading, as Consecutive(180 s) does
    solid = [(i * MIN, 39) for i in range(4)]
    assert _feed(BRADY_FRACTION, solid) == [("firing", 180.0)]
    assert _feed(dict(BRADY_FRACTION, fraction=None, for_s=180), solid) == [("firing", 180.0)]


def test_fraction_form_keeps_evidence_of_non_crossing_readings_but_answers_only_on_crossing():
    # min 0.5 of 240 s = 120 s, hold 120 s; readings at 0-4 min: F, T, T, F, F, T
    # 3 min (F): [1,2) + [2,3) = 120 s: met, but not crossing -> None
    # 4 min (F): window [0, 4] min: still 120 s ([3,4) is F) -> None
    # 5 min (T): window [1, 5] min: [1,2) + [2,3) = 120 s -> fires, started at 1 min
    form, st = FractionWithin(0.5, 240, 120), PersistState()
    got = [form.step(st, c, t * MIN, False)
           for t, c in enumerate([False, True, True, False, False, True])]
    assert got == [None, None, None, None, None, MIN]
    # 6 min (T): window [2, 6] min: [2,3) + [5,6) = 120 s -> still met, start 2 min
    assert form.step(st, True, 6 * MIN, False) == 2 * MIN


def test_an_episode_opens_only_on_a_crossing_reading_whatever_the_form_says():
    # A form that always answers "started at 0" (Form is a protocol: a later form might):
    # Episode still opens only on a reading past the threshold, the one its alert names.
    class Always:
        continuous = False

        def step(self, st, crossing, t, gap_broken):
            return 0

        def describe(self):
            return "always"

    rule = Rule.from_dict(dict(BRADY_FRACTION, fraction=None))
    logic = RuleLogic(dataclasses.replace(rule, form=Always()), "p1")
    out = [a for t, v in [(0, 60), (MIN, 43), (2 * MIN, 40)] for a in logic.on_reading(_r(t, v))]
    assert [(a.state, (a.event_ns - T0) / MIN, a.value) for a in out] == [("firing", 2.0, 40.0)]


def test_gap_cancels_pending_only_where_continuity_matters():
    # above at 0 and 100 s, then a 400-s hole (max_gap 300), then above at 500 s:
    # for_s 120 (continuous): pending restarts at 500 s, fires at 620 s.
    # continuous: false: pending since 0 s survives the hole and fires at 500 s.
    base = {"name": "x", "signal": "heart_rate", "op": ">", "threshold": 120, "clear": 110,
            "for_s": 120, "max_gap_s": 300}
    tl = [(0, 130), (100 * NS, 130), (500 * NS, 130), (620 * NS, 130)]
    assert _feed(base, tl) == [("firing", 620.0)]
    assert _feed(dict(base, continuous=False), tl) == [("firing", 500.0)]


def test_fever_charted_hours_apart_meets_two_in_twelve_hours():
    # The trial's miss: temperatures 3 h apart, max_gap 1 h; n_of_m [2, 3] wiped its history
    # at each gap. "2 of the last 3 within 12 h" fires on the second warm reading at 3 h.
    old = {"name": "fever", "signal": "body_temp", "op": ">=", "threshold": 38.0, "clear": 37.5,
           "n_of_m": [2, 3], "max_gap_s": 3600}
    new = dict(old, n_of_m=None, count={"n": 2, "of": 3, "within_s": 43200})
    tl = [(0, 38.4), (3 * H, 38.6), (6 * H, 38.5)]
    assert _feed(old, tl, Signal.BODY_TEMP) == []
    assert _feed(new, tl, Signal.BODY_TEMP) == [("firing", 3 * 3600.0)]


def test_episode_ends_without_a_confirming_reading_and_a_new_fever_is_a_new_alert():
    # fever 38.4 at 0 h and 38.6 at 2 h (fires at 2 h); then 37.8 every 2 h (between clear
    # 37.5 and threshold 38.0: the old rule stays firing for ever). end_after 5 h: the last
    # confirmation is at 2 h, so the episode ended at 7 h, noticed at the 8-h reading.
    # A new fever at 12 h and 14 h fires again (a new episode: the evidence was reset).
    rule = {"name": "fever", "signal": "body_temp", "op": ">=", "threshold": 38.0, "clear": 37.5,
            "count": {"n": 2, "of": 3, "within_s": 43200}, "end_after_s": 18000}
    tl = [(0, 38.4), (2 * H, 38.6), (4 * H, 37.8), (6 * H, 37.8), (8 * H, 37.8), (10 * H, 37.8),
          (12 * H, 38.3), (14 * H, 38.5)]
    logic = RuleLogic(Rule.from_dict(rule), "p1")
    out = [a for t, v in tl for a in logic.on_reading(_r(t, v, Signal.BODY_TEMP))]
    assert [(a.state, (a.event_ns - T0) / 3600 / NS) for a in out] == \
        [("firing", 2.0), ("resolved", 7.0), ("firing", 14.0)]
    assert out[0].alert_id == out[1].alert_id == alert_id("p1", "fever", T0)
    assert out[2].alert_id == alert_id("p1", "fever", T0 + 12 * H) != out[0].alert_id
    # without end_after_s the first episode never ends, so the second fever is silent
    rule.pop("end_after_s")
    logic = RuleLogic(Rule.from_dict(rule), "p1")
    assert [a.state for t, v in tl for a in logic.on_reading(_r(t, v, Signal.BODY_TEMP))] == \
        ["firing"]


def test_explanation_names_value_threshold_and_form():
    tl = [(i * MIN, v) for i, v in enumerate([39, 42, 40, 43, 39])]
    logic = RuleLogic(Rule.from_dict(BRADY_COUNT), "p1")
    (a,) = [a for t, v in tl for a in logic.on_reading(_r(t, v))]
    assert a.explanation == "HR 39 /min: <= 40 /min on 3 readings in 10 min"


@pytest.mark.parametrize("bad", [
    {"count": {"n": 0, "within_s": 60}},
    {"count": {"n": 3, "of": 2, "within_s": 60}},
    {"count": {"n": 2}},                       # neither a window nor a count of readings
    {"fraction": {"min": 1.5, "within_s": 60}},
    {"fraction": {"min": 0.5}},
    {"fraction": {"min": 0.5, "within_s": 60}, "for_s": 30},  # two forms
    {"count": {"n": 2, "within_s": 60}, "n_of_m": [2, 3]},
    {"continuous": "yes", "for_s": 30},
    {"end_after_s": 0, "for_s": 30},
])
def test_bad_forms_are_config_errors(bad):
    rule = dict({"name": "x", "signal": "heart_rate", "op": ">", "threshold": 120}, **bad)
    with pytest.raises(ConfigError) as ei:
        Rule.from_dict(rule)
    assert ei.value.reason == "bad_rule" and "x" in ei.value.detail


def test_form_defaults_for_each_yaml_shape():
    assert form_from_dict({"for_s": 30}, "x", 300) == Consecutive(30.0, True)
    assert form_from_dict({"n_of_m": [2, 3]}, "x", 300) == CountWithin(2, 3, math.inf, True)
    assert form_from_dict({"count": {"n": 2, "within_s": 60}}, "x", 300) == \
        CountWithin(2, None, 60.0, False)
    assert form_from_dict({"fraction": {"min": 0.5, "within_s": 60}}, "x", 300) == \
        FractionWithin(0.5, 60.0, 300.0, False)


def test_forms_inside_the_patient_flow_on_a_fake_clock():
    # The bradycardia hover of the trial, through the reorder buffer (rule delay 2 s): HR
    # 39-43 at 1/min, <= 40 on minutes 0, 3, 5, 8 ... fraction 0.3 of 600 s with hold 120 s:
    # time <= 40 is 60 s per hit; 180 s is reached when the third hit's successor (43 at
    # 6 min) arrives, but that reading is not <= 40: the episode opens at the next hit.
    rules = RuleSet.from_dicts([{"name": "brady", "signal": "heart_rate", "op": "<=",
                                 "threshold": 40, "clear": 45,
                                 "fraction": {"min": 0.3, "within_s": 600, "hold_s": 120}}])
    clock = FakeClock(T0)
    logic = Clocked(PatientFlow(rules=rules, rule_delay_ns=2 * NS).build(key="p1"), clock)
    hover = [39, 42, 43, 40, 42, 39, 43, 42, 40, 41]
    alerts = []
    for i, v in enumerate(hover):
        clock.set(T0 + i * MIN + NS)  # received 1 s after it was measured
        alerts += [a for a in logic.on_item(_r(i * MIN, v)) if a.__class__.__name__ == "Alert"]
        clock.set(T0 + i * MIN + 4 * NS)  # the reorder delay has passed: the rule has seen it
        alerts += [a for a in logic.on_notify() if a.__class__.__name__ == "Alert"]
    # hits at 0, 3, 5 min cover [0,1), [3,4), [5,6) min = 180 s once the 6-min reading is
    # seen; 43 (6 min) and 42 (7 min) are not <= 40; 40 at 8 min is, and its window
    # [-2, 8] min still holds those 180 s >= 0.3 * 600 s: it fires, quoting 40
    assert [(a.state, (a.event_ns - T0) / MIN, a.value) for a in alerts] == [("firing", 8.0, 40.0)]
    assert alerts[0].episode_start_ns == T0
