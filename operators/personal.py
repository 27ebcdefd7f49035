"""Personalised alerts: a sustained departure from the patient's own baseline.

Threshold rules catch what is abnormal for anyone; these catch what is abnormal
for this patient: a resting 65 /min patient at 100+ for a quarter of an hour,
a systolic pressure 25 mm[Hg] above the patient's own level. A personal rule
reads the anomaly stage's ``Score`` of one signal (the detector scores against
the patient's baseline for the context: rest/active, day/night) and fires when

- the score is at least ``z`` (the departure is large for this patient's spread),
- the value is at least ``min_delta`` from the usual level in the rule's
  direction (a very steady patient's spread is small; a clinician still does not
  want to hear about 8 beats), and
- both hold in the rule's condition form (``operators.persistence``; by default
  80 % of the last 5 minutes, so one wild reading never fires).

The episode lasts while the score stays at or above ``clear_z``. While a
baseline is still warming up, the score is against a population prior
(``anomaly/priors.py``): that counts only with ``prior_z`` set, and then against
that (higher) bar, so sparse signals are not hidden by a warm-up but a patient
whose normal differs from the population's is not flagged for it.

Activity and the circadian rhythm are the detector's context: heart rate while
walking is scored against the "active" baseline, and night against night.

The explanation is in the patient's own terms: ``HR 104 /min, usual 66 +- 6 at
rest (day)``.

>>> from vitalstream.operators.anomaly.score import Explanation, Score
>>> rule = PersonalRule.from_dict({"name": "hr_above_usual", "signal": "heart_rate",
...                                "direction": "high", "z": 4, "min_delta": 25,
...                                "fraction": {"min": 0.8, "within_s": 300}})
>>> logic = rule.build(key="p1")
>>> def at(t_min, hr):
...     e = Explanation("heart_rate", hr, 42.0, 90.0, 500, 86400.0, "rest/day", False,
...                     "personal", "ewz", center=66.0, spread=6.0)
...     s = Score(t_min * 60 * NS, abs(hr - 66.0) / 6.0, hr > 90.0, e)
...     r = Reading("p1", "d1", Signal.HEART_RATE, hr, "/min", s.event_ns, s.event_ns)
...     return logic.on_score(s, r)
>>> [len(at(m, 104.0)) for m in range(5)]
[0, 0, 0, 0, 1]
>>> at(5, 104.0), at(6, 70.0)[0].state
([], 'resolved')
>>> logic.state.phase
'ok'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vitalstream.errors import ConfigError
from vitalstream.model import Alert, AlertState, Quality, Reading, alert_id
from vitalstream.operators.anomaly.score import Score
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.operators.persistence import FractionWithin, Form, form_from_dict
from vitalstream.operators.rules import LABELS, Episode, RuleState, in_order
from vitalstream.signals import CATALOGUE, Signal

NS = 1_000_000_000
_SKIP = Quality.LOW_QUALITY | Quality.HISTORICAL
_CONTEXT = {"rest": "at rest", "active": "when active", "day": "day", "night": "night"}


@dataclass(frozen=True, slots=True)
class PersonalRule:
    name: str
    signal: Signal
    direction: str = "both"  # "high", "low" or "both": which departures count
    z: float = 4.0
    clear_z: float = 2.0
    min_delta: float = 0.0  # in the signal's canonical unit
    prior_z: float | None = None  # the bar while scored against the population prior
    form: Form = field(default_factory=lambda: FractionWithin(0.8, 300.0, 120.0))
    severity: str = "info"
    realert_s: float | None = None
    end_after_s: float | None = None
    max_gap_s: float = 600.0
    message: str = ""
    source: str = ""

    def build(self, resume_state: RuleState | None = None, *, key: str = "") -> "PersonalLogic":
        return PersonalLogic(self, key, resume_state)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PersonalRule":
        name = d.get("name")
        try:
            if not isinstance(name, str) or not name:
                raise ValueError("name is required")
            direction = d.get("direction", "both")
            if direction not in ("high", "low", "both"):
                raise ValueError(f"direction {direction!r}: high, low or both")
            z, clear_z = float(d.get("z", 4.0)), float(d.get("clear_z", 2.0))
            if not 0 <= clear_z <= z:
                raise ValueError("needs 0 <= clear_z <= z")
            min_delta = float(d.get("min_delta", 0.0))
            prior_z = None if d.get("prior_z") is None else float(d["prior_z"])
            max_gap_s = float(d.get("max_gap_s", 600.0))
            realert = None if d.get("realert_s") is None else float(d["realert_s"])
            end_after = None if d.get("end_after_s") is None else float(d["end_after_s"])
            signal = Signal(d["signal"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("rules", None, "bad_rule", f"personal {name!r}: {exc}") from exc
        has_form = any(d.get(k) is not None for k in ("for_s", "count", "fraction", "n_of_m"))
        form = (form_from_dict(d, name, max_gap_s) if has_form
                else FractionWithin(0.8, 300.0, min(max_gap_s, 120.0)))
        return cls(name, signal, direction, z, clear_z, min_delta, prior_z, form,
                   d.get("severity", "info"), realert, end_after, max_gap_s,
                   d.get("message", ""), d.get("source", ""))


class PersonalLogic(Stateless[RuleState]):
    """One personal rule for one patient, fed the detector's scores in event-time order."""

    def __init__(self, rule: PersonalRule, patient: str, state: RuleState | None = None) -> None:
        self.rule, self.patient = rule, patient
        self.state = state or RuleState()
        self.episode = Episode(rule.name, rule.severity, rule.form, rule.realert_s,
                               rule.end_after_s, patient, self.state)
        self._unit = CATALOGUE[rule.signal].unit if rule.signal in CATALOGUE else ""
        self._label = LABELS.get(rule.signal, rule.signal.value)

    def on_item(self, item: tuple[Score, Reading]) -> Emit:
        return self.on_score(*item), RETAIN

    def on_score(self, s: Score, r: Reading) -> list[Alert]:
        rule, st = self.rule, self.state
        e = s.explanation
        if (r.signal != rule.signal or (r.quality and r.quality & _SKIP) or e.note
                or not math.isfinite(e.center)):
            return []
        t = r.event_ns
        gap_broken = in_order(st, t, rule.max_gap_s)
        if gap_broken is None:
            return []
        delta = r.value - e.center
        away = {"high": delta, "low": -delta, "both": abs(delta)}[rule.direction]
        bar = rule.prior_z if e.warmup else rule.z
        crossing = bar is not None and s.score >= bar and away >= rule.min_delta
        holding = away > 0 and s.score >= rule.clear_z and (bar is not None or st.phase == "firing")

        def make(state: str, event_ns: int, seq: int) -> Alert:
            return Alert(alert_id(self.patient, rule.name, st.since_ns), self.patient, rule.name,
                         rule.signal.value, rule.severity, state, r.value, e.center, event_ns,
                         st.since_ns, seq, rule.message, self._explain(r.value, s))

        return self.episode.step(crossing, holding, t, gap_broken, make)

    def _explain(self, value: float, s: Score) -> str:
        e = s.explanation
        parts = [_CONTEXT.get(p, p) for p in e.context.split("/") if p != "all"]
        where = (" " + parts[0] + (f" ({', '.join(parts[1:])})" if parts[1:] else "")) if parts else ""
        whose = "usual for adults" if e.warmup else "usual"
        d = 0 if e.spread >= 1 else 1  # temperature and SpO2 spreads are below one unit
        return (f"{self._label} {value:g} {self._unit}, {whose} {e.center:.{d}f} +- "
                f"{e.spread:.{d}f}{where}").replace("  ", " ")

    def snapshot(self) -> RuleState:
        return snapshot_of(self.state)
