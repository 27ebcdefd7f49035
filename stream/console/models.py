"""The console API's request and response bodies: what the OpenAPI schema documents."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["high", "medium", "low"]
Reason = Field(min_length=1, max_length=500, description="why (recorded in the audit)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    username: str
    role: str
    csrf: str


class CsrfOut(BaseModel):
    csrf: str


class Me(BaseModel):
    username: str
    role: str
    cohorts: list[str]
    csrf: str = Field(description="send as X-CSRF-Token on every state-changing request")
    permissions: list[str]


class AlertOut(BaseModel):
    alert_id: str
    patient: str
    cohort: str | None
    rule: str
    priority: Priority
    display: Literal["critical", "warning", "info"]
    state: str
    present: bool
    level: int = Field(description="escalation level: 0 the primary team, 1.. the tiers")
    tier: str
    raised_ns: int
    signal: str
    value: float | None
    unit: str = Field(description="UCUM")
    threshold: float | None
    explanation: str
    assignee: str
    snoozed_until_ns: int | None
    members: list[str]
    covers: list[str]
    muted: bool = Field(description="its rule is switched off for this patient (an override)")


class AlertsOut(BaseModel):
    server_ns: int
    alerts: list[AlertOut]


class Ack(Strict):
    reason: str = Reason
    scope: Literal["alarm", "rule", "patient"] = "alarm"


class Snooze(Strict):
    reason: str = Reason
    scope: Literal["rule", "patient"] = "rule"
    minutes: float = Field(gt=0, le=24 * 60)


class Resolve(Strict):
    reason: str = Reason


class Assign(Strict):
    to: str = Field(min_length=1, max_length=64, description="a console user name")
    reason: str = Field(default="", max_length=500)


class Submitted(BaseModel):
    kind: str
    target: str
    by: str
    event_ns: int
    detail: str = "applied by the alarm service within about a second; the live feed shows it"


class HistoryEntry(BaseModel):
    kind: Literal["notice", "audit"]
    event_ns: int
    reason: str = ""
    action: str = ""
    who: str = ""
    priority: str = ""
    level: int | None = None
    explanation: str = ""
    detail: str = ""


class HistoryOut(BaseModel):
    alert_id: str
    entries: list[HistoryEntry]


class Vital(BaseModel):
    value: float
    unit: str
    time_ns: int
    age_s: float


class News2Latest(BaseModel):
    score: int
    band: str
    time_ns: int


class PatientOut(BaseModel):
    patient: str
    cohort: str | None
    vitals: dict[str, Vital]
    news2: News2Latest | None
    alerts: dict[Priority, int]
    stale: bool
    tags: list[str] = Field(default_factory=list, description="care tags in effect (its person's)")


class PatientsOut(BaseModel):
    server_ns: int
    patients: list[PatientOut]


class Cohort(BaseModel):
    name: str
    patients: list[str]


class CohortsOut(BaseModel):
    cohorts: list[Cohort]


class CohortIn(Strict):
    patients: list[str] = Field(default_factory=list, max_length=10000)
    description: str = Field(default="", max_length=500)


class SignalSeries(BaseModel):
    unit: str
    readings: list[tuple[int, float]]
    window: dict[str, str | list[tuple[int, float]]]
    anomaly: dict[str, list[tuple[int, float]]]


class Annotation(BaseModel):
    event_ns: int
    alert_id: str
    rule: str
    reason: str
    priority: str
    signal: str


class SeriesOut(BaseModel):
    patient: str
    start_ns: int
    end_ns: int
    signals: dict[str, SignalSeries]
    news2: list[tuple[int, int, int]] = Field(description="(time ns, score, band rank 0-3)")
    annotations: list[Annotation]


class AuditEntry(BaseModel):
    event_ns: int
    alert_id: str
    patient: str
    who: str
    action: str
    reason: str
    detail: str


class AuditOut(BaseModel):
    entries: list[AuditEntry]


class UserIn(Strict):
    role: Literal["viewer", "nurse", "physician", "admin"]
    cohorts: list[str] = Field(default_factory=list, max_length=100)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    disabled: bool = False


class UserOut(BaseModel):
    username: str
    role: str
    cohorts: list[str]
    disabled: bool


class UsersOut(BaseModel):
    users: list[UserOut]


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=64)


class TokenOut(BaseModel):
    token: str = Field(description="shown once: send as Authorization: Bearer <token>")


class OverrideIn(Strict):
    rule: str = Field(min_length=1, max_length=64)
    priority: Literal["high", "medium", "low", "off", "default"] = Field(
        description="how this rule pages for this patient; default: end the override")
    minutes: float = Field(default=24 * 60, gt=0, le=30 * 24 * 60)
    reason: str = Reason


class OverrideOut(BaseModel):
    rule: str
    priority: str
    until_ns: int
    by: str
    reason: str


class OverridesOut(BaseModel):
    patient: str
    overrides: list[OverrideOut]


# -- profiles: tags, evidence, nudges --

TagName = Literal["hypertension", "tachycardia-episodes", "nocturnal-desaturation",
                  "poor-glycaemic-control", "low-activity", "non-adherent-measurement"]


class EvidenceOut(BaseModel):
    time: str = Field(description="ISO 8601, UTC")
    event_ns: int
    signal: str
    value: float | None
    note: str


class TagOut(BaseModel):
    tag: str
    source: Literal["derived", "manual"]
    id: str = Field(description="the patient id the tag is stored under (one of ids)")
    since_ns: int
    end_ns: int | None
    at_ns: int = Field(description="when it was last evaluated (event time)")
    change: str
    confidence: float = Field(description="0..1")
    rule: str
    guideline: str
    evidence: list[EvidenceOut]


class NudgeOut(BaseModel):
    status: Literal["sent", "suppressed"]
    patient: str
    at_ns: int
    due_ns: int | None
    strategy: str
    kind: str
    channel: str
    reason: str = Field(description="sent: why it was sent; suppressed: cap, already-done, "
                                    "priority, digested, holdout, expired")
    detail: str
    message: str
    experiment: str
    variant: str
    digest_of: list[str]
    evidence: list[EvidenceOut]


class SuppressedCount(BaseModel):
    strategy: str
    reason: str
    count: int


class ProfileOut(BaseModel):
    patient: str = Field(description="the id asked for")
    person: str = Field(description="the person it belongs to (the id asked for when the "
                                    "person's own id is outside your cohorts)")
    ids: list[str] = Field(description="the person's patient ids you may see: the union shown")
    aliases: list[str]
    tags: list[TagOut] = Field(description="tags in effect, by name")
    nudges: list[NudgeOut] = Field(description="sent and suppressed, newest first")
    suppressed: list[SuppressedCount]
    suppressed_total: int


class TagIn(Strict):
    tag: TagName
    action: Literal["set", "clear"]
    reason: str = Field(default="", max_length=500, description="recorded in the audit")


class TagSubmitted(BaseModel):
    patient: str
    tag: str
    action: str
    ids: list[str] = Field(description="the patient ids the manual tag was set or cleared on")
    changed: bool = Field(description="false: already set by hand (its start stays)")
    by: str
    event_ns: int


class TagMembers(BaseModel):
    tag: str
    patients: list[str]


class TagsOut(BaseModel):
    tags: list[TagMembers]
