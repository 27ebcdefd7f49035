"""The dynamic health profile of one patient: tags derived from the data, and manual ones.

``ProfileRules`` (a frozen config: the tag rules of ``operators.profile.rules``, the
default time zone) builds one ``ProfileLogic`` per patient under the operator
contract. Items are readings, and ``CareEvent`` records for what the care team
says (``manual-tag``/``clear-tag``, ``timezone``). Outputs are ``TagChange``
records: ``set`` when a rule's evidence is complete, ``update`` when its
confidence moved by ``update_step`` or more, ``end`` when the evidence says the
tag no longer holds.

Re-evaluation happens as data arrives (the rules a reading's signal feeds) and
at every local midnight (every rule: a day rolling out of a window can end a
tag, a silent patient becomes non-adherent), driven by ``notify_at``. Event time
is the clock: the latest event time seen, moved on by the runtime's ``now_ns``.

A manual tag is never overwritten by a derived one: while a tag is set by hand,
the derived rule keeps its own view silently, and it is only emitted again
once the manual tag is cleared.

>>> from vitalstream.model import Reading
>>> from vitalstream.signals import Signal
>>> from vitalstream.operators.contract import drive
>>> day = 86_400 * 10**9
>>> bp = [Reading("p1", "cuff", s, v, "mm[Hg]", d * day + h * 3600 * 10**9, 0)
...       for d in range(3) for h in (8, 20)
...       for s, v in ((Signal.BP_SYSTOLIC, 150.0), (Signal.BP_DIASTOLIC, 95.0))]
>>> [(c.tag, c.change) for c in drive(ProfileRules().build(key="p1"), bp)]
[('hypertension', 'set')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vitalstream.care import MANUAL, CareEvent, TagChange
from vitalstream.model import Quality, Reading
from vitalstream.operators.contract import RETAIN, Emit
from vitalstream.operators.profile.days import NS, Day, Run, day_start_ns, local, local_day, zone
from vitalstream.operators.profile.rules import Context, Verdict, default_rules

# Which rules a reading of a signal can change (all of them are re-run at midnight).
_FEEDS = {
    "bp_systolic": ("hypertension",), "bp_diastolic": ("hypertension",),
    "heart_rate": ("tachycardia-episodes",), "spo2": ("nocturnal-desaturation",),
    "glucose": ("poor-glycaemic-control",), "steps": (),
}
_PENDING_MAX = 64  # systolic/diastolic halves waiting for their pair


@dataclass
class TagInfo:
    start_ns: int
    confidence: float
    rule: str


@dataclass
class ProfileState:
    tz: str
    days: dict = field(default_factory=dict)  # local day ordinal -> Day
    hr: Run = field(default_factory=Run)
    spo2: Run = field(default_factory=Run)
    pending_bp: dict = field(default_factory=dict)  # event_ns -> (signal, value)
    derived: dict = field(default_factory=dict)  # tag -> TagInfo (the rules' view)
    manual: dict = field(default_factory=dict)  # tag -> start_ns
    now_ns: int | None = None
    today: int | None = None


@dataclass(frozen=True)
class ProfileRules:
    rules: tuple = default_rules()
    timezone: str = "UTC"  # the zone of a patient who has not said theirs
    update_step: float = 0.1

    def __post_init__(self) -> None:
        zone(self.timezone)  # ZoneInfoNotFoundError for a bad name, at config time
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"profile rules: a tag is derived by two rules: {names}")

    @property
    def horizon_days(self) -> int:
        return max((r.days_n for r in self.rules), default=1)

    def build(self, resume_state: ProfileState | None = None, *, key: str = "") -> "ProfileLogic":
        return ProfileLogic(self, key, resume_state)


class ProfileLogic:
    def __init__(self, cfg: ProfileRules, patient: str, state: ProfileState | None = None) -> None:
        self.cfg = cfg
        self.patient = patient
        self.state = state if state is not None else ProfileState(cfg.timezone)
        self._rules = {r.name: r for r in cfg.rules}
        self._hr = next((r for r in cfg.rules if r.name == "tachycardia-episodes"), None)
        self._spo2 = next((r for r in cfg.rules if r.name == "nocturnal-desaturation"), None)
        self._tir = next((r for r in cfg.rules if r.name == "poor-glycaemic-control"), None)
        self._horizon = cfg.horizon_days
        self._span = (0, 0, 0, "")  # (start_ns, end_ns, local day, zone): the last day looked up
        self._midnight: tuple = (None, None, None)  # (today, zone, the next local midnight)

    # -- the contract
    def on_item(self, item: Any) -> Emit:
        if type(item) is CareEvent:
            return self._care_event(item), RETAIN
        if type(item) is not Reading or item.quality & Quality.LOW_QUALITY:
            return [], RETAIN  # artefacts and special values are not evidence
        st = self.state
        out = self._roll(max(item.event_ns, st.now_ns if st.now_ns is not None else item.event_ns))
        touched = self._add(item)
        for name in touched:
            out += self._apply(name)
        return out, RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        if self.state.now_ns is None:
            return [], RETAIN  # no data yet: no clock to run rules on
        return self._roll(max(now_ns, self.state.now_ns)), RETAIN

    def notify_at(self) -> int | None:
        st = self.state
        if st.today is None:
            return None
        if self._midnight[:2] != (st.today, st.tz):  # asked after every item: computed once a day
            self._midnight = (st.today, st.tz, day_start_ns(st.today + 1, st.tz))
        return self._midnight[2]

    def on_eof(self) -> Emit:
        return [], RETAIN  # nothing held back: every change was emitted when it happened

    def snapshot(self) -> ProfileState:
        from vitalstream.operators.contract import snapshot_of

        return snapshot_of(self.state)

    # -- what the console and the store ask
    def active(self) -> dict[str, int]:
        """Tags in effect (manual ones win) -> start_ns."""
        out = {t: i.start_ns for t, i in self.state.derived.items()}
        out.update(self.state.manual)
        return out

    # -- internals
    def _roll(self, now: int) -> list[TagChange]:
        """Move the clock to ``now``; at a new local day, re-run every rule and drop old days."""
        st = self.state
        st.now_ns = now
        today = self._local_day(now)
        if st.today is not None and today <= st.today:
            return []
        st.today = today
        oldest = today - self._horizon
        for d in [d for d in st.days if d <= oldest]:
            del st.days[d]
        out: list[TagChange] = []
        for name in self._rules:
            out += self._apply(name)
        return out

    def _local_day(self, event_ns: int) -> int:
        """``local_day`` with the last day's bounds remembered: most readings fall in it."""
        lo, hi, day, tz = self._span
        if lo <= event_ns < hi and tz == self.state.tz:
            return day
        tz = self.state.tz
        day = local_day(event_ns, tz)
        self._span = (day_start_ns(day, tz), day_start_ns(day + 1, tz), day, tz)
        return day

    def _day(self, event_ns: int) -> Day | None:
        st = self.state
        d = self._local_day(event_ns)
        if st.today is not None and d <= st.today - self._horizon:
            return None  # older than anything a rule reads
        day = st.days.get(d)
        if day is None:
            day = st.days[d] = Day()
        return day

    def _add(self, r: Reading) -> tuple[str, ...]:
        st = self.state
        signal = r.signal.value
        day = self._day(r.event_ns)
        if day is None:
            return ()
        day.measured.add(signal)
        if signal in ("bp_systolic", "bp_diastolic"):
            other = st.pending_bp.pop(r.event_ns, None)
            if other is None or other[0] == signal:
                st.pending_bp[r.event_ns] = (signal, r.value)
                while len(st.pending_bp) > _PENDING_MAX:
                    del st.pending_bp[min(st.pending_bp)]
                return ()
            sbp, dbp = (r.value, other[1]) if signal == "bp_systolic" else (other[1], r.value)
            day.bp_n += 1
            day.sbp_sum_mm_hg += sbp
            day.dbp_sum_mm_hg += dbp
            if len(day.bp_first) < 3:
                day.bp_first.append((r.event_ns, sbp, dbp))
        elif signal == "heart_rate" and self._hr is not None:
            # the tag can only change when an episode is counted (most minutes are not one)
            return _FEEDS["heart_rate"] if self._heart_rate(r) else ()
        elif signal == "spo2" and self._spo2 is not None:
            return _FEEDS["spo2"] if self._oxygen(r, day) else ()
        elif signal == "glucose" and self._tir is not None:
            day.glucose_n += 1
            if self._tir.low_mg_dl <= r.value <= self._tir.high_mg_dl:
                day.glucose_in_range += 1
        elif signal == "steps":
            day.steps += r.value
            day.steps_n += 1
        return _FEEDS.get(signal, ())

    def _heart_rate(self, r: Reading) -> bool:
        """Track the run above the level; True when this reading completes an episode."""
        run, rule = self.state.hr, self._hr
        if run.last_ns is not None and r.event_ns <= run.last_ns:
            return False  # an episode is a statement about event order: late readings count in the day only
        if run.last_ns is not None and r.event_ns - run.last_ns > rule.max_gap_s * NS:
            run.start_ns, run.counted = None, False  # a gap: not one continuous episode
        run.last_ns = r.event_ns
        if r.value > rule.above_per_min:
            if run.start_ns is None:
                run.start_ns = r.event_ns
            if not run.counted and r.event_ns - run.start_ns >= rule.min_s * NS:
                run.counted = True
                day = self._day(run.start_ns)
                if day is not None:
                    day.tachy_episodes += 1
                    if day.tachy_first_ns is None:
                        day.tachy_first_ns = run.start_ns
                    return True
        else:
            run.start_ns, run.counted = None, False
        return False

    def _oxygen(self, r: Reading, day: Day) -> bool:
        """Time below the level at night; True when it grew (or a first night reading came)."""
        run, rule, tz = self.state.spo2, self._spo2, self.state.tz
        lo, hi = rule.night
        if not lo <= local(r.event_ns, tz).hour < hi:
            return False
        day.spo2_night_n += 1
        first_tonight = day.spo2_night_n == 1  # a monitored night more can end the tag
        if run.last_ns is not None and r.event_ns <= run.last_ns:
            return first_tonight
        grew = False
        if (run.last_ns is not None and run.last_value is not None
                and r.event_ns - run.last_ns <= rule.max_gap_s * NS
                and run.last_value < rule.below_pct):
            prev = self._day(run.last_ns)
            if prev is not None:
                prev.spo2_below_s += (r.event_ns - run.last_ns) / NS
                grew = True
        run.last_ns, run.last_value = r.event_ns, r.value
        return grew or first_tonight

    def _apply(self, name: str) -> list[TagChange]:
        st = self.state
        rule = self._rules.get(name)
        if rule is None or st.today is None:
            return []
        v: Verdict = rule.evaluate(st.days, st.today, Context(self.active(), st.now_ns))
        if not v.decided:
            return []
        info = st.derived.get(name)
        change = None
        if v.on and info is None:
            info = st.derived[name] = TagInfo(st.now_ns, v.confidence, v.rule)
            change = "set"
        elif v.on and abs(v.confidence - info.confidence) >= self.cfg.update_step - 1e-9:
            info.confidence, info.rule = v.confidence, v.rule
            change = "update"
        elif not v.on and info is not None:
            del st.derived[name]
            change = "end"
        if change is None or name in st.manual:
            return []  # nothing new, or a manual tag stands: the derived view stays silent
        return [TagChange(self.patient, name, change, v.rule, info.start_ns,
                          st.now_ns if change == "end" else None,
                          v.confidence if v.on else 0.0, st.now_ns, v.evidence, v.guideline)]

    def _care_event(self, e: CareEvent) -> list[TagChange]:
        st = self.state
        if e.kind == "timezone":
            try:
                zone(e.value)
            except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
                return []  # an unknown zone is refused where it is entered; never guessed here
            st.tz = e.value
            return []
        if e.kind == "manual-tag" and e.value not in st.manual:
            st.manual[e.value] = e.event_ns
            return [TagChange(self.patient, e.value, "set", "set by the care team", e.event_ns,
                              None, 1.0, e.event_ns, source=MANUAL)]
        if e.kind == "clear-tag" and e.value in st.manual:
            start = st.manual.pop(e.value)
            out = [TagChange(self.patient, e.value, "end", "cleared by the care team", start,
                             e.event_ns, 0.0, e.event_ns, source=MANUAL)]
            info = st.derived.get(e.value)
            if info is not None:  # the data's own view of the tag, silent until now
                out.append(TagChange(self.patient, e.value, "set", info.rule, info.start_ns, None,
                                     info.confidence, e.event_ns))
            return out
        return []
