"""One patient's nudge logic: triggers -> deferral -> digest -> caps -> send (or say why not).

A nudge goes through four stages, each on its own deadline, all in event time:

1. *trigger* (``due_ns``): a tag set, a silence reaching ``for_s``, an after-event
   timer, a schedule tick. Experiments (exposure, holdout) and ``repeat_s`` are
   decided here.
2. *ready* (``ready_ns``): ``due_ns``, or the end of the patient's quiet hours.
3. *digest*: the first ready nudge of a kind+channel opens a group that closes
   ``digest_s`` later (or at once when ``digest_s`` is 0); others ready before then join.
4. *slot* (the group's close time): every group closing at one instant is one slot,
   served in priority order; ``done_if`` and expiry are checked, then the caps. A
   group that finds its cap full only because a higher-priority group of the same
   slot took it is suppressed with reason "priority", otherwise "cap".

Every output's times are deadlines computed from event times, never the instant
``on_notify`` happened to be called, so a replay gives the same records and ids.
A deadline at ``t`` is served before an item stamped ``t`` (a glucose reading at
exactly ``within_s`` after the meal is late).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vitalstream.care import CareEvent, Evidence, Exposure, Nudge, NudgeSuppressed, TagChange
from vitalstream.model import Reading
from vitalstream.operators.contract import RETAIN, Emit, earliest, snapshot_of
from vitalstream.operators.nudge.localtime import period_key, quiet_end
from vitalstream.operators.nudge.strategy import Send, Strategy, zone as check_zone
from vitalstream.errors import ConfigError
from vitalstream.timeutil import to_datetime


NS = 1_000_000_000
KEEP_SENT_NS = 8 * 86_400 * NS  # the longest cap period is an ISO week (plus a DST hour)


@dataclass(frozen=True)
class Pending:
    """A triggered nudge on its way to a slot."""

    strategy: str
    priority: int
    due_ns: int
    trigger_ns: int  # the event the strategy reacts to (the meal, the last reading...)
    ready_ns: int
    send: Send
    reason: str
    evidence: tuple[Evidence, ...] = ()
    experiment: str = ""
    variant: str = ""

    def __deepcopy__(self, memo: dict) -> "Pending":
        return self


@dataclass
class NudgeState:
    """Everything a patient's logic needs, all of it bounded (see ``NudgeLogic``)."""

    clock_ns: int | None = None  # max event time seen, moved on by on_notify
    first_ns: int | None = None  # first item: the anchor of programme-free schedules
    timezone: str = ""  # set by a CareEvent(kind="timezone"); "" is the policy's zone
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # signal -> latest reading
    tags: dict[str, int] = field(default_factory=dict)  # tag -> since
    enrolled: dict[str, int] = field(default_factory=dict)  # programme -> since
    last_event: dict[str, int] = field(default_factory=dict)  # visit/meal -> latest event_ns
    fired: dict[str, int] = field(default_factory=dict)  # strategy -> latest due (silence, schedule)
    last_sent: dict[str, int] = field(default_factory=dict)  # strategy -> due of its latest nudge
    timers: list[tuple[int, str, int]] = field(default_factory=list)  # (due, strategy, event_ns)
    queued: list[Pending] = field(default_factory=list)  # waiting for ready_ns
    groups: dict[str, tuple[int, tuple[Pending, ...]]] = field(default_factory=dict)
    sent: list[tuple[int, str]] = field(default_factory=list)  # (at_ns, channel), last 8 days
    exposed: tuple[str, ...] = ()  # experiments this patient has met
    suppressed: dict[str, int] = field(default_factory=dict)  # reason -> count
    nudges: int = 0


def _when(ns: int) -> str:
    return to_datetime(ns).strftime("%Y-%m-%d %H:%M UTC")


def _span(ns: int) -> str:
    s = ns // NS
    for unit, name in ((86_400, "day"), (3_600, "h"), (60, "min")):
        if s % unit == 0 and s >= unit:
            n = s // unit
            return f"{n} {name}{'s' if name == 'day' and n != 1 else ''}"
    return f"{s} s"


class NudgeLogic:
    """The nudge engine for one patient (``NudgePolicy.build``); see the package docstring.

    State is bounded: per signal one latest reading, per strategy a few times, the
    after-event timers still running, the nudges between trigger and slot, and the
    sends of the last 8 days (what the caps count).
    """

    def __init__(self, policy: Any, state: NudgeState, key: str) -> None:
        # policy: the NudgePolicy that built it (not imported: policy.py imports this module)
        self.policy = policy
        self.st = state
        self.key = key
        self.by_name = {s.name: s for s in policy.strategies}
        # signals some strategy reads (silences, expectations, done_if): a reading of any
        # other one moves the clock and nothing else, which on_item serves without a
        # deadline scan (a wearable's heart rate each minute is most of the traffic)
        self._watched = {s.trigger.signal for s in policy.strategies if s.trigger.signal} | \
            {s.done_if.signal for s in policy.strategies if s.done_if is not None}
        self._due: int | None = None  # the next deadline, valid between two verbs
        self._due_known = False

    # -- the five verbs --

    def on_item(self, item: Any) -> Emit:
        if isinstance(item, Reading):
            t = item.event_ns
        elif isinstance(item, TagChange):
            t = item.at_ns
        elif isinstance(item, CareEvent):
            t = item.event_ns
        else:  # clinical alerts included: they are never delayed by nudge caps
            raise TypeError(f"nudge logic takes Reading, TagChange or CareEvent, "
                            f"not {type(item).__name__}")
        st = self.st
        if (type(item) is Reading and self._due_known and st.first_ns is not None
                and item.signal.value not in self._watched and (self._due is None or t < self._due)):
            st.clock_ns = max(st.clock_ns, t)  # nothing falls due by t, nothing it changes
            seen = st.last.get(item.signal.value)
            if seen is None or t > seen[0]:
                st.last[item.signal.value] = (t, item.value)
            return [], RETAIN
        out: list = []
        self._advance(t, out)
        st.clock_ns = t if st.clock_ns is None else max(st.clock_ns, t)
        if st.first_ns is None:
            st.first_ns = t
        if isinstance(item, Reading):
            name = item.signal.value
            seen = st.last.get(name)
            if seen is None or item.event_ns > seen[0]:
                st.last[name] = (item.event_ns, item.value)
        elif isinstance(item, TagChange):
            self._tag(item, out)
        else:
            self._care(item, out)
        self._advance(st.clock_ns, out)  # whatever the item made due at once
        self._remember_due()
        return out, RETAIN

    def _remember_due(self) -> None:
        self._due, self._due_known = self._next(True), True

    def on_notify(self, now_ns: int) -> Emit:
        out: list = []
        self._advance(now_ns, out)
        st = self.st
        st.clock_ns = now_ns if st.clock_ns is None else max(st.clock_ns, now_ns)
        self._remember_due()
        return out, RETAIN

    def notify_at(self) -> int | None:
        return self._due if self._due_known else self._next(True)

    def on_eof(self) -> Emit:
        """Nudges already triggered go through to their slots; nothing new triggers."""
        out: list = []
        self._advance(None, out, triggers=False)
        self._remember_due()
        return out, RETAIN

    def snapshot(self) -> NudgeState:
        return snapshot_of(self.st)

    def suppressed_counts(self) -> dict[str, int]:
        """How many nudges were not sent, by reason ("cap", "holdout", ...)."""
        return dict(self.st.suppressed)

    # -- inputs --

    def _tag(self, tc: TagChange, out: list) -> None:
        if tc.change in ("set", "update"):
            if tc.tag in self.st.tags:
                return  # a re-evaluation, or the same change again
            self.st.tags[tc.tag] = tc.at_ns
            if tc.change == "set":
                why = f"tag {tc.tag} set ({tc.rule})" if tc.rule else f"tag {tc.tag} set"
                self._tag_set(tc.tag, tc.at_ns, why, tc.evidence, out)
        elif tc.change == "end":
            self.st.tags.pop(tc.tag, None)

    def _tag_set(self, tag: str, t: int, why: str, evidence: tuple, out: list) -> None:
        for s in self.policy.strategies:
            if s.trigger.kind == "tag_set" and s.trigger.tag == tag:
                self._fire(s, t, t, why + f" at {_when(t)}", evidence, out)

    def _care(self, ev: CareEvent, out: list) -> None:
        st, t, v = self.st, ev.event_ns, ev.value
        if ev.kind in ("visit", "meal"):
            new = t > st.last_event.get(ev.kind, -1)
            if new:
                st.last_event[ev.kind] = t
        elif ev.kind == "enrol":
            new = v not in st.enrolled
            if new:
                st.enrolled[v] = t
        elif ev.kind == "leave":
            new = st.enrolled.pop(v, None) is not None
        elif ev.kind == "manual-tag":
            new = v not in st.tags
            if new:
                st.tags[v] = t
                self._tag_set(v, t, f"tag {v} set by hand", (), out)
        elif ev.kind == "clear-tag":
            new = st.tags.pop(v, None) is not None
        elif ev.kind == "timezone":
            try:
                check_zone(v, "timezone event")
            except ConfigError:
                return  # an unknown zone keeps the one the patient had
            st.timezone = v
            return
        else:
            return
        if not new:
            return  # a duplicate (or a late older one): order matters, see the Case
        for s in self.policy.strategies:
            tr = s.trigger
            if tr.kind == "after_event" and tr.event == ev.kind:
                st.timers.append((t + (tr.within_s or tr.delay_s) * NS, s.name, t))

    # -- programme and deadlines --

    def _since(self, programme: str | None) -> int | None:
        """When the patient joined ``programme`` (tag or enrolment), None if not in it."""
        return earliest(self.st.tags.get(programme), self.st.enrolled.get(programme))

    def _silence(self, s: Strategy) -> tuple[int, int, bool] | None:
        """(reference, next due, whether the reference is a reading) of a no_reading strategy."""
        tr, st = s.trigger, self.st
        since = self._since(tr.programme) if tr.programme else st.first_ns
        if since is None:
            return None
        seen = st.last.get(tr.signal)
        is_reading = seen is not None and seen[0] >= since
        ref = seen[0] if is_reading else since
        base = ref + tr.for_s * NS
        last = st.fired.get(s.name)
        if last is None or last < base:
            return ref, base, is_reading
        return (ref, last + s.repeat_s * NS, is_reading) if s.repeat_s else None

    def _schedule(self, s: Strategy) -> tuple[int, int] | None:
        tr = s.trigger
        anchor = self._since(tr.programme) if tr.programme else self.st.first_ns
        if anchor is None:
            return None
        every = tr.every_s * NS
        last = self.st.fired.get(s.name)
        k = 1 if last is None or last < anchor + every else (last - anchor) // every + 1
        return anchor, anchor + k * every

    def _trigger_due(self, s: Strategy) -> int | None:
        if s.trigger.kind == "no_reading":
            got = self._silence(s)
            return None if got is None else got[1]
        if s.trigger.kind == "schedule":
            got = self._schedule(s)
            return None if got is None else got[1]
        return None

    def _next(self, triggers: bool) -> int | None:
        st = self.st
        dues = [c for c, _ in st.groups.values()] + [p.ready_ns for p in st.queued]
        if triggers:
            dues += [d for d, _, _ in st.timers]
            dues += [self._trigger_due(s) for s in self.policy.strategies]
        return earliest(*dues)

    def _advance(self, to: int | None, out: list, *, triggers: bool = True) -> None:
        """Serve every deadline up to ``to`` (all of them when None), in time order."""
        st = self.st
        while True:
            t = self._next(triggers)
            if t is None or (to is not None and t > to):
                return
            if st.clock_ns is not None and t < st.clock_ns:
                t = st.clock_ns  # made due in the past by a late item: served now
            st.clock_ns = t
            if triggers:
                self._triggers(t, out)
            ready = sorted((p for p in st.queued if p.ready_ns <= t),
                           key=lambda p: (p.ready_ns, p.priority, p.due_ns))
            if ready:
                st.queued = [p for p in st.queued if p.ready_ns > t]
                for p in ready:
                    self._join(p, t)
            closing = sorted((k for k, (c, _) in st.groups.items() if c <= t),
                             key=lambda k: (min(p.priority for p in st.groups[k][1]), k))
            if closing:
                self._slot([st.groups.pop(k)[1] for k in closing], t, out)

    def _triggers(self, t: int, out: list) -> None:
        st = self.st
        for s in self.policy.strategies:
            kind = s.trigger.kind
            if kind == "no_reading":
                got = self._silence(s)
                if got is not None and got[1] <= t:
                    self._fire_silence(s, *got, out)
            elif kind == "schedule":
                got = self._schedule(s)
                if got is not None and got[1] <= t:
                    anchor, due = got
                    st.fired[s.name] = due
                    why = f"recall every {_span(s.trigger.every_s * NS)}"
                    if s.trigger.programme:
                        why += f" in programme {s.trigger.programme} since {_when(anchor)}"
                    self._fire(s, due, due, why, (), out)
        if any(d <= t for d, _, _ in st.timers):
            due_now = sorted(x for x in st.timers if x[0] <= t)
            st.timers = [x for x in st.timers if x[0] > t]
            for due, name, event_ns in due_now:
                s = self.by_name.get(name)
                if s is not None:
                    self._fire_after(s, due, event_ns, out)

    def _fire_silence(self, s: Strategy, ref: int, due: int, is_reading: bool, out: list) -> None:
        tr = s.trigger
        self.st.fired[s.name] = due
        if is_reading:
            value = self.st.last[tr.signal][1]
            why = (f"no {tr.signal} reading for {_span(due - ref)}; last {_when(ref)} "
                   f"(value {value:g})")
            ev = Evidence(ref, tr.signal, value, "last reading")
        else:
            joined = f"joining {tr.programme}" if tr.programme else "the first record"
            why = f"no {tr.signal} reading in the {_span(due - ref)} since {joined} on {_when(ref)}"
            ev = Evidence(ref, tr.signal, math.nan, f"no reading since {joined}")
        self._fire(s, due, ref, why, (ev,), out)

    def _fire_after(self, s: Strategy, due: int, event_ns: int, out: list) -> None:
        tr = s.trigger
        if tr.signal:
            seen = self.st.last.get(tr.signal)
            if seen is not None and seen[0] > event_ns:
                return  # logged in time: the behaviour happened, nothing triggered
            why = (f"no {tr.signal} reading within {_span(tr.within_s * NS)} of the "
                   f"{tr.event} at {_when(event_ns)}")
        else:
            why = f"{_span(tr.delay_s * NS)} after the {tr.event} at {_when(event_ns)}" \
                if tr.delay_s else f"{tr.event} at {_when(event_ns)}"
        ev = Evidence(event_ns, tr.event, math.nan, f"{tr.event} logged")
        self._fire(s, due, event_ns, why, (ev,), out)

    # -- stages --

    def _zone(self) -> str:
        return self.st.timezone or self.policy.timezone

    def _defer(self, t: int, channel: str) -> int:
        q = self.policy.quiet_hours
        if q is None or not q.applies(channel):
            return t
        return quiet_end(t, self._zone(), q.start, q.end)

    def _fire(self, s: Strategy, due: int, trigger_ns: int, why: str,
              evidence: tuple[Evidence, ...], out: list) -> None:
        st = self.st
        if s.trigger.programme and self._since(s.trigger.programme) is None:
            return  # only for patients in the programme
        exp_name = variant = ""
        if s.experiment is not None:
            exp_name, variant = s.experiment.name, s.experiment.assign(self.key)
            if exp_name not in st.exposed:  # intention to treat: whatever happens next
                st.exposed = st.exposed + (exp_name,)
                out.append(Exposure(exp_name, variant, self.key, s.name, due))
        send = s.send_for(variant)
        if s.experiment is not None and variant == s.experiment.holdout:
            self._suppress(s.name, "holdout", due, send.channel, "", exp_name, variant, out)
            return
        last = st.last_sent.get(s.name)
        if s.repeat_s and last is not None and due - last < s.repeat_s * NS:
            self._suppress(s.name, "repeat", due, send.channel,
                           f"last nudge due {_when(last)}, repeat_s {s.repeat_s}",
                           exp_name, variant, out)
            return
        ready = self._defer(max(due, st.clock_ns or due), send.channel)
        p = Pending(s.name, s.priority, due, trigger_ns, ready, send, f"{s.name}: {why}",
                    evidence, exp_name, variant)
        if self._expired(p, ready, out):
            return
        st.queued.append(p)

    def _expired(self, p: Pending, at: int, out: list) -> bool:
        s = self.by_name[p.strategy]
        if s.max_delay_s is None or at - p.due_ns <= s.max_delay_s * NS:
            return False
        self._suppress(p.strategy, "expired", p.due_ns, p.send.channel,
                       f"not sendable before {_when(at)}, max_delay_s {s.max_delay_s}",
                       p.experiment, p.variant, out)
        return True

    def _join(self, p: Pending, t: int) -> None:
        key = f"{p.send.kind}|{p.send.channel}"
        got = self.st.groups.get(key)
        if got is not None:
            self.st.groups[key] = (got[0], got[1] + (p,))
        else:
            close = self._defer(t + self.policy.digest_s * NS, p.send.channel)
            self.st.groups[key] = (close, (p,))

    def _done(self, p: Pending) -> bool:
        d = self.by_name[p.strategy].done_if
        if d is None:
            return False
        seen = self.st.last.get(d.signal)
        since = p.trigger_ns if d.since == "trigger" else p.due_ns
        return seen is not None and seen[0] > since

    def _blocking(self, channel: str, t: int, extra: list[str]):
        """The first cap a message on ``channel`` at ``t`` would break, given ``extra`` sends."""
        tz = self._zone()
        for cap in self.policy.caps:
            if cap.channel not in ("*", channel):
                continue
            key = period_key(t, tz, cap.per)
            n = sum(1 for at, ch in self.st.sent
                    if (cap.channel == "*" or ch == channel) and period_key(at, tz, cap.per) == key)
            n += sum(1 for ch in extra if cap.channel == "*" or ch == channel)
            if n >= cap.max:
                return cap
        return None

    def _slot(self, groups: list[tuple[Pending, ...]], t: int, out: list) -> None:
        st = self.st
        taken: list[str] = []  # channels sent on in this slot
        winners: list[str] = []
        for members in groups:
            live = []
            for p in sorted(members, key=lambda p: (p.priority, p.due_ns)):
                if self._done(p):
                    self._suppress(p.strategy, "already-done", t, p.send.channel,
                                   f"{self.by_name[p.strategy].done_if.signal} reading after "
                                   f"{_when(p.trigger_ns)}", p.experiment, p.variant, out)
                elif not self._expired(p, t, out):
                    live.append(p)
            if not live:
                continue
            lead = live[0]
            channel = lead.send.channel
            cap = self._blocking(channel, t, taken)
            if cap is not None:
                before = self._blocking(channel, t, [])
                reason = "cap" if before is not None else "priority"
                detail = before.label if before is not None else \
                    f"{cap.label} taken by {', '.join(winners)}"
                for p in live:
                    self._suppress(p.strategy, reason, t, p.send.channel, detail, p.experiment,
                                   p.variant, out)
                continue
            rest = live[1:]
            reason = lead.reason + "".join(f"; also {p.reason}" for p in rest)
            nudge = Nudge(self.key, lead.strategy, lead.send.kind, channel, lead.due_ns, t,
                          lead.send.message, reason,
                          tuple(e for p in live for e in p.evidence),
                          lead.experiment, lead.variant, tuple(p.strategy for p in rest))
            out.append(nudge)
            st.nudges += 1
            for p in rest:
                self._suppress(p.strategy, "digested", t, p.send.channel,
                               f"in nudge {nudge.nudge_id} ({lead.strategy})", p.experiment,
                               p.variant, out)
            for p in live:
                st.last_sent[p.strategy] = max(p.due_ns, st.last_sent.get(p.strategy, p.due_ns))
            taken.append(channel)
            winners.append(lead.strategy)
        if taken:
            st.sent = [x for x in st.sent if x[0] > t - KEEP_SENT_NS] + [(t, c) for c in taken]

    def _suppress(self, strategy: str, reason: str, at: int, channel: str, detail: str,
                  experiment: str, variant: str, out: list) -> None:
        out.append(NudgeSuppressed(self.key, strategy, reason, at, channel, detail, experiment,
                                   variant))
        self.st.suppressed[reason] = self.st.suppressed.get(reason, 0) + 1
