"""A physician's per-patient rule override in the alarm lifecycle (operators/lifecycle.py),
on worked fake-clock timelines: ``off`` records but never sends, a priority override changes
re-notification and escalation, and the end of an override raises what it kept quiet.

Defaults (``Lifecycle()``): high re-notifies every 300 s and escalates at 300 s and 900 s;
medium re-notifies every 900 s and never escalates."""

from __future__ import annotations

from vitalstream.operators.lifecycle import Audit, Command

from test_lifecycle import T0, S, _alert, _Run


def _override(r: _Run, t_s: float, rule: str, priority: str, minutes: float = 0.0) -> None:
    r.item(t_s, Command("override", "p1", "dr-lee", "known sinus bradycardia", T0 + round(t_s * S),
                        minutes=minutes, rule=rule, priority=priority))


def test_off_records_the_alarm_but_never_sends_it_and_its_recovery_is_quiet():
    r = _Run()
    _override(r, 0, "bradycardia", "off", minutes=60)
    r.item(10, _alert("a1", "bradycardia", "critical", "firing", 10))
    r.until(1800)  # past every re-notify and escalation a high alarm would have had
    assert r.notices() == []
    assert r.logic.snapshot().alarms["a1"].muted
    r.item(1800, _alert("a1", "bradycardia", "critical", "resolved", 1800))
    assert r.notices() == [] and r.logic.snapshot().alarms == {}
    (audit,) = [x for x in r.out if type(x) is Audit]
    assert (audit.patient, audit.who, audit.action, audit.detail) == (
        "p1", "dr-lee", "overridden", "bradycardia -> off for 60 min")


def test_other_rules_are_untouched_by_an_override():
    r = _Run()
    _override(r, 0, "bradycardia", "off", minutes=60)
    r.item(10, _alert("t1", "tachycardia", "critical", "firing", 10))
    assert r.notices() == [("t1", "raised", "high", 10, 0)]


def test_when_the_override_ends_what_it_muted_and_still_holds_is_raised_then_escalates():
    r = _Run()
    _override(r, 0, "bradycardia", "off", minutes=30)
    r.item(600, _alert("a1", "bradycardia", "critical", "firing", 600))
    r.until(1800 + 300)  # ends at 1800 s: raised then; escalation counts from then (300 s)
    assert r.notices() == [("a1", "raised", "high", 1800, 0), ("a1", "renotify", "high", 2100, 0),
                           ("a1", "escalated", "high", 2100, 1)]
    assert r.logic.snapshot().overrides == {}


def test_a_priority_override_makes_a_critical_rule_page_as_medium():
    r = _Run()
    _override(r, 0, "bradycardia", "medium", minutes=24 * 60)
    r.item(0, _alert("a1", "bradycardia", "critical", "firing", 0))
    r.until(1000)  # medium: re-notify at 900 s, no escalation (high's would be at 300 s)
    assert r.notices() == [("a1", "raised", "medium", 0, 0), ("a1", "renotify", "medium", 900, 0)]


def test_ending_an_override_by_hand_unmutes_at_once_and_is_audited():
    r = _Run()
    _override(r, 0, "bradycardia", "off", minutes=600)
    r.item(60, _alert("a1", "bradycardia", "critical", "firing", 60))
    _override(r, 120, "bradycardia", "")  # "" ends it
    assert r.notices() == [("a1", "raised", "high", 120, 0)]
    assert [(a.action, a.detail) for a in r.out if type(a) is Audit] == [
        ("overridden", "bradycardia -> off for 600 min"), ("override_ended", "bradycardia")]


def test_an_override_set_while_an_alarm_is_open_silences_its_renotifications():
    r = _Run()
    r.item(0, _alert("a1", "bradycardia", "critical", "firing", 0))
    _override(r, 100, "bradycardia", "off", minutes=60)
    r.until(1000)
    assert r.notices() == [("a1", "raised", "high", 0, 0)]


def test_a_malformed_override_changes_nothing():
    r = _Run()
    _override(r, 0, "bradycardia", "loud", minutes=60)   # not a priority
    _override(r, 0, "bradycardia", "off", minutes=0)     # no duration
    _override(r, 0, "", "off", minutes=60)               # no rule
    r.item(10, _alert("a1", "bradycardia", "critical", "firing", 10))
    assert r.notices() == [("a1", "raised", "high", 10, 0)]
    assert [x for x in r.out if type(x) is Audit] == [] and r.logic.snapshot().overrides == {}
