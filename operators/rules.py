"""Clinical threshold rules with an alarm lifecycle.

A rule watches one or more signals of one patient, in event-time order, and
moves through ``ok -> pending -> firing -> (re-alert)* -> resolved``. It fires
once per episode: only when its condition has held for ``for_s`` seconds (or
``n_of_m`` readings), stays firing while values sit between the trigger and the
``clear`` threshold (hysteresis), re-alerts at most every ``realert_s`` while
still crossing, and resolves when every condition is back on the clear side.

A condition cannot be said to "hold for 5 minutes" across a hole in the data:
a gap longer than ``max_gap_s`` restarts the pending timer. Readings flagged
LOW_QUALITY (motion, special values) or HISTORICAL never move a rule.
"""

from __future__ import annotations

import operator
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vitalstream.errors import ConfigError
from vitalstream.model import Alert, AlertState, Quality, Reading, alert_id
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.signals import Signal

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
    for_s: float = 0.0
    n_of_m: tuple[int, int] | None = None
    realert_s: float | None = None
    max_gap_s: float = 300.0
    message: str = ""

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
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError("rules", None, "bad_rule", f"{d.get('name', d)!r}: {exc!r}") from exc
        for c in conditions:
            if c.op not in _OPS:
                raise ConfigError("rules", None, "bad_rule", f"{name}: operator {c.op!r}")
            if c.crosses(c.clear) and c.clear != c.threshold:
                raise ConfigError("rules", None, "bad_rule",
                                  f"{name}: clear {c.clear} is on the alarm side of {c.threshold}")
        nm = d.get("n_of_m")
        if nm is not None and (len(nm) != 2 or not 0 < nm[0] <= nm[1]):
            raise ConfigError("rules", None, "bad_rule", f"{name}: n_of_m must be [N, M], 0<N<=M")
        combine = d.get("combine", "any")
        if combine not in ("any", "all"):
            raise ConfigError("rules", None, "bad_rule", f"{name}: combine {combine!r}")
        return cls(name, conditions, d.get("severity", "warning"), combine,
                   float(d.get("for_s", 0.0)), tuple(nm) if nm else None,
                   float(d["realert_s"]) if d.get("realert_s") is not None else None,
                   float(d.get("max_gap_s", 300.0)), d.get("message", ""))


@dataclass
class RuleState:
    phase: str = "ok"  # ok | pending | firing
    since_ns: int = 0  # pending start, or episode start when firing
    last_ns: int | None = None  # event time of the last reading this rule saw
    notified_ns: int = 0
    seq: int = 0
    latest: dict[Signal, tuple[float, int]] = field(default_factory=dict)
    recent: deque | None = None  # (crossing, event_ns) for n_of_m; an empty deque costs ~600 B
    out_of_order: int = 0  # readings older than the last one seen: ignored


class RuleLogic(Stateless[RuleState]):
    """One rule for one patient. Readings must come in event-time order (the patient's
    reorder buffer sees to it); one older than the last seen is ignored and counted
    in ``state.out_of_order``, so history is never rewritten."""

    def __init__(self, rule: Rule, patient: str, state: RuleState | None = None) -> None:
        self.rule = rule
        self.patient = patient
        self.state = state or RuleState()
        self._signals = rule.signals  # a property that builds a frozenset: once, not per reading

    def _evaluate(self, now_ns: int, r: Reading) -> tuple[bool, bool, float, float]:
        """(crossing, holding, value, threshold) from the freshest value of each signal."""
        rule, latest = self.rule, self.state.latest
        gap = rule.max_gap_s * NS
        cross, hold = [], []
        value, threshold = float("nan"), float("nan")
        for c in rule.conditions:
            seen = latest.get(c.signal)
            if seen is None or now_ns - seen[1] > gap:
                cross.append(False)
                hold.append(False)
                continue
            v = seen[0]
            cross.append(c.crosses(v))
            hold.append(c.holds(v))
            if (cross[-1] or hold[-1]) and value != value:  # first matching condition names the alert
                value, threshold = v, c.threshold
        agg = any if rule.combine == "any" else all
        if value != value:  # nothing on the alarm side: name the reading that moved the rule
            c0 = next(c for c in rule.conditions if c.signal == r.signal)
            value, threshold = r.value, c0.threshold
        return agg(cross), agg(hold), value, threshold

    def on_item(self, r: Reading) -> Emit:
        return self.on_reading(r), RETAIN

    def on_reading(self, r: Reading) -> list[Alert]:
        if r.signal not in self._signals or r.quality & _SKIP:
            return []
        st, rule = self.state, self.rule
        t = r.event_ns
        if st.last_ns is not None and t < st.last_ns:
            st.out_of_order += 1
            return []
        gap_broken = st.last_ns is not None and t - st.last_ns > rule.max_gap_s * NS
        st.last_ns = t
        st.latest[r.signal] = (r.value, t)
        crossing, holding, value, threshold = self._evaluate(t, r)

        if st.phase == "firing":
            if not holding:
                st.phase = "ok"
                if st.recent is not None:
                    st.recent.clear()
                return [self._alert(AlertState.RESOLVED, value, threshold, t, st.seq + 1)]
            if (crossing and rule.realert_s is not None
                    and t - st.notified_ns >= rule.realert_s * NS):
                st.seq += 1
                st.notified_ns = t
                return [self._alert(AlertState.REALERT, value, threshold, t, st.seq)]
            return []

        start = self._episode_start(crossing, t, gap_broken)
        if start is None:
            return []
        st.phase, st.since_ns, st.notified_ns, st.seq = "firing", start, t, 0
        return [self._alert(AlertState.FIRING, value, threshold, t, 0)]

    def _episode_start(self, crossing: bool, t: int, gap_broken: bool) -> int | None:
        """Advance ok/pending; the episode start time once the rule should fire."""
        st, rule = self.state, self.rule
        if rule.n_of_m is not None:
            n, m = rule.n_of_m
            if st.recent is None:
                st.recent = deque()
            if gap_broken:
                st.recent.clear()
            st.recent.append((crossing, t))
            if len(st.recent) > m:
                st.recent.popleft()
            hits = [ts for c, ts in st.recent if c]
            return hits[0] if len(hits) >= n else None
        if not crossing:
            st.phase = "ok"
            return None
        if st.phase != "pending" or gap_broken:
            st.phase, st.since_ns = "pending", t
        return st.since_ns if t - st.since_ns >= rule.for_s * NS else None

    def _alert(self, state: str, value: float, threshold: float, t: int, seq: int) -> Alert:
        rule, st = self.rule, self.state
        signal = "+".join(sorted(s.value for s in rule.signals))
        return Alert(alert_id(self.patient, rule.name, st.since_ns), self.patient, rule.name,
                     signal, rule.severity, state, value, threshold, t, st.since_ns, seq,
                     rule.message)

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
