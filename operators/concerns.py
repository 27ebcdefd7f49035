"""One concern per patient problem: alerts of different rules about the same signals group.

A tachycardia often fires three rules: the patient's own baseline (info), the
threshold (warning) and NEWS2. A care team wants one alert for it, raised in
priority when it gets worse, not three pages. So per patient, an alert that
fires while another alert on an overlapping signal is open joins that concern:
its ``firing`` becomes ``grouped`` (recorded, shown under the concern, no new
page) or, when its priority is higher than the concern's so far, ``escalated``
(one notification of the same concern at the new priority). The concern lasts
until every member has resolved. NEWS2 overlaps every signal it scores.

>>> from vitalstream.model import Alert
>>> g = Concerns().build(key="p1")
>>> def a(rule, sig, sev, state="firing", aid=None):
...     return Alert(aid or rule, "p1", rule, sig, sev, state, 0.0, 0.0, 0, 0)
>>> [x.state for x in g.on_alerts([a("hr_above_usual", "heart_rate", "info")])]
['firing']
>>> [(x.state, x.group) for x in g.on_alerts([a("tachycardia", "heart_rate", "warning")])]
[('escalated', 'hr_above_usual')]
>>> [x.state for x in g.on_alerts([a("desaturation", "spo2", "warning")])]   # another problem
['firing']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vitalstream.model import Alert, AlertState
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of

RANK = {"info": 0, "warning": 1, "critical": 2}
NEWS2_SIGNALS = frozenset({"resp_rate", "spo2", "bp_systolic", "heart_rate", "body_temp"})


def signals_of(a: Alert) -> frozenset[str]:
    if a.signal == "news2":
        return NEWS2_SIGNALS
    parts = frozenset(a.signal.split("+"))
    # cuff pressures are one measurement: systolic and diastolic alerts are one problem
    return parts | {"bp_systolic", "bp_diastolic"} if parts & {"bp_systolic", "bp_diastolic"} else parts


@dataclass
class Concern:
    alert_id: str  # of the alert that opened it
    signals: frozenset[str]
    rank: int
    members: set[str] = field(default_factory=set)  # open alert ids


@dataclass
class ConcernsState:
    open: list[Concern] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Concerns:
    def build(self, resume_state: ConcernsState | None = None, *, key: str = "") -> "ConcernsLogic":
        return ConcernsLogic(resume_state if resume_state is not None else ConcernsState())


class ConcernsLogic(Stateless[ConcernsState]):
    def __init__(self, state: ConcernsState) -> None:
        self.state = state

    def on_item(self, item: Alert) -> Emit:
        return self.on_alerts([item]), RETAIN

    def _find(self, aid: str) -> Concern | None:
        return next((c for c in self.state.open if aid in c.members), None)

    def on_alerts(self, alerts: list[Alert]) -> list[Alert]:
        out = []
        for a in alerts:
            if a.state == AlertState.FIRING:
                sig, rank = signals_of(a), RANK.get(a.severity, 1)
                c = next((c for c in self.state.open if c.signals & sig), None)
                if c is None:
                    self.state.open.append(Concern(a.alert_id, sig, rank, {a.alert_id}))
                    out.append(a)
                    continue
                c.members.add(a.alert_id)
                c.signals = c.signals | sig
                state = AlertState.ESCALATED if rank > c.rank else AlertState.GROUPED
                c.rank = max(c.rank, rank)
                out.append(dataclasses.replace(a, state=state, group=c.alert_id))
                continue
            c = self._find(a.alert_id)
            if c is not None and c.alert_id != a.alert_id:
                a = dataclasses.replace(a, group=c.alert_id)
            if a.state == AlertState.RESOLVED and c is not None:
                c.members.discard(a.alert_id)
                if not c.members:
                    self.state.open.remove(c)
            out.append(a)
        return out

    def snapshot(self) -> ConcernsState:
        return snapshot_of(self.state)
