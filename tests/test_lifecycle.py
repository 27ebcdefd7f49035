"""The alarm lifecycle (operators/lifecycle.py) on worked timelines, driven by a fake clock:
latching, re-notification, escalation at the right time, each snooze scope, snooze expiry,
flapping, priority raised by a grouped concern, and the operator contract check.

Defaults used below (``Lifecycle()``): high latches; re-notify high every 300 s, medium every
900 s, low never; high escalates to charge-nurse at 300 s and physician at 900 s; flapping at
4 changes in 1800 s, stable after 900 s without a change."""

from __future__ import annotations

import pytest

from vitalstream.model import Alert
from vitalstream.operators.check import CHECKS, Case, Clocked
from vitalstream.operators.lifecycle import Audit, Command, Lifecycle, Notice
from vitalstream.testing import FakeClock

NS = 1_000_000_000
S = NS
T0 = 1_790_000_000 * NS


def _alert(aid, rule, sev, state, t_s, group=""):
    return Alert(aid, "p1", rule, "heart_rate", sev, state, 0.0, 0.0, T0 + t_s * S, T0, 0, "",
                 f"{rule} says so", group)


class _Run:
    """Feeds items at their times and fires timers as a runtime would (fake clock)."""

    def __init__(self, cfg: Lifecycle = Lifecycle()) -> None:
        self.clock = FakeClock(T0)
        self.logic = Clocked(cfg.build(key="p1"), self.clock)
        self.out: list = []

    def until(self, t_s: float) -> None:
        while True:
            due = self.logic.notify_at()
            if due is None or due > T0 + t_s * S:
                break
            self.clock.set(due)
            self.out += self.logic.on_notify()
        self.clock.set(T0 + round(t_s * S))

    def item(self, t_s: float, x) -> None:
        self.until(t_s)
        self.out += self.logic.on_item(x)

    def cmd(self, t_s: float, kind: str, target: str, **kw) -> None:
        self.item(t_s, Command(kind, target, "nurse-7", "checked", T0 + round(t_s * S), **kw))

    def notices(self):
        return [(n.alert_id, n.reason, n.priority, (n.event_ns - T0) // S, n.level)
                for n in self.out if type(n) is Notice]


def test_high_priority_latches_until_acknowledged_and_shows_the_recovery():
    r = _Run()
    r.item(0, _alert("a1", "bradycardia", "critical", "firing", 0))
    r.item(60, _alert("a1", "bradycardia", "critical", "resolved", 60))
    r.until(350)  # still active: re-notified at 300 (and escalated to tier 1 at 300)
    r.cmd(400, "ack", "a1")
    assert r.notices() == [("a1", "raised", "high", 0, 0), ("a1", "recovered", "high", 60, 0),
                           ("a1", "renotify", "high", 300, 0), ("a1", "escalated", "high", 300, 1),
                           ("a1", "resolved", "high", 400, 1)]
    audit = [x for x in r.out if type(x) is Audit]
    assert [(a.alert_id, a.who, a.action, a.reason) for a in audit] == [
        ("a1", "nurse-7", "acknowledged", "checked")]
    assert r.logic.notify_at() is None and r.logic.snapshot().alarms == {}


def test_medium_does_not_latch_and_renotifies_every_900_s_until_acknowledged():
    r = _Run()
    r.item(0, _alert("m1", "tachycardia", "warning", "firing", 0))
    r.cmd(2000, "ack", "m1")      # re-notified at 900 and 1800, then acknowledged
    r.until(5000)                 # nothing more while acknowledged
    r.item(5000, _alert("m1", "tachycardia", "warning", "resolved", 5000))
    r.item(6000, _alert("m2", "tachycardia", "warning", "firing", 6000))
    r.item(6060, _alert("m2", "tachycardia", "warning", "resolved", 6060))
    assert r.notices() == [("m1", "raised", "medium", 0, 0), ("m1", "renotify", "medium", 900, 0),
                           ("m1", "renotify", "medium", 1800, 0), ("m1", "resolved", "medium", 5000, 0),
                           ("m2", "raised", "medium", 6000, 0), ("m2", "resolved", "medium", 6060, 0)]


def test_unacknowledged_high_escalates_at_each_tier_and_an_ack_stops_the_next():
    r = _Run()
    r.item(0, _alert("h1", "desaturation_severe", "critical", "firing", 0))
    r.cmd(600, "ack", "h1")   # after tier 1 (300 s), before tier 2 (900 s)
    r.until(2000)
    esc = [(n.tier, (n.event_ns - T0) // S) for n in r.out if type(n) is Notice and n.reason == "escalated"]
    assert esc == [("charge-nurse", 300)]
    r2 = _Run()
    r2.item(0, _alert("h1", "desaturation_severe", "critical", "firing", 0))
    r2.until(2000)
    esc = [(n.tier, n.level, (n.event_ns - T0) // S) for n in r2.out
           if type(n) is Notice and n.reason == "escalated"]
    assert esc == [("charge-nurse", 1, 300), ("physician", 2, 900)]


def test_rule_scope_snooze_hides_its_rule_only_and_one_notice_when_it_ends():
    # medium m1 at 0; snoozed for 10 min at 60 (rule scope). Another rule's alarm at 120 is
    # raised normally. m1 clears at 200 (medium does not latch: resolved); the rule's next
    # episode m1b at 300 is hidden by the snooze, which ends at 660 with the condition still
    # there: one snooze_ended, and the re-notification 900 s after that (1560).
    r = _Run()
    r.item(0, _alert("m1", "tachycardia", "warning", "firing", 0))
    r.cmd(60, "snooze", "m1", scope="rule", minutes=10)
    r.item(120, _alert("d1", "desaturation", "warning", "firing", 120))
    r.item(200, _alert("m1", "tachycardia", "warning", "resolved", 200))
    r.item(300, _alert("m1b", "tachycardia", "warning", "firing", 300))  # a new episode of m1's rule
    r.until(1600)
    got = [x for x in r.notices() if x[0] in ("m1", "m1b")]
    assert got == [("m1", "raised", "medium", 0, 0), ("m1", "resolved", "medium", 200, 0),
                   ("m1b", "snooze_ended", "medium", 660, 0), ("m1b", "renotify", "medium", 1560, 0)]
    assert ("d1", "raised", "medium", 120, 0) in r.notices()
    assert [a.action for a in r.out if type(a) is Audit] == ["snoozed"]


def test_patient_scope_snooze_never_hides_a_higher_priority():
    r = _Run()
    r.item(0, _alert("m1", "tachycardia", "warning", "firing", 0))
    r.cmd(60, "snooze", "m1", scope="patient", minutes=30)
    r.item(120, _alert("d1", "desaturation", "warning", "firing", 120))   # same priority: hidden
    r.item(180, _alert("h1", "bradycardia", "critical", "firing", 180))   # higher: raised
    r.item(240, _alert("d1", "desaturation", "warning", "resolved", 240))  # cleared while hidden
    r.until(1860)  # the snooze ends at 60 + 1800
    reasons = [(x[0], x[1], x[3]) for x in r.notices() if x[0] in ("m1", "d1", "h1")]
    assert ("h1", "raised", 180) in reasons
    assert not [x for x in reasons if x[0] == "d1" and x[1] == "raised"]
    assert ("d1", "resolved", 240) in reasons  # a non-latching clear is still told
    assert ("m1", "snooze_ended", 1860) in reasons
    assert not [x for x in reasons if x[0] == "d1" and x[1] == "snooze_ended"]


def test_snooze_expiry_after_the_condition_cleared_sends_nothing():
    r = _Run()
    r.item(0, _alert("m1", "tachycardia", "warning", "firing", 0))
    r.cmd(60, "snooze", "m1", minutes=5)
    r.item(120, _alert("m1", "tachycardia", "warning", "resolved", 120))
    r.until(1000)
    assert [x[1] for x in r.notices()] == ["raised", "resolved"]


def test_flapping_becomes_one_alert_until_stable():
    # changes of rule "tachycardia": raise 0, clear 60, raise 120, clear 180 -> the 4th change
    # in 1800 s: one "flapping" notice at 180; raises and clears after that are recorded, not
    # sent; the last change is at 420, so stable at 420 + 900 = 1320.
    r = _Run()
    t = 0
    for k in range(4):
        r.item(t, _alert(f"f{k}", "tachycardia", "warning", "firing", t))
        r.item(t + 60, _alert(f"f{k}", "tachycardia", "warning", "resolved", t + 60))
        t += 120
    r.item(480, _alert("f9", "tachycardia", "warning", "firing", 480))
    r.until(3000)
    sent = [(x[0], x[1], x[3]) for x in r.notices()]
    assert sent[:4] == [("f0", "raised", 0), ("f0", "resolved", 60), ("f1", "raised", 120),
                        ("f1", "flapping", 180)]
    assert ("f9", "stable", 480 + 900) in sent
    assert not [x for x in sent[4:] if x[1] in ("raised", "resolved")]


def test_a_grouped_escalation_raises_the_concern_priority_once():
    r = _Run()
    r.item(0, _alert("c1", "hr_above_usual", "info", "firing", 0))
    r.item(60, _alert("c2", "tachycardia", "warning", "escalated", 60, group="c1"))
    r.item(90, _alert("c3", "news2", "warning", "grouped", 90, group="c1"))
    r.item(600, _alert("c1", "hr_above_usual", "info", "resolved", 600))
    r.item(650, _alert("c2", "tachycardia", "warning", "resolved", 650))
    r.item(700, _alert("c3", "news2", "warning", "resolved", 700))
    assert r.notices() == [("c1", "raised", "low", 0, 0), ("c1", "priority_raised", "medium", 60, 0),
                           ("c1", "resolved", "medium", 700, 0)]


def test_ack_with_patient_scope_and_manual_resolve_are_audited():
    r = _Run()
    r.item(0, _alert("m1", "tachycardia", "warning", "firing", 0))
    r.item(10, _alert("d1", "desaturation", "warning", "firing", 10))
    r.cmd(20, "ack", "m1", scope="patient")
    r.cmd(30, "resolve", "d1")
    audit = [(a.alert_id, a.action, a.detail) for a in r.out if type(a) is Audit]
    assert audit == [("m1", "acknowledged", "patient"), ("d1", "acknowledged", "patient"),
                     ("d1", "resolved", "alarm")]
    r.until(5000)
    assert r.logic.notify_at() is None  # acknowledged: no re-notification


def test_bad_configuration_is_refused():
    from vitalstream.operators.lifecycle import Tier
    with pytest.raises(ValueError):
        Lifecycle(latching=frozenset({"urgent"}))
    with pytest.raises(ValueError):
        Lifecycle(tiers=(Tier("a", 600), Tier("b", 300)))


def _stream() -> list:
    out, t = [], 0
    for k in range(40):  # alarms opening and clearing, with commands in between
        sev = ("critical", "warning", "info")[k % 3]
        rule = ("bradycardia", "tachycardia", "hr_above_usual", "desaturation")[k % 4]
        out.append(_alert(f"x{k}", rule, sev, "firing", t))
        if k % 5 == 1:
            out.append(Command("snooze", f"x{k}", "n", "r", T0 + (t + 30) * S, "rule", 5))
        if k % 5 == 2:
            out.append(Command("ack", f"x{k}", "n", "r", T0 + (t + 40) * S))
        out.append(_alert(f"x{k}", rule, sev, "resolved", t + 200))
        t += 400
    return out


def _long(n: int) -> list:
    out, t = [], 0
    while len(out) < n:
        k = len(out)
        out += [_alert(f"y{k}", "tachycardia", "warning", "firing", t),
                _alert(f"y{k}", "tachycardia", "warning", "resolved", t + 60)]
        t += 4000  # never flapping: 2 changes per 4000 s
    return out[:n]


CASE = Case("lifecycle", Lifecycle(), _stream(), key="p1", long_items=_long)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_lifecycle_passes_the_operator_contract(check):
    check(CASE)


def test_site_policy_comes_from_the_rules_file_and_bad_keys_are_config_errors(tmp_path):
    import dataclasses

    from vitalstream.errors import ConfigError
    from vitalstream.operators.lifecycle import Tier
    from vitalstream.stream import assembly
    from vitalstream.stream.settings import Settings

    assert assembly.lifecycle(Settings()) == Lifecycle()  # the packaged section = the defaults
    f = tmp_path / "rules.yaml"
    f.write_text("rules: []\nlifecycle:\n  renotify_s: {high: 60, medium: null}\n"
                 "  tiers: [{name: on-call, after_s: 120}]\n  flap: {changes: 3}\n")
    got = assembly.lifecycle(dataclasses.replace(Settings(), rules_path=str(f)))
    assert got.renotify_s == {"high": 60.0, "medium": None} and got.tiers == (Tier("on-call", 120.0),)
    assert got.flap_changes == 3 and got.flap_window_s == Lifecycle().flap_window_s
    f.write_text("rules: []\nlifecycle: {renotify: 5}\n")
    with pytest.raises(ConfigError) as ei:
        assembly.lifecycle(dataclasses.replace(Settings(), rules_path=str(f)))
    assert ei.value.reason == "bad_lifecycle" and "renotify" in ei.value.detail


def test_a_rule_firing_again_while_its_episode_is_open_is_the_same_alarm_not_a_second_page():
    # A pipeline that crashed before saving its rule state finds the same bradycardia again
    # and fires it under a new id (the id is made from the episode start). Its first episode
    # is still open here: one alarm, no second 'raised', and the new id's recovery counts.
    r = _Run()
    r.item(0, _alert("h1", "bradycardia", "critical", "firing", 0))
    r.item(100, _alert("h1-again", "bradycardia", "critical", "firing", 100))
    r.item(200, _alert("h1-again", "bradycardia", "critical", "resolved", 200))
    assert [(x[0], x[1]) for x in r.notices()] == [("h1", "raised"), ("h1", "recovered")]
    # once it has recovered (latched, waiting for an ack), a new firing is a new page
    r.item(250, _alert("h2", "bradycardia", "critical", "firing", 250))
    assert [(x[0], x[1]) for x in r.notices()][-1] == ("h2", "raised")
