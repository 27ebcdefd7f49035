"""The alarm lifecycle a care team acts on (IEC 60601-1-8 concepts), per patient, engine-free.

The per-patient flow decides *that* something is wrong (alert events: ``firing``,
``grouped``, ``escalated``, ``resolved``); this operator decides who hears about it and
when. It takes those events and the team's commands (``Command``: ack, snooze,
resolve) and emits ``Notice`` records (what the outreach queue sends) and ``Audit``
records (who did what, when and why).

- **Priorities** ``high``, ``medium``, ``low`` (shown as critical, warning, info; mapped
  from the rules' severities). One alarm per concern: the flow's grouped and escalated
  alerts join the alarm of the alert that opened the concern (``Alert.group``); an
  escalated one raises its priority and says so once.
- **States** ``active -> acknowledged -> resolved``. A ``latching`` priority (high by
  default) stays active after the condition clears, until someone acknowledges it; the
  recovery is shown (``recovered``). Other priorities resolve when the condition does.
- **Re-notification** every ``renotify_s[priority]`` while active and unacknowledged.
- **Escalation**: an active alarm of an ``escalate`` priority not acknowledged within a
  tier's ``after_s`` (from when it became active) goes to that tier, once per tier.
- **Assign** records who has taken an alarm on (audited); it silences nothing.
- **Override** (a physician's, per patient): one rule's priority for this patient, or
  ``off``, for ``minutes`` (a known chronic bradycardia need not page as critical). New
  and open alarms of the rule follow it; an ``off`` alarm is recorded, never sent. When
  the override ends (or is ended), what it muted that still holds is raised.
- **Acknowledge and snooze** have a scope: the alarm, its rule for this patient, or the
  patient. A snooze lasts ``minutes`` and hides re-notifications, escalations and new
  alarms in its scope at or below the priority of the alarm it was given for: never a
  higher priority, and a rule-scope snooze never another rule. When it ends, each alarm
  it hid that is still active with its condition present gets one ``snooze_ended``
  notice.
- **Flapping**: a rule whose condition changes (raised or cleared) ``flap_changes`` times
  within ``flap_window_s`` becomes one ``flapping`` notice; its raises and clears are
  then recorded but not sent, until no change for ``flap_stable_s`` (``stable``).
- **Hierarchical suppression**: while a source this patient depends on is down (its BLE
  gateway, or the pipeline's broker connection: ``Suppress`` items, sent by the service
  when that source's own alarm fires and resolves), the patient's technical alarms
  (``suppressible``: no data, a gateway offline) are recorded but not sent: the source's
  one alarm says it all. One that resolves while suppressed (data came back with the
  source) closes quietly; one still active ``release_grace_s`` after the source came back
  is raised then (this patient is silent for a reason of their own).
- **Back-fill summaries** (alert state ``historical``) become one low-priority notice,
  ``backfill``, marked historical: never an alarm.

Time is the runtime's: items carry the time they reached it (the service stamps an alert
with its arrival, so one on late-uploaded data is not overdue on arrival; a command with
when it was given) and timers fire through ``on_notify(now_ns)``; nothing reads a clock.

>>> from vitalstream.model import Alert
>>> lc = Lifecycle().build(key="p1")
>>> a = Alert("a1", "p1", "bradycardia", "heart_rate", "critical", "firing", 38.0, 40.0, 0, 0)
>>> [(n.reason, n.priority) for n in lc.on_item(a)[0]]
[('raised', 'high')]
>>> lc.notify_at() // 10**9                      # high re-notifies after 5 min
300
>>> [n.reason for n in lc.on_notify(300 * 10**9)[0]]
['renotify', 'escalated']
>>> out = lc.on_item(Command("ack", "a1", "nurse-7", "at bedside", 360 * 10**9))[0]
>>> [type(x).__name__ for x in out], lc.notify_at() is None
(['Audit'], True)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from vitalstream.model import Alert, AlertState
from vitalstream.operators.contract import RETAIN, Emit, earliest, snapshot_of

NS = 1_000_000_000
PRIORITY_OF = {"critical": "high", "warning": "medium", "info": "low"}
RANK = {"low": 0, "medium": 1, "high": 2}
SCOPES = ("alarm", "rule", "patient")


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    after_s: float  # unacknowledged this long since the alarm became active


@dataclass(frozen=True, slots=True)
class Command:
    """An action of the care team on an alarm (``target``: its alert id)."""

    kind: str  # ack | snooze | resolve | assign | override
    target: str  # an alert id; override: the patient
    by: str
    reason: str
    event_ns: int
    scope: str = "alarm"  # alarm | rule | patient (ack and snooze)
    minutes: float = 0.0  # snooze
    assignee: str = ""  # assign: who takes it on
    rule: str = ""  # override: the rule, for this patient
    priority: str = ""  # override: high | medium | low | off ("": end the override)

    def __deepcopy__(self, memo: dict) -> "Command":
        return self


@dataclass(frozen=True, slots=True)
class Suppress:
    """A source this patient depends on went down (``active``) or came back; ``source`` is
    the alert id of that source's alarm."""

    source: str
    active: bool
    event_ns: int

    def __deepcopy__(self, memo: dict) -> "Suppress":
        return self


@dataclass(frozen=True, slots=True)
class Notice:
    """One outreach message."""

    alert_id: str
    patient: str
    rule: str
    priority: str
    state: str  # active | acknowledged | resolved
    reason: str  # raised | priority_raised | renotify | escalated | recovered | resolved |
    #              snooze_ended | flapping | stable | backfill; suppressed: recorded, not sent
    event_ns: int
    level: int = 0  # escalation level: 0 the primary team, 1.. the tiers
    tier: str = ""
    explanation: str = ""
    signal: str = ""
    value: float | None = None  # of the alert that raised or last changed the alarm
    threshold: float | None = None
    covers: tuple[str, ...] = ()  # a source's alarm: the patients behind it ("*": all)
    historical: bool = False  # about back-filled data, not about now

    def __deepcopy__(self, memo: dict) -> "Notice":
        return self


@dataclass(frozen=True, slots=True)
class Audit:
    alert_id: str
    patient: str
    event_ns: int
    who: str
    action: str  # acknowledged | snoozed | resolved | assigned
    reason: str
    detail: str = ""

    def __deepcopy__(self, memo: dict) -> "Audit":
        return self


@dataclass
class Alarm:
    alert_id: str
    patient: str
    rule: str
    priority: str
    raised_ns: int
    explanation: str = ""
    state: str = "active"
    present: bool = True  # the condition (some member of the concern) still holds
    members: set[str] = field(default_factory=set)
    notified_ns: int = 0
    level: int = 0
    signal: str = ""
    value: float | None = None
    threshold: float | None = None
    suppressed: bool = False  # recorded while its source was down: not sent (yet)
    covers: tuple[str, ...] = ()
    assignee: str = ""  # who has taken it on ("": the team)
    muted: bool = False  # its rule is switched off for this patient (an override): not sent


@dataclass
class Override:
    """A physician's setting of one rule for this patient, for a time."""

    rule: str
    priority: str  # high | medium | low | off
    until_ns: int
    by: str
    reason: str


@dataclass
class Snooze:
    patient: str
    rule: str | None  # None: every rule of the patient
    priority: str
    until_ns: int


@dataclass
class LifecycleState:
    alarms: dict[str, Alarm] = field(default_factory=dict)
    member_of: dict[str, str] = field(default_factory=dict)  # alert id -> alarm id
    snoozes: list[Snooze] = field(default_factory=list)
    changes: dict[str, deque] = field(default_factory=dict)  # rule -> change times (flapping)
    flapping: dict[str, int] = field(default_factory=dict)  # rule -> last change while flapping
    now_ns: int = 0
    suppressors: dict[str, int] = field(default_factory=dict)  # source alarm id -> since
    release_ns: int | None = None  # when alarms held for a source that came back are sent
    overrides: dict[str, Override] = field(default_factory=dict)  # rule -> override


@dataclass(frozen=True)
class Lifecycle:
    latching: frozenset[str] = frozenset({"high"})
    renotify_s: Mapping[str, float | None] = field(
        default_factory=lambda: {"high": 300.0, "medium": 900.0, "low": None})
    escalate: frozenset[str] = frozenset({"high"})
    tiers: tuple[Tier, ...] = (Tier("charge-nurse", 300.0), Tier("physician", 900.0))
    flap_changes: int = 4
    flap_window_s: float = 1800.0
    flap_stable_s: float = 900.0
    suppressible: frozenset[str] = frozenset({"no_data", "gateway_offline"})
    release_grace_s: float = 60.0  # a source is back: its patients' data has this long to follow

    def __post_init__(self) -> None:
        unknown = (set(self.latching) | set(self.escalate) | set(self.renotify_s)) - set(RANK)
        if unknown:
            raise ValueError(f"unknown priorities {sorted(unknown)}: high, medium, low")
        if any(b.after_s <= a.after_s for a, b in zip(self.tiers, self.tiers[1:])):
            raise ValueError("escalation tiers must come at increasing after_s")
        if self.flap_changes < 2 or self.flap_window_s <= 0 or self.flap_stable_s <= 0:
            raise ValueError("flapping needs flap_changes >= 2 and positive times")

    def build(self, resume_state: LifecycleState | None = None, *, key: str = "") -> "LifecycleLogic":
        return LifecycleLogic(self, resume_state if resume_state is not None else LifecycleState(), key)


class LifecycleLogic:
    def __init__(self, cfg: Lifecycle, st: LifecycleState, key: str) -> None:
        self.cfg, self.st, self.key = cfg, st, key

    # -- the operator contract --

    def on_item(self, item: Alert | Command) -> Emit:
        st = self.st
        st.now_ns = max(st.now_ns, item.event_ns)
        out = self._due(st.now_ns)  # what fell due before this item
        if type(item) is Command:
            out += self._command(item)
        elif type(item) is Alert:
            out += self._alert(item)
        elif type(item) is Suppress:
            self._suppress(item)
        return out, RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        self.st.now_ns = max(self.st.now_ns, now_ns)
        return self._due(self.st.now_ns), RETAIN

    def notify_at(self) -> int | None:
        st, cfg = self.st, self.cfg
        due = None
        for s in st.snoozes:
            due = earliest(due, s.until_ns)
        for rule, last in st.flapping.items():
            due = earliest(due, last + round(cfg.flap_stable_s * NS))
        due = earliest(due, st.release_ns)
        for o in st.overrides.values():
            due = earliest(due, o.until_ns)
        for a in st.alarms.values():
            if a.state != "active" or a.suppressed or a.muted or self._snoozed(a, a.priority):
                continue
            due = earliest(due, self._renotify_due(a), self._escalation_due(a))
        return due

    def on_eof(self) -> Emit:
        return [], RETAIN

    def snapshot(self) -> LifecycleState:
        return snapshot_of(self.st)

    # -- alert events --

    def _alert(self, a: Alert) -> list:
        st, cfg = self.st, self.cfg
        priority = PRIORITY_OF.get(a.severity, "medium")
        t = a.event_ns
        if a.state == AlertState.HISTORICAL:
            return [Notice(a.alert_id, a.patient, a.rule, "low", "historical", "backfill", t,
                           explanation=a.explanation, signal=a.signal, value=_finite(a.value),
                           historical=True)]
        if a.state in (AlertState.FIRING, AlertState.GROUPED, AlertState.ESCALATED):
            home = a.group if a.group and a.group in st.alarms else None
            if home is None:
                lost = self._lost_episode(a)
                if lost is not None:
                    # The rule's earlier episode is still open here, so the pipeline lost
                    # track of it (a crash before its state was saved) and found the same
                    # problem again: the same alarm, under the new id, and no second page.
                    lost.members.discard(lost.alert_id)
                    st.member_of.pop(lost.alert_id, None)
                    home = lost.alert_id
            ov = st.overrides.get(a.rule)
            if ov is not None and ov.priority in RANK:
                priority = ov.priority  # this patient's setting of the rule
            if home is None:  # a new concern: a new alarm
                alarm = st.alarms[a.alert_id] = Alarm(a.alert_id, a.patient, a.rule, priority, t,
                                                      a.explanation, notified_ns=t,
                                                      signal=a.signal, value=_finite(a.value),
                                                      threshold=_finite(a.threshold),
                                                      covers=a.covers)
                alarm.members.add(a.alert_id)
                st.member_of[a.alert_id] = a.alert_id
                if ov is not None and ov.priority == "off":
                    alarm.muted = True  # recorded (the console lists it), never sent
                    return []
                if a.rule in cfg.suppressible and (st.suppressors or st.release_ns is not None):
                    alarm.suppressed = True
                    return [self._notice(alarm, "suppressed", t)]
                if self._flap(a.rule, t):
                    return [self._notice(alarm, "flapping", t)]
                if a.rule in st.flapping or self._snoozed(alarm, priority):
                    return []
                return [self._notice(alarm, "raised", t)]
            alarm = st.alarms[home]
            alarm.members.add(a.alert_id)
            st.member_of[a.alert_id] = home
            alarm.present = True
            if RANK[priority] > RANK[alarm.priority]:
                alarm.priority, alarm.explanation = priority, a.explanation
                alarm.signal, alarm.value, alarm.threshold = (a.signal, _finite(a.value),
                                                              _finite(a.threshold))
                if alarm.state == "acknowledged":
                    alarm.state = "active"  # worse than what was acknowledged: ask again
                if not self._snoozed(alarm, priority):
                    alarm.notified_ns = t
                    return [self._notice(alarm, "priority_raised", t)]
            return []
        if a.state == AlertState.RESOLVED:
            home = st.member_of.pop(a.alert_id, None)
            alarm = st.alarms.get(home) if home is not None else None
            if alarm is None:
                return []
            alarm.members.discard(a.alert_id)
            if alarm.members:
                return []
            alarm.present = False
            if alarm.suppressed or alarm.muted:  # nobody was told, nobody is now
                return self._close(alarm, t, quiet=True)
            started = self._flap(alarm.rule, t)
            quiet = started or alarm.rule in st.flapping
            out = [self._notice(alarm, "flapping", t)] if started else []
            if alarm.state == "active" and alarm.priority in cfg.latching:
                return out if quiet else [self._notice(alarm, "recovered", t)]
            return out + self._close(alarm, t, quiet)
        return []  # realert: the lifecycle owns re-notification

    def _lost_episode(self, a: Alert) -> Alarm | None:
        """An open alarm this rule opened, on the same signal, whose condition still holds."""
        for x in self.st.alarms.values():
            if x.rule == a.rule and x.signal == a.signal and x.present \
                    and x.alert_id in x.members and x.alert_id != a.alert_id:
                return x
        return None

    def _suppress(self, s: Suppress) -> None:
        st = self.st
        if s.active:
            st.suppressors.setdefault(s.source, s.event_ns)
            st.release_ns = None
        elif st.suppressors.pop(s.source, None) is not None and not st.suppressors:
            st.release_ns = s.event_ns + round(self.cfg.release_grace_s * NS)

    def _release(self, now: int) -> list:
        """The sources are back and the grace is over: what is still silent is raised."""
        self.st.release_ns = None
        out = []
        for a in self.st.alarms.values():
            if a.suppressed:
                a.suppressed = False
                if a.state == "active" and a.present:
                    a.raised_ns = a.notified_ns = now  # escalation counts from being told
                    out.append(self._notice(a, "raised", now))
        return out

    def _close(self, alarm: Alarm, t: int, quiet: bool = False) -> list:
        alarm.state = "resolved"
        self.st.alarms.pop(alarm.alert_id, None)
        for m in alarm.members:
            self.st.member_of.pop(m, None)
        return [] if quiet else [self._notice(alarm, "resolved", t)]

    def _flap(self, rule: str, t: int) -> bool:
        """Count a change of ``rule``'s condition; True when it starts flapping now."""
        st, cfg = self.st, self.cfg
        if rule in st.flapping:
            st.flapping[rule] = t
            return False
        ch = st.changes.setdefault(rule, deque())
        ch.append(t)
        while ch and ch[0] <= t - cfg.flap_window_s * NS:
            ch.popleft()
        if len(ch) >= cfg.flap_changes:
            st.flapping[rule] = t
            del st.changes[rule]
            return True
        return False

    # -- commands --

    def _targets(self, c: Command) -> list[Alarm]:
        st = self.st
        home = st.member_of.get(c.target, c.target)
        alarm = st.alarms.get(home)
        if alarm is None:
            return []
        if c.scope == "alarm":
            return [alarm]
        return [a for a in st.alarms.values() if a.patient == alarm.patient
                and (c.scope == "patient" or a.rule == alarm.rule)]

    def _command(self, c: Command) -> list:
        if c.kind == "override":
            return self._override(c)
        if c.kind not in ("ack", "snooze", "resolve", "assign") or c.scope not in SCOPES:
            return []  # not an action this lifecycle knows: no effect (the API validates)
        targets = self._targets(c)
        out: list[Any] = []
        t = c.event_ns
        if c.kind == "snooze":
            if not targets or c.minutes <= 0:
                return []
            # the snooze takes the priority of the alarm it was given for: a patient-scope
            # snooze of a medium alarm must not hide a high one that was open before it
            given = self.st.alarms[self.st.member_of.get(c.target, c.target)]
            self.st.snoozes.append(Snooze(given.patient, None if c.scope == "patient" else given.rule,
                                          given.priority, t + round(c.minutes * 60 * NS)))
            for a in targets:
                if RANK[a.priority] > RANK[given.priority]:
                    continue  # not hidden by it: no "snoozed" in its audit
                out.append(Audit(a.alert_id, a.patient, t, c.by, "snoozed", c.reason,
                                 f"{c.scope} for {c.minutes:g} min"))
            return out
        if c.kind == "assign":
            # ownership, not silence: it changes who is asked, never whether
            for a in targets:
                if a.assignee != c.assignee:
                    a.assignee = c.assignee
                    out.append(Audit(a.alert_id, a.patient, t, c.by, "assigned", c.reason,
                                     c.assignee))
            return out
        for a in targets:
            if c.kind == "ack" and a.state == "active":
                a.state = "acknowledged"
                out.append(Audit(a.alert_id, a.patient, t, c.by, "acknowledged", c.reason, c.scope))
                if not a.present:
                    out += self._close(a, t)
            elif c.kind == "resolve":
                out.append(Audit(a.alert_id, a.patient, t, c.by, "resolved", c.reason, c.scope))
                out += self._close(a, t)
        return out

    def _override(self, c: Command) -> list:
        st, t = self.st, c.event_ns
        if not c.rule or c.priority not in ("", "off", *RANK) or (c.priority and c.minutes <= 0):
            return []
        if not c.priority:
            if st.overrides.pop(c.rule, None) is None:
                return []
            return [Audit("", self.key, t, c.by, "override_ended", c.reason, c.rule)] + \
                self._unmute(c.rule, t)
        st.overrides[c.rule] = Override(c.rule, c.priority, t + round(c.minutes * 60 * NS),
                                        c.by, c.reason)
        for a in st.alarms.values():  # the alarms already open follow the new setting
            if a.rule == c.rule:
                a.muted = c.priority == "off"
                if not a.muted:
                    a.priority = c.priority
        return [Audit("", self.key, t, c.by, "overridden", c.reason,
                      f"{c.rule} -> {c.priority} for {c.minutes:g} min")]

    def _unmute(self, rule: str, now: int) -> list:
        """An override of ``rule`` ended: what it kept quiet and still holds is raised."""
        out: list[Any] = []
        for a in list(self.st.alarms.values()):
            if a.rule == rule and a.muted:
                a.muted = False
                if not a.present:
                    out += self._close(a, now, quiet=True)
                elif a.state == "active":
                    a.raised_ns = a.notified_ns = now
                    out.append(self._notice(a, "raised", now))
        return out

    # -- timers --

    def _snoozed(self, a: Alarm, priority: str) -> bool:
        return any(s.patient == a.patient and (s.rule is None or s.rule == a.rule)
                   and RANK[priority] <= RANK[s.priority] and s.until_ns > self.st.now_ns
                   for s in self.st.snoozes)

    def _renotify_due(self, a: Alarm) -> int | None:
        every = self.cfg.renotify_s.get(a.priority)
        return None if every is None else a.notified_ns + round(every * NS)

    def _escalation_due(self, a: Alarm) -> int | None:
        cfg = self.cfg
        if a.priority not in cfg.escalate or a.level >= len(cfg.tiers):
            return None
        return a.raised_ns + round(cfg.tiers[a.level].after_s * NS)

    def _due(self, now: int) -> list:
        st, cfg = self.st, self.cfg
        out: list[Any] = []
        if st.release_ns is not None and st.release_ns <= now:
            out += self._release(now)
        for rule, o in list(st.overrides.items()):
            if o.until_ns <= now:
                del st.overrides[rule]
                out += self._unmute(rule, now)
        ended = [s for s in st.snoozes if s.until_ns <= now]
        if ended:
            st.snoozes = [s for s in st.snoozes if s.until_ns > now]
            for a in st.alarms.values():
                if a.state == "active" and a.present and not a.suppressed and not a.muted \
                        and not self._snoozed(a, a.priority) and any(
                        s.patient == a.patient and (s.rule is None or s.rule == a.rule)
                        for s in ended):
                    a.notified_ns = now
                    out.append(self._notice(a, "snooze_ended", now))
        for rule, last in list(st.flapping.items()):
            if now >= last + round(cfg.flap_stable_s * NS):
                del st.flapping[rule]
                for a in st.alarms.values():
                    if a.rule == rule:
                        out.append(self._notice(a, "stable", now))
        for a in list(st.alarms.values()):
            if a.state != "active" or a.suppressed or a.muted or self._snoozed(a, a.priority) \
                    or a.rule in st.flapping:
                continue
            due = self._renotify_due(a)
            if due is not None and due <= now:
                a.notified_ns = now
                out.append(self._notice(a, "renotify", now))
            esc = self._escalation_due(a)
            while esc is not None and esc <= now:
                a.level += 1
                out.append(self._notice(a, "escalated", now))
                esc = self._escalation_due(a)
        return out

    def _notice(self, a: Alarm, reason: str, t: int) -> Notice:
        tier = self.cfg.tiers[a.level - 1].name if a.level else ""
        return Notice(a.alert_id, a.patient, a.rule, a.priority, a.state, reason, t, a.level,
                      tier, a.explanation, a.signal, a.value, a.threshold, a.covers)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
