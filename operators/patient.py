"""Everything stateful that happens to one patient: windows, rules and anomaly scores.

Each patient has its own event clock, so results do not depend on which other
patients share a worker: the same readings give the same aggregates and alerts
under the reference runner, one bytewax worker or several.

Rules need readings in event-time order (a condition "held for 5 minutes" is a
statement about event time), so readings wait in a small reorder buffer until
the patient's clock is ``rule_delay`` past them. That delay bounds alert
latency; a reading arriving later than that still reaches the store and its
window, but cannot rewrite alert history and is counted as late for rules.

A patient silent for ``evict_after_ns`` of runtime time is evicted: every
window still open is closed and written, the reorder buffer is released, and
the logic answers ``DISCARD``. Its anomaly baselines are not lost: the host
keeps them (``PatientHost``) and a returning patient resumes from them.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from typing import Any, Union

from vitalstream.model import Alert, AlertState, Quality, Reading, WindowAggregate, alert_id
from vitalstream.signals import Signal
from vitalstream.operators.clock import EventClock, EventClockState
from vitalstream.operators.contract import DISCARD, RETAIN, Emit, earliest, snapshot_of
from vitalstream.operators.backfill import Backfill, BackfillState
from vitalstream.operators.bp_monitor import BpAlert, BpMonitor, BpMonitorState, BpResult
from vitalstream.operators.concerns import Concerns, ConcernsState
from vitalstream.operators.dedup import Dedup, DedupState
from vitalstream.operators.liveness import ContactState, ContactWatch, StaleData, StaleState
from vitalstream.operators.news2 import NEWS2_INPUTS, News2, News2Result, News2State
from vitalstream.operators.news2_alerts import News2Rule, News2RuleState
from vitalstream.operators.personal import PersonalRule
from vitalstream.operators.rules import RuleSet, RuleState
from vitalstream.operators.window import TumblingWindow, WindowState

Output = Union[WindowAggregate, Alert, Reading]
NS = 1_000_000_000


@dataclass(frozen=True)
class PatientFlow:
    """Config of the per-patient stage: windows, rules, reorder delay, detectors, eviction."""

    window: TumblingWindow = TumblingWindow()
    rules: RuleSet = RuleSet(())
    rule_delay_ns: int = 2 * NS
    anomaly: Any = None  # e.g. operators.anomaly.stage.AnomalyStage: .build(state, key=patient)
    evict_after_ns: int | None = 24 * 3600 * NS  # None: never
    personal: tuple[PersonalRule, ...] = ()  # alerts on the anomaly stage's scores
    news2: News2 | None = None  # NEWS2 per patient, and its alarm:
    news2_rule: News2Rule | None = None
    bp: BpMonitor | None = None  # blood pressure class by guideline, from repeated readings
    concerns: Concerns | None = None  # group alerts of one patient problem (None: every rule pages)
    bp_alerts: bool = True  # a rise of the BP class is an (info) alert, else a result only
    stale: StaleData | None = None  # "no data for T" per signal, on processing time
    # HISTORICAL readings (back-fill) in windows of their own, with one summary at the
    # end; None: they share the live windows (late ones are then lost to the aggregates)
    backfill: Backfill | None = None
    contact: ContactWatch | None = None  # readings all flagged (no skin contact) for a while

    def __post_init__(self) -> None:
        covered = set(getattr(self.anomaly, "detectors", {}) or {})
        for p in self.personal:
            if p.signal.value not in covered:
                raise ValueError(f"personal rule {p.name!r}: no detector scores {p.signal.value}")
        if self.news2_rule is not None and self.news2 is None:
            raise ValueError("news2_rule needs news2")

    def build(self, resume_state: "PatientState | None" = None, *,
              key: str = "") -> "PatientLogic":
        return PatientLogic(self, key, resume_state)


@dataclass
class PatientState:
    clock: EventClockState = field(default_factory=EventClockState)
    window: WindowState = field(default_factory=WindowState)
    rules: list[RuleState] = field(default_factory=list)
    pending: list = field(default_factory=list)  # heap of (event_ns, signal, device, value, reading)
    seen: DedupState = field(default_factory=DedupState)
    duplicates: int = 0
    anomaly: Any = None
    late_rules: int = 0
    last_recv_ns: int = 0  # newest receive time seen: restores the host's frontier on resume
    last_seen_ns: int = 0  # runtime time of the latest reading: eviction counts from it
    personal: list[RuleState] = field(default_factory=list)
    news2: News2State | None = None
    news2_rule: News2RuleState | None = None
    bp: BpMonitorState | None = None
    concerns: ConcernsState | None = None
    stale: StaleState | None = None
    backfill: BackfillState | None = None
    contact: ContactState | None = None


_BP = (Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC)


def _bp_alert(a: BpAlert) -> Alert:
    """A rise of the guideline class (e.g. into ACC/AHA stage 2) as an alert event: a
    finding for the care team's review (info), not an emergency; the crisis rule is that."""
    text = (f"BP mean {a.sbp_mean:.0f}/{a.dbp_mean:.0f} mm[Hg]: {a.guideline} {a.category}"
            f"{f' (was {a.previous})' if a.previous else ''}")
    rule = f"bp_{a.category}"
    return Alert(alert_id(a.patient, rule, a.event_ns), a.patient, rule,
                 "bp_diastolic+bp_systolic", "info", AlertState.FIRING, a.sbp_mean,
                 float("nan"), a.event_ns, a.event_ns, 0, "", text)


class PatientLogic:
    def __init__(self, cfg: PatientFlow, patient: str, state: PatientState | None = None) -> None:
        st = state or PatientState()
        self.cfg = cfg
        self.patient = patient
        self.state = st
        self.clock = EventClock(st.clock)
        # Stage A dedups per worker; a copy that reached this patient by another path
        # (shared subscription, redelivery after a restart) must not count twice.
        w = cfg.window
        self.dedup = Dedup(w.size_ns + w.allowed_lateness_ns + cfg.rule_delay_ns, w.size_ns,
                           store_keys=True).build(st.seen)
        self.window = w.build(st.window, key=patient, clock=self.clock, dedup=False)
        if not st.rules:
            st.rules = [RuleState() for _ in cfg.rules.rules]
        self.rules = [r.build(s, key=patient) for r, s in zip(cfg.rules.rules, st.rules)]
        self._rules_for = cfg.rules.by_signal()
        self.anomaly = (cfg.anomaly.build(st.anomaly, key=patient)
                        if cfg.anomaly is not None else None)
        if len(st.personal) != len(cfg.personal):
            st.personal = [RuleState() for _ in cfg.personal]
        self.personal = [p.build(s, key=patient) for p, s in zip(cfg.personal, st.personal)]
        self._personal_for: dict[str, list] = {}
        for p in self.personal:
            self._personal_for.setdefault(p.rule.signal.value, []).append(p)
        # The optional parts keep their state inside PatientState, made on first use.
        self.news2 = self._part("news2", News2State)
        self.news2_rule = self._part("news2_rule", News2RuleState)
        self.bp = self._part("bp", BpMonitorState)
        self.concerns = self._part("concerns", ConcernsState)
        self.stale = self._part("stale", StaleState)
        self.backfill = self._part("backfill", BackfillState)
        self.contact = self._part("contact", ContactState)
        # Everything after the reorder buffer that needs every signal in event-time order.
        self._ordered_all = (cfg.anomaly is not None or cfg.news2 is not None or cfg.bp is not None
                             or cfg.contact is not None)

    def _part(self, name: str, make_state: Any) -> Any:
        part = getattr(self.cfg, name)
        if part is None:
            return None
        if getattr(self.state, name) is None:
            setattr(self.state, name, make_state())
        return part.build(getattr(self.state, name), key=self.patient)

    # -- the operator contract --

    def on_item(self, r: Reading) -> Emit:
        st = self.state
        # Judged by when the reading was received, not when it was processed.
        at = r.recv_ns if r.recv_ns > 0 else None
        if r.recv_ns > st.last_recv_ns:
            st.last_recv_ns = r.recv_ns
        if self.backfill is not None and r.quality & Quality.HISTORICAL:
            # Off the live clock and the stale timers: yesterday's data moves neither.
            st.last_seen_ns = max(st.last_seen_ns, at if at is not None else st.clock.wall_at_max_ns)
            out = self.backfill.on_reading(r, st.last_seen_ns)
            return out + self._advance(self.clock.now_ns(at, commit=True)), RETAIN
        self.clock.observe(r.event_ns, at)
        now = self.clock.now_ns(at, commit=True)
        st.last_seen_ns = max(st.last_seen_ns, at if at is not None else st.clock.wall_at_max_ns)
        back = [] if self.stale is None else self.stale.seen(r.signal.value, st.last_seen_ns)
        if self.dedup.seen_before(r.dedup_key()):
            st.duplicates += 1
            return back + self._advance(now), RETAIN
        if not self.window.add(r, now):
            self.window.state.late += 1
        if self._ordered_all or r.signal in self._rules_for:
            if r.event_ns <= now - self.cfg.rule_delay_ns:
                # Judged on the clock at arrival, not on when the buffer was last
                # drained, so the verdict does not depend on timer wake-ups.
                st.late_rules += 1
            else:
                heapq.heappush(st.pending, (r.event_ns, r.signal.value, r.device, r.value, r))
        return back + self._advance(now), RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        silent = [] if self.stale is None else self.stale.fire(now_ns)
        if self.backfill is not None:
            silent += self.backfill.fire(now_ns)
        evict = self.cfg.evict_after_ns
        if evict is not None and now_ns >= self.state.last_seen_ns + evict:
            if self.backfill is not None:
                silent += self.backfill.flush(now_ns)
            return silent + self._advance(self.clock.now_ns(now_ns), final=True), DISCARD
        return silent + self._advance(self.clock.now_ns(now_ns, commit=True)), RETAIN

    def notify_at(self) -> int | None:
        """Runtime time at which ``on_notify`` has something to do if no reading arrives."""
        due = earliest(self.window.next_close_ns(),
                       self.state.pending[0][0] + self.cfg.rule_delay_ns
                       if self.state.pending else None)
        evict = self.cfg.evict_after_ns
        return earliest(None if due is None else self.clock.wall_time_of(due),
                        None if evict is None else self.state.last_seen_ns + evict,
                        None if self.stale is None else self.stale.due(),
                        None if self.backfill is None else self.backfill.due())

    def on_eof(self) -> Emit:
        """Bounded input has ended: release the buffer and close every window."""
        out = self._advance(self.clock.now_ns(), final=True)
        if self.backfill is not None:
            out += self.backfill.flush(self.state.last_seen_ns)
        return out, RETAIN

    def snapshot(self) -> PatientState:
        # Window and rules work on their parts of ``state`` in place; the detectors keep
        # their own structure and hand in a snapshot of it.
        if self.anomaly is None:
            return snapshot_of(self.state)
        snap = snapshot_of(dataclasses.replace(self.state, anomaly=None))
        snap.anomaly = self.anomaly.snapshot()  # already a fresh structure
        return snap

    # -- internals --

    def _advance(self, now: int | None, *, final: bool = False) -> list[Output]:
        """Release readings the rule delay has passed and close due windows."""
        st, out = self.state, []
        if now is None and not final:
            return out
        limit = None if final else now - self.cfg.rule_delay_ns
        pending = st.pending
        while pending and (final or pending[0][0] <= limit):
            item = heapq.heappop(pending)
            out.extend(self._evaluate(item[4]))
        closed = self.window.close_due(now if now is not None else 0, all_=final)
        if closed:
            out.extend(closed)
            if self.anomaly is not None:
                out.extend(self.anomaly.on_aggregates(closed))
        return out

    def _evaluate(self, r: Reading) -> list[Output]:
        # a technical alarm, not part of any clinical concern: kept out of the grouping
        technical = [] if self.contact is None else self.contact.on_reading(r)
        out: list[Output] = []
        if self.anomaly is not None:
            scored = self.anomaly.on_reading(r)
            if scored:
                out.append(scored[0])
                for p in self._personal_for.get(r.signal.value, ()):
                    out.extend(p.on_score(scored[0].score, r))
                derived = scored[1]
                for i in self._rules_for.get(derived.signal, ()):
                    out.extend(self.rules[i].on_reading(derived))
        for i in self._rules_for.get(r.signal, ()):
            out.extend(self.rules[i].on_reading(r))
        if self.news2 is not None and r.signal in NEWS2_INPUTS:
            # News2Alert is the bare operator's own signal; the rule's alerts replace it
            out.extend(x for x in self.news2.on_item(r)[0] if type(x) is News2Result)
            last = self.news2.st.last
            if self.news2_rule is not None and last is not None:
                # every input is a moment the score held, not only its changes: the alarm's
                # "80 % of 10 minutes" is counted over them
                out.extend(self.news2_rule.on_result(News2Result(self.patient, r.event_ns, last)))
        if self.bp is not None and r.signal in _BP:
            for x in self.bp.on_item(r)[0]:
                out.append(_bp_alert(x) if type(x) is BpAlert and self.cfg.bp_alerts else x)
        if self.concerns is not None and out:
            alerts = [x for x in out if type(x) is Alert]
            if alerts:
                grouped = iter(self.concerns.on_alerts(alerts))
                out = [next(grouped) if type(x) is Alert else x for x in out]
        return technical + out if technical else out

    @property
    def late_window(self) -> int:
        return self.window.state.late

    def baseline(self) -> Any:
        """What survives eviction: the anomaly detectors' state (None without detectors)."""
        return None if self.anomaly is None else self.anomaly.snapshot()
