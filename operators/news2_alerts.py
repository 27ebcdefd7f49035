"""NEWS2 as an alarm: the alert lifecycle over a patient's ``News2Result`` stream.

``News2`` (``operators.news2``) scores; this turns its results into alert
events like any other rule's, with an id, ``firing``/``realert``/``resolved``
states and an explanation. The episode starts when the band reaches
``alert_from`` (default ``medium``, RCP 2017's "key threshold for urgent
response") and the condition form is met, escalates (``realert``, severity
critical) when the band rises to ``high`` during it, and resolves when the band
falls back below ``alert_from``, or after ``end_after_s`` without a result at or
above it.

Results come only when something changes, so the form's time is measured
between changes (a band holds until the next result, for at most ``hold_s``).
A score over fewer than all parameters is a lower bound; the explanation says
which are missing.

>>> from vitalstream.operators.news2 import News2Result, score_news2
>>> logic = News2Rule().build(key="p1")
>>> def res(t_min, **obs): return News2Result("p1", t_min * 60 * NS, score_news2(**obs))
>>> a = logic.on_result(res(0, resp_rate=22, spo2=95, oxygen=False, bp_systolic=105,
...                         heart_rate=112, consciousness="A", body_temp=38.4))
>>> a[0].state, a[0].severity, a[0].value
('firing', 'critical', 7.0)
>>> a[0].explanation.split(":")[0]
'NEWS2 7 (high)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vitalstream.errors import ConfigError
from vitalstream.model import Alert, AlertState, alert_id
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.operators.news2 import BAND_RANK, News2Result
from vitalstream.operators.persistence import Consecutive, Form, form_from_dict
from vitalstream.operators.rules import Episode, RuleState

NS = 1_000_000_000
_THRESHOLD = {"low-medium": 3.0, "medium": 5.0, "high": 7.0}


@dataclass
class News2RuleState:
    rule: RuleState = field(default_factory=RuleState)
    peak: int = -1  # highest band rank of the open episode


@dataclass(frozen=True, slots=True)
class News2Rule:
    name: str = "news2"
    alert_from: str = "medium"
    form: Form = Consecutive(0.0)
    end_after_s: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.alert_from not in _THRESHOLD:
            raise ConfigError("rules", None, "bad_rule",
                              f"news2 alert_from {self.alert_from!r}: one of {', '.join(_THRESHOLD)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "News2Rule":
        name = d.get("name", "news2")
        end = d.get("end_after_s")
        return cls(name, d.get("alert_from", "medium"), form_from_dict(d, name, 3600.0),
                   None if end is None else float(end), d.get("message", ""))

    def build(self, resume_state: News2RuleState | None = None, *, key: str = "") -> "News2RuleLogic":
        return News2RuleLogic(self, key, resume_state)


class News2RuleLogic(Stateless[News2RuleState]):
    def __init__(self, rule: News2Rule, patient: str, state: News2RuleState | None = None) -> None:
        self.rule, self.patient = rule, patient
        self.state = state or News2RuleState()
        self.episode = Episode(rule.name, "warning", rule.form, None, rule.end_after_s,
                               patient, self.state.rule)
        self._from = BAND_RANK[rule.alert_from]

    def on_item(self, item: News2Result) -> Emit:
        return self.on_result(item), RETAIN

    def on_result(self, res: News2Result) -> list[Alert]:
        st, rule = self.state, self.rule
        rs = st.rule
        t, n = res.event_ns, res.news2
        if rs.last_ns is not None and t < rs.last_ns:
            rs.out_of_order += 1
            return []
        rs.last_ns = t
        rank = BAND_RANK[n.band]
        at_or_above = rank >= self._from
        severity = "critical" if n.band == "high" else "warning"

        def make(state: str, event_ns: int, seq: int) -> Alert:
            return Alert(alert_id(self.patient, rule.name, rs.since_ns), self.patient, rule.name,
                         "news2", severity, state, float(n.score), _THRESHOLD[rule.alert_from],
                         event_ns, rs.since_ns, seq, rule.message, _explain(n))

        was_firing = rs.phase == "firing"
        out = self.episode.step(at_or_above, at_or_above, t, False, make)
        if rs.phase != "firing":
            st.peak = -1
        elif not was_firing or any(a.state == AlertState.RESOLVED for a in out):
            st.peak = rank
        elif rank > st.peak:  # escalation inside the episode: tell the team again
            st.peak = rank
            rs.seq += 1
            rs.notified_ns = t
            out.append(make(AlertState.REALERT, t, rs.seq))
        return out

    def snapshot(self) -> News2RuleState:
        return snapshot_of(self.state)


def _explain(n: Any) -> str:
    scored = ", ".join(f"{k} {v}" for k, v in n.parameter_scores if v is not None and v > 0)
    missing = f"; missing {', '.join(n.missing)}" if n.missing else ""
    red = f"; red: {', '.join(n.red)}" if n.red else ""
    return f"NEWS2 {n.score} ({n.band}): {scored or 'no parameter scored'}{red}{missing}"
