"""Nudge engine: triggers, already-done, digest, priority, reasons, experiments, ids.

Fake clock only (``Clocked`` + ``FakeClock``); expected times are worked out by hand
from the scripted events (calendar.timegm), never copied from the engine's output.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as hs

from vitalstream.care import CareEvent, Evidence, Exposure, Nudge, NudgeSuppressed, TagChange
from vitalstream.clock import FakeClock
from vitalstream.model import Alert, Reading
from vitalstream.operators.check import Clocked
from vitalstream.operators.experiment.assign import Experiment
from vitalstream.operators.nudge import NudgePolicy
from vitalstream.signals import Signal

NS = 1_000_000_000
H = 3600 * NS
DAY = 86_400 * NS


def utc(*ymdhm: int) -> int:
    return calendar.timegm((*ymdhm, 0)[:6] if len(ymdhm) == 5 else ymdhm) * NS


def bp(t: int, value: float = 128.0, patient: str = "p1") -> Reading:
    return Reading(patient, "cuff", Signal.BP_SYSTOLIC, value, "mm[Hg]", t, t)


def glucose(t: int, patient: str = "p1") -> Reading:
    return Reading(patient, "meter", Signal.GLUCOSE, 110.0, "mg/dL", t, t)


def tag(name: str, t: int, change: str = "set", patient: str = "p1") -> TagChange:
    return TagChange(patient, name, change, "bp-guideline acc-aha-2017: stage 1 on 3 days", t,
                     None, 0.9, t, (Evidence(t, "bp_systolic", 142.0, "day mean 142/91"),))


def care(kind: str, t: int, value: str = "", patient: str = "p1") -> CareEvent:
    return CareEvent(patient, kind, t, value)


def strat(name: str, when: dict, kind: str = "patient-reminder", channel: str = "sms",
          **more) -> dict:
    return {"name": name, "when": when,
            "send": {"kind": kind, "channel": channel, "message": f"msg {name}"}, **more}


def policy(*strategies: dict, **top) -> NudgePolicy:
    return NudgePolicy.from_dict({"timezone": "UTC", **top, "strategies": list(strategies)})


class Driver:
    """A patient's logic on a fake clock: items at their event time, timers as they fall due."""

    def __init__(self, pol: NudgePolicy, key: str = "p1", start: int = 0) -> None:
        self.clock = FakeClock(start)
        self.c = Clocked(pol.build(key=key), self.clock)
        self.out: list = []

    def until(self, t: int) -> list:
        got = []
        while (due := self.c.notify_at()) is not None and due <= t:
            self.clock.set(max(due, self.clock.now_ns()))
            got += self.c.on_notify()
        self.clock.set(max(t, self.clock.now_ns()))
        self.out += got
        return got

    def feed(self, *items) -> list:
        got = []
        for x in items:
            t = x.at_ns if isinstance(x, TagChange) else x.event_ns
            got += self.until(t)
            new = self.c.on_item(x)
            got += new
            self.out += new
        return got

    def nudges(self) -> list[Nudge]:
        return [x for x in self.out if isinstance(x, Nudge)]

    def suppressed(self) -> list[NudgeSuppressed]:
        return [x for x in self.out if isinstance(x, NudgeSuppressed)]


T0 = utc(2026, 5, 1, 8, 10)  # a Friday


# -- 1. triggers --

def test_tag_appearing_makes_one_care_task_with_the_tag_evidence() -> None:
    d = Driver(policy(strat("welcome", {"tag_set": "hypertension"}, "care-task", "care-team")))
    d.feed(tag("hypertension", T0), tag("hypertension", T0 + H, "update"),
           tag("hypertension", T0 + 2 * H))  # an update and a repeat are no new tag
    d.until(T0 + 10 * DAY)
    [n] = d.nudges()
    assert (n.strategy, n.kind, n.channel, n.due_ns, n.at_ns) == (
        "welcome", "care-task", "care-team", T0, T0)
    assert n.evidence == (Evidence(T0, "bp_systolic", 142.0, "day mean 142/91"),)
    assert "tag hypertension set" in n.reason and "2026-05-01 08:10 UTC" in n.reason
    # ended, then set again: it appears again
    d.feed(tag("hypertension", T0 + 11 * DAY, "end"), tag("hypertension", T0 + 12 * DAY))
    assert [n.due_ns for n in d.nudges()] == [T0, T0 + 12 * DAY]


def test_manual_tag_event_is_a_tag_appearing_too() -> None:
    d = Driver(policy(strat("welcome", {"tag_set": "copd"}, "care-task", "care-team")))
    d.feed(care("manual-tag", T0, "copd"), care("manual-tag", T0 + H, "copd"))
    assert [(n.strategy, n.due_ns) for n in d.nudges()] == [("welcome", T0)]
    assert "set by hand" in d.nudges()[0].reason


BP_MISSING = strat("bp-missing", {"no_reading": {"signal": "bp_systolic", "for_s": 259200},
                                  "programme": "hypertension"})


def test_behaviour_stopping_reminds_programme_patients_only_with_reason_in_words() -> None:
    enrolled = Driver(policy(BP_MISSING))
    enrolled.feed(care("enrol", T0 - DAY, "hypertension"), bp(T0, 131.0))
    assert enrolled.c.notify_at() == T0 + 3 * DAY  # the silent patient is not forgotten
    enrolled.until(T0 + 5 * DAY)
    [n] = enrolled.nudges()
    assert (n.due_ns, n.at_ns, n.kind, n.channel) == (T0 + 3 * DAY, T0 + 3 * DAY,
                                                      "patient-reminder", "sms")
    assert n.reason == ("bp-missing: no bp_systolic reading for 3 days; "
                        "last 2026-05-01 08:10 UTC (value 131)")
    assert n.evidence == (Evidence(T0, "bp_systolic", 131.0, "last reading"),)
    # no repeat_s: one per silence; a new reading starts a new one
    enrolled.feed(bp(T0 + 6 * DAY))
    enrolled.until(T0 + 20 * DAY)
    assert [n.due_ns for n in enrolled.nudges()] == [T0 + 3 * DAY, T0 + 9 * DAY]

    outsider = Driver(policy(BP_MISSING))
    outsider.feed(bp(T0))
    outsider.until(T0 + 30 * DAY)
    assert outsider.out == [] and outsider.c.notify_at() is None


def test_silence_counts_from_joining_when_there_was_no_reading_and_stops_on_leaving() -> None:
    d = Driver(policy(BP_MISSING))
    d.feed(tag("hypertension", T0))
    d.until(T0 + 4 * DAY)
    [n] = d.nudges()
    assert n.due_ns == T0 + 3 * DAY and "since joining hypertension" in n.reason
    d2 = Driver(policy(BP_MISSING))
    d2.feed(care("enrol", T0, "hypertension"), care("leave", T0 + DAY, "hypertension"))
    d2.until(T0 + 10 * DAY)
    assert d2.nudges() == []


MEAL = strat("glucose-after-meal",
             {"after_event": "meal", "expect": {"signal": "glucose", "within_s": 7200}},
             channel="app")


def test_glucose_not_logged_within_two_hours_of_a_meal() -> None:
    d = Driver(policy(MEAL))
    lunch, dinner = utc(2026, 5, 1, 12, 0), utc(2026, 5, 1, 18, 0)
    d.feed(care("meal", lunch), glucose(lunch + 90 * 60 * NS),  # logged: nothing
           care("meal", dinner))
    d.until(dinner + 5 * H)
    [n] = d.nudges()
    assert (n.due_ns, n.channel, n.strategy) == (dinner + 2 * H, "app", "glucose-after-meal")
    assert n.reason == ("glucose-after-meal: no glucose reading within 2 h of the meal at "
                        "2026-05-01 18:00 UTC")
    assert n.evidence[0].event_ns == dinner and n.evidence[0].signal == "meal"


def test_periodic_recall_and_visit_follow_up() -> None:
    recall = strat("recall", {"schedule": {"every_s": 90 * 86400}, "programme": "hypertension"},
                   "care-task", "care-team")
    follow = strat("follow-up", {"after_event": "visit", "delay_s": 604800})
    d = Driver(policy(recall, follow))
    d.feed(tag("hypertension", T0), care("visit", T0 + 10 * DAY))
    d.until(T0 + 200 * DAY)
    got = [(n.strategy, n.due_ns, n.kind) for n in d.nudges()]
    assert got == [("follow-up", T0 + 17 * DAY, "patient-reminder"),
                   ("recall", T0 + 90 * DAY, "care-task"),
                   ("recall", T0 + 180 * DAY, "care-task")]
    assert "7 days after the visit at 2026-05-11 08:10 UTC" in d.nudges()[0].reason
    assert "recall every 90 days in programme hypertension" in d.nudges()[1].reason


# -- 5. already done --

QUIET = {"start": "21:00", "end": "08:00"}


def test_bp_measured_after_the_trigger_but_before_the_deferred_send_is_already_done() -> None:
    follow = strat("follow-up", {"after_event": "visit", "delay_s": 604800},
                   done_if={"reading": "bp_systolic", "since": "trigger"})
    visit = utc(2026, 5, 1, 22, 0)  # due a week later at 22:00: quiet, held to 08:00
    d = Driver(policy(follow, quiet_hours=QUIET))
    d.feed(care("visit", visit))
    d.until(visit + 7 * DAY + H)
    assert d.out == [] and d.c.notify_at() == utc(2026, 5, 9, 8, 0)
    d.feed(bp(utc(2026, 5, 9, 6, 30)))
    d.until(utc(2026, 5, 10, 0, 0))
    [s] = d.out
    assert (s.reason, s.strategy, s.at_ns) == ("already-done", "follow-up", utc(2026, 5, 9, 8, 0))
    assert d.c.suppressed_counts() == {"already-done": 1}


def test_glucose_logged_late_but_before_the_morning_send_is_already_done() -> None:
    d = Driver(policy(MEAL, quiet_hours=QUIET))
    dinner = utc(2026, 5, 1, 19, 30)
    d.feed(care("meal", dinner), glucose(utc(2026, 5, 1, 23, 0)))
    d.until(utc(2026, 5, 3, 0, 0))
    assert [(s.reason, s.at_ns) for s in d.suppressed()] == [("already-done", utc(2026, 5, 2, 8, 0))]
    assert d.nudges() == []


def test_a_nudge_deferred_past_its_max_delay_expires() -> None:
    meal = dict(MEAL, max_delay_s=3600)
    d = Driver(policy(meal, quiet_hours=QUIET))
    d.feed(care("meal", utc(2026, 5, 1, 19, 30)))  # due 21:30, sendable only 08:00: 10.5 h
    d.until(utc(2026, 5, 3, 0, 0))
    assert [s.reason for s in d.suppressed()] == ["expired"] and d.nudges() == []


# -- 6. digest --

def test_similar_nudges_within_digest_window_are_one_message() -> None:
    steps = strat("steps-missing", {"no_reading": {"signal": "steps", "for_s": 86400}},
                  channel="app")
    welcome = strat("welcome", {"tag_set": "diabetes"}, channel="app")
    d = Driver(policy(MEAL, steps, welcome, digest_s=900))
    meal = utc(2026, 5, 1, 12, 0)
    d.feed(care("meal", meal),
           Reading("p1", "watch", Signal.STEPS, 0.0, "{steps}", meal + 2 * H + 5 * 60 * NS,
                   meal + 2 * H + 5 * 60 * NS))  # steps 0 is a reading: the silence starts here
    d.until(meal + 2 * H + 10 * 60 * NS)
    d.feed(tag("diabetes", meal + 2 * H + 10 * 60 * NS))  # due 10 min after the meal nudge: joins
    d.until(meal + 30 * H)
    n1, n2 = d.nudges()
    # meal nudge ready at 14:00 opens the app group; closes 900 s later
    assert (n1.strategy, n1.due_ns, n1.at_ns) == ("glucose-after-meal", meal + 2 * H,
                                                  meal + 2 * H + 900 * NS)
    assert n1.digest_of == ("welcome",) and "; also welcome: tag diabetes set" in n1.reason
    # the steps silence falls due 24 h after its reading: a message of its own
    assert (n2.strategy, n2.due_ns, n2.digest_of) == ("steps-missing",
                                                      meal + 26 * H + 5 * 60 * NS, ())
    [s] = d.suppressed()
    assert (s.strategy, s.reason) == ("welcome", "digested") and n1.nudge_id in s.detail


# -- 4. priority --

def _two_in_one_slot(first: dict, second: dict, caps: list) -> Driver:
    d = Driver(policy(first, second, caps=caps, quiet_hours=QUIET))
    d.feed(tag("hypertension", utc(2026, 5, 1, 23, 0)))  # both held to 08:00: one slot
    d.until(utc(2026, 5, 3, 0, 0))
    return d


def test_the_higher_priority_strategy_takes_the_only_room_in_a_slot() -> None:
    task = strat("task", {"tag_set": "hypertension"}, "care-task", "app")
    sms = strat("sms-hello", {"tag_set": "hypertension"}, "patient-reminder", "sms")
    caps = [{"channel": "*", "per": "day", "max": 1}]
    d = _two_in_one_slot(task, sms, caps)
    assert [(n.strategy, n.at_ns) for n in d.nudges()] == [("task", utc(2026, 5, 2, 8, 0))]
    [s] = d.suppressed()
    assert (s.strategy, s.reason) == ("sms-hello", "priority") and "task" in s.detail
    d = _two_in_one_slot(sms, task, caps)  # the other order: the other one wins
    assert [n.strategy for n in d.nudges()] == ["sms-hello"]
    assert [(s.strategy, s.reason) for s in d.suppressed()] == [("task", "priority")]


def test_a_cap_already_full_is_reason_cap_not_priority() -> None:
    sms = strat("sms-hello", {"tag_set": "hypertension"})
    other = strat("sms-copd", {"tag_set": "copd"})
    d = Driver(policy(sms, other, caps=[{"channel": "sms", "per": "day", "max": 1}]))
    d.feed(tag("hypertension", T0), tag("copd", T0 + H))
    assert [n.strategy for n in d.nudges()] == ["sms-hello"]
    assert [(s.strategy, s.reason, s.detail) for s in d.suppressed()] == [
        ("sms-copd", "cap", "sms/day")]


# -- 7. reasons and counts --

def test_every_output_explains_itself_and_counts_add_up() -> None:
    meal = dict(MEAL, max_delay_s=3600)
    d = Driver(policy(BP_MISSING, meal, dict(BP_MISSING, name="bp-missing-2", repeat_s=86400),
                      quiet_hours=QUIET, caps=[{"channel": "sms", "per": "week", "max": 1}]))
    d.feed(tag("hypertension", T0), bp(T0 + H))
    for day in range(14):
        d.feed(care("meal", utc(2026, 5, 2 + day, 12 + (day % 3) * 4, 0)))
    d.until(T0 + 20 * DAY)
    assert d.nudges() and d.suppressed()
    for n in d.nudges():
        assert n.reason.startswith(n.strategy + ": ") and n.evidence
    for s in d.suppressed():
        assert s.reason in {"cap", "expired", "priority", "digested", "already-done",
                            "holdout", "repeat"} and s.detail
    assert d.c.suppressed_counts() == dict(Counter(s.reason for s in d.suppressed()))
    assert d.c.snapshot().suppressed == d.c.suppressed_counts()


# -- 8. experiments --

EXP = {"name": "bp-2026", "seed": "s1", "variants": {"holdout": 0.2, "sms": 0.4, "app": 0.4},
       "overrides": {"app": {"channel": "app", "message": "open the app"}}}


def _patient_in(variant: str) -> str:
    e = Experiment("bp-2026", "s1", ("holdout", "sms", "app"), (0.2, 0.4, 0.4))
    return next(p for p in (f"p{i}" for i in range(1000)) if e.assign(p) == variant)


@pytest.mark.parametrize("variant", ["holdout", "sms", "app"])
def test_experiment_variants_exposure_once_and_holdout_gets_nothing(variant: str) -> None:
    patient = _patient_in(variant)
    pol = policy(dict(BP_MISSING, repeat_s=86400, experiment=EXP))
    d = Driver(pol, key=patient)
    d.feed(care("enrol", T0, "hypertension", patient), bp(T0, patient=patient))
    d.until(T0 + 10 * DAY)  # triggers at day 3, 4, ..., 10: exposed once
    exposures = [x for x in d.out if isinstance(x, Exposure)]
    assert exposures == [Exposure("bp-2026", variant, patient, "bp-missing", T0 + 3 * DAY)]
    assert d.out[0] == exposures[0]  # before anything that happens to the nudge
    if variant == "holdout":
        assert d.nudges() == []
        assert [s.reason for s in d.suppressed()] == ["holdout"] * 8
        assert {(s.experiment, s.variant) for s in d.suppressed()} == {("bp-2026", "holdout")}
    else:
        assert len(d.nudges()) == 8
        assert {(n.channel, n.message, n.variant) for n in d.nudges()} == (
            {("app", "open the app", "app")} if variant == "app" else {("sms", "msg bp-missing", "sms")})


def test_exposure_is_emitted_even_when_the_nudge_is_capped() -> None:
    patient = _patient_in("sms")
    first = strat("first", {"tag_set": "hypertension"})
    pol = policy(first, dict(BP_MISSING, experiment=EXP),
                 caps=[{"channel": "*", "per": "week", "max": 1}])
    d2 = Driver(pol, key=patient)
    d2.feed(tag("hypertension", utc(2026, 5, 4, 8, 10), patient=patient))  # Monday
    d2.until(utc(2026, 5, 7, 9, 0))  # Thursday, same week: capped
    assert [x.reason for x in d2.suppressed()] == ["cap"]
    assert [type(x).__name__ for x in d2.out] == ["Nudge", "Exposure", "NudgeSuppressed"]


# -- 9. not clinical --

def test_clinical_alerts_are_refused() -> None:
    logic = policy(BP_MISSING).build(key="p1")
    alert = Alert("a1", "p1", "tachycardia", "heart_rate", "high", "firing", 130.0, 120.0,
                  T0, T0)
    with pytest.raises(TypeError, match="Alert"):
        logic.on_item(alert)


# -- 11. deterministic ids, whatever the runtime's timer cadence --

def _story() -> list:
    out = [tag("hypertension", T0), bp(T0 + H)]
    for day in range(20):
        base = utc(2026, 5, 2 + day, 12, 0)
        out.append(care("meal", base))
        if day % 2:
            out.append(glucose(base + H))
        if day % 7 == 3:
            out.append(bp(base + 3 * H))
        if day == 5:
            out.append(care("visit", base + 4 * H))
    return out


def _run(items: list, extra_notifies: list[int]) -> list:
    logic = NudgePolicy.default().build(key="p7")
    out, pending = [], sorted(extra_notifies)
    for x in items:
        t = x.at_ns if isinstance(x, TagChange) else x.event_ns
        while pending and pending[0] <= t:
            out += logic.on_notify(pending.pop(0))[0]
        out += logic.on_item(x)[0]
    out += logic.on_notify(utc(2026, 6, 30, 0, 0))[0]
    while (due := logic.notify_at()) is not None and due <= utc(2026, 7, 1, 0, 0):
        out += logic.on_notify(due)[0]
    return out


@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.integers(min_value=T0, max_value=utc(2026, 5, 22, 0, 0)), max_size=40))
def test_outputs_and_ids_do_not_depend_on_when_timers_fire(notifies: list[int]) -> None:
    base = _run(_story(), [])
    got = _run(_story(), notifies)
    assert got == base
    ids = [n.nudge_id for n in got if isinstance(n, Nudge)]
    assert len(ids) == len(set(ids)) and len(ids) >= 3


@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.booleans(), min_size=len(_story()), max_size=len(_story())))
def test_a_re_sent_item_changes_nothing(twice: list[bool]) -> None:
    items = _story()
    doubled = [y for x, t in zip(items, twice) for y in ([x, x] if t else [x])]
    assert _run(doubled, []) == _run(items, [])


def test_nudge_id_is_patient_strategy_and_due() -> None:
    d = Driver(policy(BP_MISSING))
    d.feed(care("enrol", T0, "hypertension"), bp(T0))
    d.until(T0 + 4 * DAY)
    [n] = d.nudges()
    again = Nudge("p1", "bp-missing", "x", "y", T0 + 3 * DAY, 0, "", "")
    assert n.nudge_id == again.nudge_id
    assert dataclasses.replace(n, at_ns=n.at_ns + 1).nudge_id == n.nudge_id
