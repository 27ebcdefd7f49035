"""Records that flow through the pipeline.

Times are integer nanoseconds since the Unix epoch, UTC (``*_ns``): exact, cheap
to compare, and what InfluxDB stores. ``to_datetime`` gives an aware UTC view
(``vitalstream.timeutil``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import IntFlag

from vitalstream.signals import Signal

# Kept importable from here: the time helpers live in vitalstream.timeutil, next to
# the one ISO-8601 parser.
from vitalstream.timeutil import from_datetime, to_datetime  # noqa: F401

NS_PER_S = 1_000_000_000


class Quality(IntFlag):
    """Per-reading quality flags. A flagged reading is stored, but detectors do
    not learn from LOW_QUALITY ones and rules may ignore them."""

    OK = 0
    CLOCK_CORRECTED = 1  # device time was implausibly far from receive time
    GATEWAY_TIME = 2  # no device timestamp: the gateway's receive time was used
    MOTION_ARTEFACT = 4  # device reported motion / contact loss
    SPECIAL_VALUE = 8  # IEEE-11073 NaN/NRes/INF: value is not a measurement
    HISTORICAL = 16  # replayed from quarantine or back-filled: never alerted on
    LOW_QUALITY = MOTION_ARTEFACT | SPECIAL_VALUE


@dataclass(slots=True)
class RawReading:
    """A decoded value before unit normalisation and plausibility checks."""

    device: str
    patient: str | None
    signal: str
    value: float
    unit: str | None
    event_ns: int
    quality: Quality = Quality.OK
    source: str = "json"
    user: int | None = None  # user index on a shared device (multi-user BP cuff)
    gateway: str | None = None  # BLE gateway that relayed it, if any


@dataclass(slots=True, frozen=True)
class Reading:
    """One measurement of one signal for one patient, in the signal's canonical unit."""

    patient: str
    device: str
    signal: Signal
    value: float
    unit: str
    event_ns: int
    recv_ns: int
    source: str = "json"  # codec or characteristic it came from
    quality: Quality = Quality.OK

    def dedup_key(self) -> tuple[str, str, int]:
        return (self.device, self.signal.value, self.event_ns)

    def __deepcopy__(self, memo: dict) -> "Reading":
        return self  # immutable: snapshots share it


@dataclass(slots=True)
class WindowAggregate:
    """Aggregates of one signal of one patient over the event-time window [start_ns, end_ns).

    ``values`` maps aggregator name to result (``count``, ``min``, ``max``,
    ``mean``, ``last`` by default; a window configured with more aggregators
    carries more). The usual ones are also attributes.
    """

    patient: str
    signal: Signal
    start_ns: int
    end_ns: int
    values: dict[str, float]
    device: str = ""
    partial: bool = False  # closed before end + allowed lateness (a stop without state)

    @property
    def count(self) -> int:
        return int(self.values["count"])

    @property
    def min(self) -> float:
        return self.values["min"]

    @property
    def max(self) -> float:
        return self.values["max"]

    @property
    def mean(self) -> float:
        return self.values["mean"]

    @property
    def last(self) -> float:
        return self.values["last"]


def vital_stats(count: int, min_: float, max_: float, mean: float, last: float) -> dict[str, float]:
    """The default aggregates as a ``WindowAggregate.values`` mapping."""
    return {"count": count, "min": min_, "max": max_, "mean": mean, "last": last}


class AlertState:
    FIRING = "firing"
    REALERT = "realert"
    RESOLVED = "resolved"
    # Another rule's episode of the same patient and signals is already open: this one
    # joins that concern (``group``) instead of paging again; "escalated" when it raises
    # the concern's priority (a notification, but of the same concern).
    GROUPED = "grouped"
    ESCALATED = "escalated"
    # Not an alarm: the summary of a back-fill (readings measured long before they
    # arrived), sent once as a message marked historical (operators/backfill.py).
    HISTORICAL = "historical"


def alert_id(patient: str, rule: str, episode_start_ns: int) -> str:
    """Deterministic id of an alert episode: a replay of the same readings gives the same id."""
    h = hashlib.blake2b(f"{patient}|{rule}|{episode_start_ns}".encode(), digest_size=10)
    return h.hexdigest()


@dataclass(slots=True, frozen=True)
class Alert:
    """One event in the life of an alert episode (fired, re-alerted, resolved)."""

    alert_id: str
    patient: str
    rule: str
    signal: str
    severity: str
    state: str
    value: float
    threshold: float
    event_ns: int  # event time of the reading that caused this event
    episode_start_ns: int
    seq: int = 0  # 0 for firing, 1.. for re-alerts, then resolved
    message: str = ""  # the rule's fixed text (configured)
    explanation: str = ""  # what was unusual, e.g. "HR 104 /min, usual 66 +- 6 at rest"
    group: str = ""  # alert id of the concern this one joined (state grouped/escalated)
    # A source's alarm (a gateway offline, the broker lost): the patients behind it, whose
    # own technical alarms it stands for ("*": every patient)
    covers: tuple[str, ...] = ()

    def __deepcopy__(self, memo: dict) -> "Alert":
        return self  # immutable: snapshots share it

    @property
    def event_id(self) -> str:
        """Unique per alert event; the sink refuses a second event with the same id."""
        return f"{self.alert_id}:{self.state}:{self.seq}"

    def to_fields(self) -> dict[str, str]:
        return {
            "alert_id": self.alert_id,
            "event_id": self.event_id,
            "patient": self.patient,
            "rule": self.rule,
            "signal": self.signal,
            "severity": self.severity,
            "state": self.state,
            "value": repr(float(self.value)),
            "threshold": repr(float(self.threshold)),
            "event_time": to_datetime(self.event_ns).isoformat(),
            "event_ns": str(self.event_ns),
            "episode_start_ns": str(self.episode_start_ns),
            "message": self.message,
            "explanation": self.explanation,
            "group": self.group,
            "covers": json.dumps(list(self.covers)) if self.covers else "",
        }


@dataclass(slots=True, frozen=True)
class Heard:
    """A patient's data came in through a gateway at ``recv_ns``: what gateway liveness
    (``operators.liveness.GatewayWatch``) is told, one per gateway and patient per message."""

    gateway: str
    patient: str
    recv_ns: int


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """Input that could not become a valid reading, kept with the reason."""

    step: str
    reason: str
    detail: str
    topic: str
    payload: bytes
    device: str | None = None
    recv_ns: int = 0

    def to_fields(self) -> dict[str, str | bytes]:
        return {
            "step": self.step,
            "reason": self.reason,
            "detail": self.detail,
            "topic": self.topic,
            "payload": self.payload,
            "device": self.device or "",
            "recv_ns": str(self.recv_ns),
        }


@dataclass(slots=True)
class Message:
    """A raw message as received from a transport, with the token used to ack it."""

    topic: str
    payload: bytes
    recv_ns: int
    token: object = None
    extra: dict = field(default_factory=dict)
