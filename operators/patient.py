"""Everything stateful that happens to one patient: windows, rules (and anomaly scores).

Each patient has its own event clock, so results do not depend on which other
patients share a worker: the same readings give the same aggregates and alerts
under the reference runner, one bytewax worker or several.

Rules need readings in event-time order (a condition "held for 5 minutes" is a
statement about event time), so readings wait in a small reorder buffer until
the patient's clock is ``rule_delay`` past them. That delay bounds alert
latency; a reading arriving later than that still reaches the store and its
window, but cannot rewrite alert history and is counted as late for rules.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Union

from vitalstream.model import Alert, Reading, WindowAggregate
from vitalstream.operators.clock import Clock, EventClock, EventClockState
from vitalstream.operators.rules import RuleLogic, RuleSet, RuleState
from vitalstream.operators.window import TumblingWindow, WindowState

Output = Union[WindowAggregate, Alert, Reading]
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PatientFlow:
    """Config of the per-patient stage: windows, rules, reorder delay and detectors."""

    window: TumblingWindow = TumblingWindow()
    rules: RuleSet = RuleSet(())
    rule_delay_ns: int = 2 * NS
    anomaly: Any = None  # e.g. operators.anomaly.stage.AnomalyStage: .build(patient, state)

    def build(self, patient: str, wall: Clock,
              resume_state: "PatientState | None" = None) -> "PatientLogic":
        return PatientLogic(self, patient, wall, resume_state)


@dataclass
class PatientState:
    clock: EventClockState = field(default_factory=EventClockState)
    window: WindowState = field(default_factory=WindowState)
    rules: list[RuleState] = field(default_factory=list)
    pending: list = field(default_factory=list)  # heap of (event_ns, signal, device, value, reading)
    pending_keys: set = field(default_factory=set)  # (event_ns, signal, device) in `pending`
    anomaly: Any = None
    late_window: int = 0
    late_rules: int = 0
    last_recv_ns: int = 0  # newest receive time seen: restores the host's frontier on resume


class PatientLogic:
    def __init__(self, cfg: PatientFlow, patient: str, wall: Clock,
                 state: PatientState | None = None) -> None:
        st = state or PatientState()
        self.cfg = cfg
        self.patient = patient
        self.state = st
        self.clock = EventClock(wall, st.clock)
        self.window = cfg.window.build(patient, st.window)
        if not st.rules:
            st.rules = [RuleState() for _ in cfg.rules.rules]
        self.rules = [RuleLogic(r, patient, s) for r, s in zip(cfg.rules.rules, st.rules)]
        self._rules_for = cfg.rules.by_signal()
        self.anomaly = cfg.anomaly.build(patient, st.anomaly) if cfg.anomaly is not None else None

    def on_item(self, r: Reading) -> list[Output]:
        st = self.state
        # Judged by when the reading was received, not when it was processed.
        at = r.recv_ns if r.recv_ns > 0 else None
        if r.recv_ns > st.last_recv_ns:
            st.last_recv_ns = r.recv_ns
        self.clock.observe(r.event_ns, at)
        now = self.clock.now_ns(at, commit=True)
        if not self.window.on_item(r, now):
            st.late_window += 1
        if r.signal in self._rules_for or self.anomaly is not None:
            key = (r.event_ns, r.signal.value, r.device)
            if key in st.pending_keys:
                # Stage A dedups per worker; a copy that reached this patient by
                # another path (shared subscription, redelivery) must not count twice.
                pass
            elif r.event_ns <= now - self.cfg.rule_delay_ns:
                # Judged on the clock at arrival, not on when the buffer was last
                # drained, so the verdict does not depend on timer wake-ups.
                st.late_rules += 1
            else:
                st.pending_keys.add(key)
                heapq.heappush(st.pending, (*key, r.value, r))
        return self.advance(now)

    def advance(self, now: int | None = None, *, final: bool = False) -> list[Output]:
        """Release readings the rule delay has passed and close due windows."""
        st, out = self.state, []
        if now is None:
            now = self.clock.now_ns(commit=True)
        if now is None:
            return out
        limit = now - self.cfg.rule_delay_ns
        pending = st.pending
        while pending and (final or pending[0][0] <= limit):
            item = heapq.heappop(pending)
            st.pending_keys.discard(item[:3])
            out.extend(self._evaluate(item[4]))
        closed = self.window.close_due(now, all_=final)
        if closed:
            out.extend(closed)
            if self.anomaly is not None:
                out.extend(self.anomaly.on_aggregates(closed))
        return out

    def _evaluate(self, r: Reading) -> list[Output]:
        out: list[Output] = []
        if self.anomaly is not None:
            scored = self.anomaly.on_reading(r)
            if scored:
                out.append(scored[0])
                derived = scored[1]
                for i in self._rules_for.get(derived.signal, ()):
                    out.extend(self.rules[i].on_reading(derived))
        for i in self._rules_for.get(r.signal, ()):
            out.extend(self.rules[i].on_reading(r))
        return out

    def next_wall_ns(self) -> int | None:
        """Wall time at which ``advance`` has something to do if no reading arrives."""
        deadlines = []
        close = self.window.next_close_ns()
        if close is not None:
            deadlines.append(close)
        if self.state.pending:
            deadlines.append(self.state.pending[0][0] + self.cfg.rule_delay_ns)
        if not deadlines:
            return None
        return self.clock.wall_time_of(min(deadlines))

    def snapshot(self) -> PatientState:
        st = self.state
        return PatientState(self.clock.snapshot(), self.window.snapshot(),
                            [r.snapshot() for r in self.rules], list(st.pending), set(st.pending_keys),
                            self.anomaly.snapshot() if self.anomaly is not None else None,
                            st.late_window, st.late_rules, st.last_recv_ns)
