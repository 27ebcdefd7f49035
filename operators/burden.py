"""Alarm burden as time series: what the alarm lifecycle asked of the care team, per interval.

``BurdenMeter`` takes what the lifecycle (``vitalstream.operators.lifecycle``) emits,
``Notice`` and ``Audit`` records, plus ``Monitored`` counts from the host (how many
patients the pipeline monitors from that time on), and for each closed interval
``[start, start + interval)`` emits one ``BurdenPoint`` per (rule, priority) that had
activity, and one with rule and priority ``"*"`` holding the totals:

- ``raised``: new alarms (notices with reason ``raised``); ``per_patient_day``: raised /
  (time-weighted mean of the monitored patients x the interval in days), None without a
  ``Monitored`` count (or with a mean of 0);
- ``acknowledged``: alarms acknowledged in the interval (an ``Audit`` with action
  ``acknowledged``; an alarm counts once, at its first acknowledgement), under the rule
  and priority the alarm was raised with, wherever it was raised (an earlier interval
  included: ``ack_share`` = acknowledged / raised may exceed 1; None when raised is 0);
  ``ack_p50_s``, ``ack_max_s``: time from the alarm's ``raised`` notice to that
  acknowledgement (median, maximum), None without one;
- ``renotified``, ``escalated``, ``flapping`` (floods collapsed into one notice),
  ``suppressed`` (recorded, not sent: the source is down), ``resolved``: notices of those
  reasons, under the notice's own rule and priority;
- ``other``: every other reason (``priority_raised``, ``recovered``, ``snooze_ended``,
  ``stable``, ``backfill``, and any added later) counted under its own name, as sorted
  ``(reason, count)`` pairs: an unknown reason is counted, never an error.

Intervals are aligned on multiples of ``interval_s`` since the epoch (UTC hours by
default). Time is event time: an interval closes when an item's ``event_ns`` or the
``now_ns`` handed to ``on_notify`` reaches its end (an item exactly at the end belongs
to the next interval), and ``on_eof`` closes the open one. An interval the meter saw
any time in gives its totals row even when nothing happened (a quiet hour is a 0, not a
gap); intervals skipped over (the host was down) give nothing. An item older than the
open interval (late) counts in the open interval: a closed interval is never re-opened.
An acknowledgement of an alarm the meter never saw (raised before it started, or
forgotten) is counted under rule and priority ``"unknown"``.

What it remembers of each alarm (alert id -> rule, priority, raised time) is kept until
one full interval after the alarm resolved (so an ``Audit`` handed in after the
``resolved`` notice of the same step still finds it), and at most ``max_alarm_age_s``
(7 days) after it was first seen: the state stays bounded.

A worked timeline, hourly, two patients monitored. Hour 0: three high bradycardia alarms
at 0, 600 and 1200 s; the first two acknowledged after 60 and 180 s (median 120, maximum
180, share 2/3); 3 / (2 patients x 1/24 day) = 36 per patient-day; the third escalates at
1500 s. Hour 1: the third is acknowledged at 3700 s, 2500 s after it was raised, and
resolves; nothing is raised (0 per patient-day, no share).

>>> from vitalstream.operators.contract import drive
>>> from vitalstream.operators.lifecycle import Audit, Notice
>>> def notice(aid, reason, t_s):
...     return Notice(aid, "p1", "bradycardia", "high", "active", reason, t_s * NS)
>>> def ack(aid, t_s):
...     return Audit(aid, "p1", t_s * NS, "nurse-7", "acknowledged", "at bedside")
>>> items = [Monitored(0, 2), notice("a1", "raised", 0), ack("a1", 60),
...          notice("a2", "raised", 600), ack("a2", 780), notice("a3", "raised", 1200),
...          notice("a3", "escalated", 1500), ack("a3", 3700), notice("a3", "resolved", 3700)]
>>> for p in drive(BurdenMeter().build(), items):
...     print(p.start_ns // NS, p.rule, p.priority, p.raised, p.per_patient_day,
...           p.acknowledged, p.ack_share and round(p.ack_share, 3), p.ack_p50_s, p.ack_max_s,
...           p.escalated, p.resolved)
0 bradycardia high 3 36.0 2 0.667 120.0 180.0 1 0
0 * * 3 36.0 2 0.667 120.0 180.0 1 0
3600 bradycardia high 0 0.0 1 None 2500.0 2500.0 0 1
3600 * * 0 0.0 1 None 2500.0 2500.0 0 1

A host with lists of notices and audits per step hands them in with ``on_batch`` (in
event-time order, stably: same-time items keep their order) and calls ``on_notify(now_ns)``
when ``notify_at()`` (the end of the open interval) is due::

    outputs, _ = meter.on_batch([Monitored(now_ns, n_patients), *notices, *audits])
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from vitalstream.operators.contract import RETAIN, Emit, snapshot_of
from vitalstream.operators.lifecycle import Audit, Notice

NS = 1_000_000_000
DAY_NS = 86_400 * NS
ALL = "*"  # rule and priority of the totals row
UNKNOWN = "unknown"  # rule and priority of an acknowledged alarm the meter never saw
# notice reason -> BurdenPoint field; every other reason goes to ``other`` under its name
COUNTED = {"raised": "raised", "renotify": "renotified", "escalated": "escalated",
           "flapping": "flapping", "suppressed": "suppressed", "resolved": "resolved"}


@dataclass(frozen=True, slots=True)
class Monitored:
    """How many patients the pipeline monitors from ``event_ns`` on (sent by the host)."""

    event_ns: int
    patients: int

    def __deepcopy__(self, memo: dict) -> "Monitored":
        return self


@dataclass(frozen=True, slots=True)
class BurdenPoint:
    """The alarm burden of one rule and priority (``"*"``: all) over [start_ns, end_ns)."""

    start_ns: int
    end_ns: int
    rule: str
    priority: str
    raised: int = 0
    per_patient_day: float | None = None
    acknowledged: int = 0
    ack_share: float | None = None
    ack_p50_s: float | None = None
    ack_max_s: float | None = None
    renotified: int = 0
    escalated: int = 0
    flapping: int = 0
    suppressed: int = 0
    resolved: int = 0
    other: tuple[tuple[str, int], ...] = ()  # (reason, count) of other reasons, sorted

    def __deepcopy__(self, memo: dict) -> "BurdenPoint":
        return self


@dataclass
class Tally:
    """One (rule, priority) in the open interval."""

    reasons: dict[str, int] = field(default_factory=dict)  # notice reason -> count
    acked: int = 0
    ack_ns: list[int] = field(default_factory=list)  # raised -> acknowledged, known ones


@dataclass
class Seen:
    """What the meter remembers of one alarm."""

    rule: str
    priority: str  # as raised (or as first seen)
    first_ns: int
    raised_ns: int | None = None
    resolved_ns: int | None = None
    acked: bool = False


@dataclass
class BurdenState:
    start_ns: int | None = None  # the open interval; None: none open
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)  # (rule, priority)
    alarms: dict[tuple[str, str], Seen] = field(default_factory=dict)  # (patient, alert id)
    patients: int | None = None  # the latest Monitored count
    mon_ns: int = 0  # monitored patients integrated up to here (in the open interval)
    mon_area: int = 0  # patients x ns over the open interval, from the first known count
    mon_known_ns: int = 0  # how much of the open interval has a known count


@dataclass(frozen=True)
class BurdenMeter:
    interval_s: float = 3600.0
    max_alarm_age_s: float = 7 * 86_400.0  # forget an alarm this long after first seeing it

    def __post_init__(self) -> None:
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ValueError(f"interval_s must be positive, not {self.interval_s!r}")
        if round(self.interval_s * NS) <= 0 or not self.max_alarm_age_s > 0:
            raise ValueError("interval_s and max_alarm_age_s must be positive")

    def build(self, resume_state: BurdenState | None = None, *, key: str = "") -> "BurdenLogic":
        return BurdenLogic(self, resume_state if resume_state is not None else BurdenState(), key)


class BurdenLogic:
    def __init__(self, cfg: BurdenMeter, st: BurdenState, key: str) -> None:
        self.cfg, self.st, self.key = cfg, st, key
        self.interval_ns = round(cfg.interval_s * NS)
        self.max_age_ns = round(cfg.max_alarm_age_s * NS)

    # -- the operator contract --

    def on_item(self, item: Notice | Audit | Monitored) -> Emit:
        kind = type(item)
        if kind is not Notice and kind is not Audit and kind is not Monitored:
            return [], RETAIN  # not something this meter counts (a Suppress, a Command...)
        t = item.event_ns
        out = self._advance(t)
        if kind is Notice:
            self._notice(item)
        elif kind is Audit:
            self._audit(item)
        else:
            self._integrate(t)
            self.st.patients = max(0, int(item.patients))
        return out, RETAIN

    def on_batch(self, items: Iterable[Notice | Audit | Monitored]) -> Emit:
        """Several items at once (one step of a host), taken in event-time order; items of
        the same time keep the order they were given in."""
        out: list[Any] = []
        for x in sorted(items, key=lambda x: getattr(x, "event_ns", 0)):
            out += self.on_item(x)[0]
        return out, RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        return self._advance(now_ns), RETAIN

    def notify_at(self) -> int | None:
        s = self.st.start_ns
        return None if s is None else s + self.interval_ns

    def on_eof(self) -> Emit:
        return (self._close() if self.st.start_ns is not None else []), RETAIN

    def snapshot(self) -> BurdenState:
        return snapshot_of(self.st)

    # -- intervals --

    def _advance(self, t: int) -> list[BurdenPoint]:
        """Close the open interval if ``t`` reached its end; open the one holding ``t``."""
        st, iv = self.st, self.interval_ns
        out: list[BurdenPoint] = []
        if st.start_ns is not None and t >= st.start_ns + iv:
            out = self._close()
        if st.start_ns is None:
            st.start_ns = st.mon_ns = t - t % iv
            st.mon_area = st.mon_known_ns = 0
        return out

    def _integrate(self, t: int) -> None:
        st = self.st
        if t <= st.mon_ns:
            return
        if st.patients is not None:
            st.mon_area += st.patients * (t - st.mon_ns)
            st.mon_known_ns += t - st.mon_ns
        st.mon_ns = t

    def _close(self) -> list[BurdenPoint]:
        st = self.st
        start = st.start_ns
        assert start is not None
        end = start + self.interval_ns
        self._integrate(end)
        rows = [self._point(start, end, rule, prio, [t])
                for (rule, prio), t in sorted(st.tallies.items())]
        rows.append(self._point(start, end, ALL, ALL, list(st.tallies.values())))
        st.tallies = {}
        st.start_ns = None
        oldest = end - self.max_age_ns
        st.alarms = {k: a for k, a in st.alarms.items()
                     if (a.resolved_ns is None or a.resolved_ns >= start) and a.first_ns > oldest}
        return rows

    def _point(self, start: int, end: int, rule: str, prio: str,
               tallies: list[Tally]) -> BurdenPoint:
        st = self.st
        reasons: dict[str, int] = {}
        acked, ack_ns = 0, []
        for t in tallies:
            for r, n in t.reasons.items():
                reasons[r] = reasons.get(r, 0) + n
            acked += t.acked
            ack_ns += t.ack_ns
        raised = reasons.get("raised", 0)
        per_day = None
        if st.mon_known_ns > 0 and st.mon_area > 0:
            # raised / (mean patients x interval days), mean = area / known: one division
            per_day = raised * DAY_NS * st.mon_known_ns / (st.mon_area * (end - start))
        counts = {f: reasons.get(r, 0) for r, f in COUNTED.items()}
        return BurdenPoint(
            start, end, rule, prio, per_patient_day=per_day, acknowledged=acked,
            ack_share=acked / raised if raised else None,
            ack_p50_s=statistics.median(ack_ns) / NS if ack_ns else None,
            ack_max_s=max(ack_ns) / NS if ack_ns else None,
            other=tuple(sorted((r, n) for r, n in reasons.items() if r not in COUNTED)),
            **counts)

    # -- items --

    def _tally(self, rule: str, prio: str) -> Tally:
        t = self.st.tallies.get((rule, prio))
        if t is None:
            t = self.st.tallies[(rule, prio)] = Tally()
        return t

    def _notice(self, n: Notice) -> None:
        tally = self._tally(n.rule, n.priority)
        tally.reasons[n.reason] = tally.reasons.get(n.reason, 0) + 1
        if n.reason == "backfill" or getattr(n, "historical", False):
            return  # about back-filled data: never an alarm to acknowledge
        k = (n.patient, n.alert_id)
        seen = self.st.alarms.get(k)
        if seen is None:
            seen = self.st.alarms[k] = Seen(n.rule, n.priority, n.event_ns)
        if n.reason == "raised":
            # a suppressed alarm raised later (its source came back) is told now: from now
            if seen.raised_ns is None:
                seen.priority = n.priority
            seen.raised_ns = n.event_ns
        elif n.reason == "resolved":
            seen.resolved_ns = n.event_ns

    def _audit(self, a: Audit) -> None:
        seen = self.st.alarms.get((a.patient, a.alert_id))
        if a.action == "resolved":
            if seen is not None and seen.resolved_ns is None:
                seen.resolved_ns = a.event_ns
            return
        if a.action != "acknowledged":
            return  # snoozed: not a figure here
        if seen is None:
            self._tally(UNKNOWN, UNKNOWN).acked += 1
            return
        if seen.acked:
            return  # acknowledged again (its priority rose since): one alarm, counted once
        seen.acked = True
        tally = self._tally(seen.rule, seen.priority)
        tally.acked += 1
        if seen.raised_ns is not None:
            tally.ack_ns.append(max(0, a.event_ns - seen.raised_ns))
