"""Durable alarm state in Redis: what the lifecycle knows survives restarts and crashes.

Keys (``prefix`` default ``vitalstream``):

- ``<prefix>:lifecycle:<patient>``: the patient's ``LifecycleState`` (pickled: written and
  read only by this project);
- ``<prefix>:alarms:<patient>`` (hash, alert id -> JSON) and ``<prefix>:alarm-patients``
  (set): the open alarms, for ``vitalstream alerts list``;
- ``<prefix>:outreach`` (stream): every ``Notice`` the lifecycle emits, the messages a
  care-team tool consumes with a consumer group;
- ``<prefix>:audit`` (stream): who acknowledged, snoozed or resolved what, when and why;
- ``<prefix>:alarm-commands`` (stream): commands from the CLI or an API, applied by the
  running service;
- ``<prefix>:alarm-burden-state``: the alarm-burden meter's state (pickled), when one runs.

``commit`` writes a patient's new state, its open alarms, its notices and audit entries,
and acknowledges the input entries it consumed, in one ``MULTI``/``EXEC``: a crash
before it leaves the inputs pending (they are applied again to the old state), a crash
after it leaves nothing to redo. So a restart neither sends a notice again nor loses one.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from importlib import resources
from typing import Any, Iterable

import redis

from vitalstream.signals import spec
from vitalstream.timeutil import iso_z

from vitalstream.operators.lifecycle import RANK, Audit, Command, LifecycleState, Notice


class RedisAlarmState:
    def __init__(self, client: redis.Redis, prefix: str = "vitalstream") -> None:
        self.r = client
        self.prefix = prefix
        self.outreach = f"{prefix}:outreach"
        self.audit = f"{prefix}:audit"
        self.commands = f"{prefix}:alarm-commands"
        self._patients = f"{prefix}:alarm-patients"
        self._burden = f"{prefix}:alarm-burden-state"

    def _state_key(self, patient: str) -> str:
        return f"{self.prefix}:lifecycle:{patient}"

    def _alarms_key(self, patient: str) -> str:
        return f"{self.prefix}:alarms:{patient}"

    # -- the service's side --

    def load_all(self) -> dict[str, LifecycleState]:
        out = {}
        for raw in self.r.smembers(self._patients):
            patient = raw.decode()
            blob = self.r.get(self._state_key(patient))
            if blob is not None:
                out[patient] = pickle.loads(blob)
        return out

    def commit(self, patient: str, state: LifecycleState, outputs: Iterable[object],
               acks: Iterable[tuple[str, str, bytes]] = ()) -> None:
        """State, open alarms, notices, audit and the input acks of one patient, atomically.
        ``acks``: (stream, group, entry id) of the inputs this change consumed."""
        self.commit_many([(patient, state, outputs, acks)])

    def commit_many(self, changes: Iterable[tuple[str, LifecycleState, Iterable[object],
                                                  Iterable[tuple[str, str, bytes]]]],
                    burden: Any = None) -> None:
        """``commit`` for several patients in one transaction (with the alarm-burden meter's
        state, ``burden``, when one runs)."""
        p = self.r.pipeline(transaction=True)
        for patient, state, outputs, acks in changes:
            self._stage(p, patient, state, outputs, acks)
        if burden is not None:
            p.set(self._burden, pickle.dumps(burden, protocol=pickle.HIGHEST_PROTOCOL))
        p.execute()

    def load(self, patient: str) -> LifecycleState | None:
        blob = self.r.get(self._state_key(patient))
        return None if blob is None else pickle.loads(blob)

    def load_burden(self) -> Any:
        blob = self.r.get(self._burden)
        return None if blob is None else pickle.loads(blob)

    def _stage(self, p: Any, patient: str, state: LifecycleState, outputs: Iterable[object],
               acks: Iterable[tuple[str, str, bytes]]) -> None:
        p.set(self._state_key(patient), pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        p.sadd(self._patients, patient)
        p.delete(self._alarms_key(patient))
        if state.alarms:
            p.hset(self._alarms_key(patient), mapping={
                aid: json.dumps(_alarm_json(a, state)) for aid, a in state.alarms.items()})
        for x in outputs:
            if type(x) is Notice and x.reason == "suppressed":
                # held back by design (its source's alarm stands for it): history, not outreach
                p.xadd(self.audit, _fields({"alert_id": x.alert_id, "patient": x.patient,
                                            "event_ns": x.event_ns, "who": "vitalstream",
                                            "action": "suppressed", "reason": x.explanation,
                                            "detail": x.rule}))
            elif type(x) is Notice:
                msg = outreach_message(x)
                p.xadd(self.outreach, {"message": json.dumps(msg), **_fields(
                    {k: msg[k] for k in ("alert_id", "patient", "rule", "priority", "reason",
                                         "level", "event_ns")})})
            elif type(x) is Audit:
                p.xadd(self.audit, _fields(asdict(x)))
        for stream, group, entry in acks:
            p.xack(stream, group, entry)

    def ensure_group(self, stream: str, group: str) -> None:
        try:
            self.r.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- the CLI's side --

    def submit(self, c: Command) -> None:
        self.r.xadd(self.commands, _fields(asdict(c)))

    def alarms(self, patient: str | None = None, state: str | None = None) -> list[dict]:
        patients = [patient] if patient is not None else sorted(
            x.decode() for x in self.r.smembers(self._patients))
        pipe = self.r.pipeline(transaction=False)  # one round trip, however many patients
        for p in patients:
            pipe.hvals(self._alarms_key(p))
        out = []
        for vals in pipe.execute():
            for raw in vals:
                a = json.loads(raw)
                if state is None or a["state"] == state:
                    out.append(a)
        return sorted(out, key=lambda a: (a["raised_ns"], a["alert_id"]))

    def find(self, alert_id: str) -> dict | None:
        return next((a for a in self.alarms() if a["alert_id"] == alert_id
                     or alert_id in a["members"]), None)

    def history(self, alert_id: str) -> list[dict]:
        """The notices and audit entries of one alarm, in time order."""
        out = []
        for stream, kind in ((self.outreach, "notice"), (self.audit, "audit")):
            for _, f in self.r.xrange(stream):
                d = {k.decode(): v.decode() for k, v in f.items()}
                if d.get("alert_id") == alert_id:
                    d["kind"] = kind
                    out.append(d)
        return sorted(out, key=lambda d: int(d["event_ns"]))


SCHEMA = "vitalstream.outreach/1"


def outreach_schema() -> dict:
    """The JSON Schema every outreach message follows (``core/data/outreach-v1.schema.json``)."""
    text = resources.files("vitalstream").joinpath("data/outreach-v1.schema.json").read_text()
    return json.loads(text)


def nudge_schema() -> dict:
    """The JSON Schema of a nudge message (``core/data/nudge-v1.schema.json``)."""
    text = resources.files("vitalstream").joinpath("data/nudge-v1.schema.json").read_text()
    return json.loads(text)


def unit_of(signal: str) -> str:
    """The UCUM unit of an alert's value (``""``: a score).

    >>> unit_of("heart_rate"), unit_of("bp_systolic+bp_diastolic"), unit_of("news2")
    ('/min', 'mm[Hg]', '')
    """
    try:
        return spec(signal).unit
    except KeyError:  # news2 (a score), the two-signal crisis rule, a back-fill
        return "mm[Hg]" if "bp_systolic" in signal else ""


def outreach_message(n: Notice) -> dict:
    """A notice as the outreach stream carries it (field ``message``, JSON)."""
    unit = unit_of(n.signal)
    if n.historical:
        unit = "{readings}"  # a back-fill summary's value is how many it held
    return {"schema": SCHEMA, "alert_id": n.alert_id, "patient": n.patient, "rule": n.rule,
            "priority": n.priority, "state": n.state, "reason": n.reason,
            "event_time": iso_z(n.event_ns), "event_ns": n.event_ns, "level": n.level,
            "tier": n.tier, "signal": n.signal, "value": n.value, "unit": unit,
            "threshold": n.threshold, "explanation": n.explanation,
            "ack": f"vitalstream alerts ack {n.alert_id} --by WHO",
            **({"covers": list(n.covers)} if n.covers else {}),
            **({"historical": True} if n.historical else {})}


def _alarm_json(a: Any, st: LifecycleState) -> dict:
    # what a care-team screen shows without reading the lifecycle's pickled state
    snoozed = [s.until_ns for s in st.snoozes if s.patient == a.patient
               and (s.rule is None or s.rule == a.rule) and RANK[a.priority] <= RANK[s.priority]
               and s.until_ns > st.now_ns]
    return {"alert_id": a.alert_id, "patient": a.patient, "rule": a.rule,
            "priority": a.priority, "state": a.state, "present": a.present,
            "level": a.level, "raised_ns": a.raised_ns, "explanation": a.explanation,
            "members": sorted(a.members), "suppressed": a.suppressed, "covers": list(a.covers),
            "signal": a.signal, "value": a.value, "unit": unit_of(a.signal),
            "threshold": a.threshold, "assignee": a.assignee, "muted": a.muted,
            "snoozed_until_ns": max(snoozed) if snoozed else None}


def _fields(d: dict) -> dict[str, str]:
    return {k: ("" if v is None else str(v)) for k, v in d.items()}
