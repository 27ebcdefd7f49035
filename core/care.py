"""Records of chronic care: profile tags, nudges, experiment exposures, care events.

These flow out of the care stage (``vitalstream.operators.care``) beside the
clinical ones (``vitalstream.model``): a ``TagChange`` when a patient's profile
gains, updates or loses a tag; a ``Nudge`` when a reminder or a care-team task is
sent; a ``NudgeSuppressed`` for every one that was not, with its reason; an
``Exposure`` the first time a patient meets an experiment's strategy (holdout
included, which is what makes the comparison fair). ``CareEvent`` is what comes
in from outside the readings: a clinic visit, a meal logged, a manual tag.

Times are integer nanoseconds since the Unix epoch, UTC, as everywhere. Every
record is frozen and shared by snapshots (``__deepcopy__`` is identity).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vitalstream.timeutil import to_datetime

# Kinds of outreach a nudge is: a message to the patient, or work for the care team.
PATIENT_REMINDER = "patient-reminder"
CARE_TASK = "care-task"

DERIVED = "derived"
MANUAL = "manual"


def _digest(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=10).hexdigest()


@dataclass(slots=True, frozen=True)
class Evidence:
    """One fact behind a tag or a nudge: a reading, a day's summary, a missing reading."""

    event_ns: int
    signal: str
    value: float
    note: str = ""  # e.g. "day mean 142/91 mm[Hg] from 2 readings"

    def __deepcopy__(self, memo: dict) -> "Evidence":
        return self

    def to_json(self) -> dict:
        return {"time": to_datetime(self.event_ns).isoformat(), "event_ns": self.event_ns,
                "signal": self.signal, "value": self.value, "note": self.note}


@dataclass(slots=True, frozen=True)
class TagChange:
    """A profile tag set, re-evaluated (``update``: confidence or evidence changed) or ended."""

    patient: str
    tag: str
    change: str  # "set" | "update" | "end"
    rule: str  # the rule that decided, e.g. "bp-guideline acc-aha-2017: stage 1 on 3 days"
    start_ns: int
    end_ns: int | None
    confidence: float  # 0..1
    at_ns: int  # event time of the evaluation
    evidence: tuple[Evidence, ...] = ()
    guideline: str = ""  # the standard cited, e.g. "ACC/AHA 2017"
    source: str = DERIVED

    def __deepcopy__(self, memo: dict) -> "TagChange":
        return self

    @property
    def event_id(self) -> str:
        """Deterministic: a replay of the same readings gives the same ids."""
        return _digest(self.patient, self.tag, self.start_ns, self.change, self.at_ns, self.source)

    def to_json(self) -> dict:
        return {"event_id": self.event_id, "patient": self.patient, "tag": self.tag,
                "change": self.change, "rule": self.rule, "start_ns": self.start_ns,
                "end_ns": self.end_ns, "confidence": self.confidence, "at_ns": self.at_ns,
                "guideline": self.guideline, "source": self.source,
                "evidence": [e.to_json() for e in self.evidence]}


@dataclass(slots=True, frozen=True)
class Nudge:
    """An outreach message sent: which strategy, why (``reason`` and ``evidence``), to whom."""

    patient: str
    strategy: str
    kind: str  # PATIENT_REMINDER | CARE_TASK
    channel: str  # e.g. "sms", "app", "care-team"
    due_ns: int  # when the trigger happened
    at_ns: int  # when it was sent (later than due_ns when quiet hours deferred it)
    message: str
    reason: str  # the explanation, e.g. "no blood pressure reading for 3 days (last 2026-05-01)"
    evidence: tuple[Evidence, ...] = ()
    experiment: str = ""
    variant: str = ""
    digest_of: tuple[str, ...] = ()  # other strategies folded into this one message

    def __deepcopy__(self, memo: dict) -> "Nudge":
        return self

    @property
    def nudge_id(self) -> str:
        return _digest(self.patient, self.strategy, self.due_ns)

    def to_json(self) -> dict:
        """The nudge message (``data/nudge-v1.schema.json``)."""
        return {"schema": "vitalstream.nudge/1", "nudge_id": self.nudge_id,
                "patient": self.patient, "strategy": self.strategy, "kind": self.kind,
                "channel": self.channel, "due_ns": self.due_ns, "at_ns": self.at_ns,
                "time": to_datetime(self.at_ns).isoformat(), "message": self.message,
                "reason": self.reason, "experiment": self.experiment, "variant": self.variant,
                "digest_of": list(self.digest_of), "evidence": [e.to_json() for e in self.evidence]}


@dataclass(slots=True, frozen=True)
class NudgeSuppressed:
    """A nudge a strategy asked for and that was not sent, with why.

    ``reason``: "cap" (``detail``: which cap, e.g. "sms/day"), "already-done", "priority"
    (a higher-priority strategy took the slot), "digested" (folded into another message),
    "holdout" (the patient is in an experiment's holdout group), "expired" (quiet hours
    outlasted the nudge's useful life)."""

    patient: str
    strategy: str
    reason: str
    at_ns: int
    channel: str = ""
    detail: str = ""
    experiment: str = ""
    variant: str = ""

    def __deepcopy__(self, memo: dict) -> "NudgeSuppressed":
        return self

    def to_json(self) -> dict:
        return {"patient": self.patient, "strategy": self.strategy, "reason": self.reason,
                "at_ns": self.at_ns, "channel": self.channel, "detail": self.detail,
                "experiment": self.experiment, "variant": self.variant}


@dataclass(slots=True, frozen=True)
class Exposure:
    """A patient met an experiment's strategy for the first time: the unit of analysis.

    Emitted whatever happened to the nudge (sent, capped, held out), so that outcomes
    compare like with like (intention to treat)."""

    experiment: str
    variant: str
    patient: str
    strategy: str
    at_ns: int

    def __deepcopy__(self, memo: dict) -> "Exposure":
        return self

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "variant": self.variant, "patient": self.patient,
                "strategy": self.strategy, "at_ns": self.at_ns}


@dataclass(slots=True, frozen=True)
class CareEvent:
    """Something that happened outside the readings.

    ``kind``: "visit" (a clinic visit: starts follow-up strategies), "meal" (a meal
    logged: starts "glucose after a meal"), "enrol"/"leave" (programme membership,
    ``value`` the programme), "manual-tag"/"clear-tag" (``value`` the tag), "timezone"
    (``value`` an IANA zone name)."""

    patient: str
    kind: str
    event_ns: int
    value: str = ""

    def __deepcopy__(self, memo: dict) -> "CareEvent":
        return self
