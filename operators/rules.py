"""Clinical threshold rules with an alarm lifecycle.

A rule watches one or more signals of one patient, in event-time order, and
moves through ``ok -> pending -> firing -> (re-alert)* -> resolved``. It fires
once per episode, when its condition form is met (``operators.persistence``:
``for_s`` consecutive, ``count`` of the readings in the last T, ``fraction`` of
the last T in band, or the historical ``n_of_m``) on a reading that is itself
past the threshold (never on one between threshold and clear, or back past
clear, that merely completes a fraction); stays firing while values sit
between the trigger and the ``clear`` threshold (hysteresis); re-alerts at most
every ``realert_s`` while still crossing; and resolves when every condition is
back on the clear side, or, with ``end_after_s``, when no reading has confirmed
the episode (been past the threshold) for that long. A crossing after the end is
a new episode with a new alert id.

A data gap longer than ``max_gap_s`` cancels a pending condition where the rule
says continuity matters (``continuous``; the default for ``for_s``). Readings
flagged LOW_QUALITY (motion, special values) or HISTORICAL never move a rule.
The end by ``end_after_s`` is noticed at the rule's next reading and stamped
with the event time it happened at (last confirmation + ``end_after_s``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vitalstream.errors import ConfigError
from vitalstream.model import Alert, AlertState, Quality, Reading, alert_id
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.operators.persistence import Consecutive, Form, PersistState, form_from_dict, reset
from vitalstream.signals import CATALOGUE, Signal

# Short names clinicians read in an alert line.
LABELS = {Signal.HEART_RATE: "HR", Signal.SPO2: "SpO2", Signal.RESP_RATE: "RR",
          Signal.BP_SYSTOLIC: "SBP", Signal.BP_DIASTOLIC: "DBP", Signal.BP_MEAN: "MAP",
          Signal.BODY_TEMP: "Temp", Signal.GLUCOSE: "Glucose"}

NS = 1_000_000_000
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_SKIP = Quality.LOW_QUALITY | Quality.HISTORICAL


@dataclass(frozen=True, slots=True)
class Condition:
    signal: Signal
    op: str
    threshold: float
    clear: float  # hysteresis: the episode lasts until the value is back past this

    def crosses(self, v: float) -> bool:
        return _OPS[self.op](v, self.threshold)

    def holds(self, v: float) -> bool:
        """Still on the alarm side of the clear threshold."""
        return _OPS[self.op](v, self.clear)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    severity: str = "warning"
    combine: str = "any"  # "any" or "all" conditions
    form: Form = Consecutive()
    realert_s: float | None = None
    max_gap_s: float = 300.0
    message: str = ""
    end_after_s: float | None = None  # no confirming reading for this long ends the episode
    source: str = ""  # where the numbers come from, shown with the rule

    @property
    def signals(self) -> frozenset[Signal]:
        return frozenset(c.signal for c in self.conditions)

    def build(self, resume_state: "RuleState | None" = None, *, key: str = "") -> "RuleLogic":
        """The rule for one patient (``key``)."""
        return RuleLogic(self, key, resume_state)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Rule":
        """Build from the YAML form (see ``core/data/rules-default.yaml``)."""
        try:
            name = d["name"]
            conds = d.get("when") or [{k: d[k] for k in ("signal", "op", "threshold", "clear")
                                       if k in d}]
            conditions = tuple(
                Condition(Signal(c["signal"]), c["op"], float(c["threshold"]),
                          float(c.get("clear", c["threshold"])))
                for c in conds)
            max_gap_s = float(d.get("max_gap_s", 300.0))
            realert = float(d["realert_s"]) if d.get("realert_s") is not None else None
            end_after = float(d["end_after_s"]) if d.get("end_after_s") is not None else None
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError("rules", None, "bad_rule", f"{d.get('name', d)!r}: {exc!r}") from exc
        for c in conditions:
            if c.op not in _OPS:
                raise ConfigError("rules", None, "bad_rule", f"{name}: operator {c.op!r}")
            if c.crosses(c.clear) and c.clear != c.threshold:
                raise ConfigError("rules", None, "bad_rule",
                                  f"{name}: clear {c.clear} is on the alarm side of {c.threshold}")
        combine = d.get("combine", "any")
        if combine not in ("any", "all"):
            raise ConfigError("rules", None, "bad_rule", f"{name}: combine {combine!r}")
        if end_after is not None and end_after <= 0:
            raise ConfigError("rules", None, "bad_rule", f"{name}: end_after_s must be > 0")
        return cls(name, conditions, d.get("severity", "warning"), combine,
                   form_from_dict(d, name, max_gap_s), realert, max_gap_s,
                   d.get("message", ""), end_after, d.get("source", ""))


@dataclass
class RuleState:
    phase: str = "ok"  # ok | pending | firing
    since_ns: int = 0  # episode start when firing
    last_ns: int | None = None  # event time of the last reading this rule saw
    notified_ns: int = 0
    seq: int = 0
    confirmed_ns: int = 0  # event time of the last reading past the threshold while firing
    latest: dict[Signal, tuple[float, int]] = field(default_factory=dict)
    persist: PersistState = field(default_factory=PersistState)
    out_of_order: int = 0  # readings older than the last one seen: ignored


def in_order(st: RuleState, t: int, max_gap_s: float) -> bool | None:
    """Take event time ``t`` as the rule's latest; None (and counted) if it is older than
    the last one seen, else whether a gap longer than ``max_gap_s`` came before it."""
    if st.last_ns is not None and t < st.last_ns:
        st.out_of_order += 1
        return None
    gap_broken = st.last_ns is not None and t - st.last_ns > max_gap_s * NS
    st.last_ns = t
    return gap_broken


class Episode:
    """The alarm lifecycle shared by every rule kind: ``ok -> firing -> (re-alert)* ->
    resolved``. The caller says, per reading, whether it is past the threshold
    (``crossing``) and still on the alarm side of the clear level (``holding``)."""

    __slots__ = ("name", "severity", "form", "realert_ns", "end_after_ns", "patient", "state")

    def __init__(self, name: str, severity: str, form: Form, realert_s: float | None,
                 end_after_s: float | None, patient: str, state: RuleState) -> None:
        self.name, self.severity, self.form, self.patient = name, severity, form, patient
        self.realert_ns = None if realert_s is None else realert_s * NS
        self.end_after_ns = None if end_after_s is None else round(end_after_s * NS)
        self.state = state

    def step(self, crossing: bool, holding: bool, t: int, gap_broken: bool,
             make: Callable[[str, int, int], Alert]) -> list[Alert]:
        """``make(state, event_ns, seq)`` builds the alert event to emit."""
        st, out = self.state, []
        if st.phase == "firing":
            end = self.end_after_ns
            if end is not None and t - st.confirmed_ns > end:
                # Values lingered between threshold and clear with nothing confirming
                # the episode: it ended when the last confirmation went stale.
                out.append(make(AlertState.RESOLVED, st.confirmed_ns + end, st.seq + 1))
                self._end()
            elif not holding:
                out.append(make(AlertState.RESOLVED, t, st.seq + 1))
                self._end()
                return out
            else:
                if crossing:
                    st.confirmed_ns = t
                    if self.realert_ns is not None and t - st.notified_ns >= self.realert_ns:
                        st.seq += 1
                        st.notified_ns = t
                        out.append(make(AlertState.REALERT, t, st.seq))
                return out
        start = self.form.step(st.persist, crossing, t, gap_broken)
        st.phase = "pending" if st.persist.pending or start is not None else "ok"
        if start is None or not crossing:
            # An episode opens only on a reading past the threshold: the alert names it,
            # and it is the episode's first confirmation (``confirmed_ns``).
            return out
        st.phase, st.since_ns, st.notified_ns, st.seq, st.confirmed_ns = "firing", start, t, 0, t
        out.append(make(AlertState.FIRING, t, 0))
        return out

    def _end(self) -> None:
        self.state.phase = "ok"
        reset(self.state.persist)


class RuleLogic(Stateless[RuleState]):
    """One rule for one patient. Readings must come in event-time order (the patient's
    reorder buffer sees to it); one older than the last seen is ignored and counted
    in ``state.out_of_order``, so history is never rewritten."""

    def __init__(self, rule: Rule, patient: str, state: RuleState | None = None) -> None:
        self.rule = rule
        self.patient = patient
        self.state = state or RuleState()
        self._signals = rule.signals  # a property that builds a frozenset: once, not per reading
        self._signal_name = "+".join(sorted(s.value for s in rule.signals))
        self.episode = Episode(rule.name, rule.severity, rule.form, rule.realert_s,
                               rule.end_after_s, patient, self.state)
        self._how = rule.form.describe()

    def _evaluate(self, now_ns: int, r: Reading) -> tuple[bool, bool, Condition, float]:
        """(crossing, holding, condition, value) from the freshest value of each signal."""
        rule, latest = self.rule, self.state.latest
        gap = rule.max_gap_s * NS
        cross, hold = [], []
        named: tuple[Condition, float] | None = None
        for c in rule.conditions:
            seen = latest.get(c.signal)
            if seen is None or now_ns - seen[1] > gap:
                cross.append(False)
                hold.append(False)
                continue
            v = seen[0]
            cross.append(c.crosses(v))
            hold.append(c.holds(v))
            if named is None and (cross[-1] or hold[-1]):  # first matching condition names it
                named = (c, v)
        agg = any if rule.combine == "any" else all
        if named is None:  # nothing on the alarm side: name the reading that moved the rule
            named = (next(c for c in rule.conditions if c.signal == r.signal), r.value)
        return agg(cross), agg(hold), named[0], named[1]

    def on_item(self, r: Reading) -> Emit:
        return self.on_reading(r), RETAIN

    def on_reading(self, r: Reading) -> list[Alert]:
        if r.signal not in self._signals or (r.quality and r.quality & _SKIP):
            return []
        st, rule = self.state, self.rule
        t = r.event_ns
        gap_broken = in_order(st, t, rule.max_gap_s)
        if gap_broken is None:
            return []
        st.latest[r.signal] = (r.value, t)
        crossing, holding, cond, value = self._evaluate(t, r)

        def make(state: str, event_ns: int, seq: int) -> Alert:
            return Alert(alert_id(self.patient, rule.name, st.since_ns), self.patient, rule.name,
                         self._signal_name, rule.severity, state, value, cond.threshold,
                         event_ns, st.since_ns, seq, rule.message,
                         self._explain(state, cond, value))

        return self.episode.step(crossing, holding, t, gap_broken, make)

    def _explain(self, state: str, c: Condition, value: float) -> str:
        unit = CATALOGUE[c.signal].unit if c.signal in CATALOGUE else ""
        v = f"{LABELS.get(c.signal, c.signal.value)} {value:g} {unit}".rstrip()
        if state == AlertState.RESOLVED:
            return f"{v}: back past {c.clear:g} {unit}".rstrip()
        return f"{v}: {c.op} {c.threshold:g} {unit} {self._how}".replace("  ", " ")

    def snapshot(self) -> RuleState:
        return snapshot_of(self.state)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    @classmethod
    def from_dicts(cls, items: Iterable[dict[str, Any]]) -> "RuleSet":
        rules = tuple(Rule.from_dict(d) for d in items)
        names = [r.name for r in rules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError("rules", None, "duplicate_rule", ", ".join(sorted(dup)))
        return cls(rules)

    def by_signal(self) -> dict[Signal, tuple[int, ...]]:
        out: dict[Signal, list[int]] = {}
        for i, r in enumerate(self.rules):
            for s in r.signals:
                out.setdefault(s, []).append(i)
        return {s: tuple(v) for s, v in out.items()}
