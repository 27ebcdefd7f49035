"""The alarm service: the lifecycle (``operators.lifecycle``) between the pipeline's alert
events and the care team, with its state in Redis (``sinks.alarm_state``).

    vitalstream alerts serve            # alongside vitalstream run, on the same Redis

It reads the alert events the pipeline writes (``redis.alerts_stream``) and the commands
the CLI writes (``vitalstream alerts ack|snooze|resolve``), both with a consumer group, so
an entry is applied once; fires the lifecycle's timers (re-notification, escalation,
snooze ends, flapping) on its clock; and commits each patient's change together with the
acknowledgement of the entries it consumed (see ``RedisAlarmState.commit``). A restarted
service loads every patient's state and goes on where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

import redis

from vitalstream.clock import Clock, SystemClock
from vitalstream.model import Alert
from vitalstream.operators.lifecycle import Command, Lifecycle, LifecycleLogic, LifecycleState
from vitalstream.sinks.alarm_state import RedisAlarmState

log = logging.getLogger(__name__)
GROUP = "vitalstream-lifecycle"


def alert_from_fields(f: dict[bytes, bytes]) -> Alert:
    d = {k.decode(): v.decode() for k, v in f.items()}
    return Alert(d["alert_id"], d["patient"], d["rule"], d["signal"], d["severity"], d["state"],
                 float(d["value"]), float(d["threshold"]), int(d["event_ns"]),
                 int(d["episode_start_ns"]), int(d.get("seq", 0) or 0), d.get("message", ""),
                 d.get("explanation", ""), d.get("group", ""))


def command_from_fields(f: dict[bytes, bytes]) -> Command:
    d = {k.decode(): v.decode() for k, v in f.items()}
    return Command(d["kind"], d["target"], d["by"], d["reason"], int(d["event_ns"]),
                   d.get("scope", "alarm"), float(d.get("minutes", 0) or 0))


class AlarmService:
    def __init__(self, client: redis.Redis, alerts_stream: str, *, cfg: Lifecycle = Lifecycle(),
                 prefix: str = "vitalstream", clock: Clock | None = None) -> None:
        self.r = client
        self.cfg = cfg
        self.store = RedisAlarmState(client, prefix)
        self.alerts_stream = alerts_stream
        self.clock = clock or SystemClock()
        self.logics: dict[str, LifecycleLogic] = {
            p: cfg.build(st, key=p) for p, st in self.store.load_all().items()}
        self._patient_of: dict[str, str] = {}  # alert id -> patient, for commands
        for p, logic in self.logics.items():
            for aid, a in logic.st.alarms.items():
                for m in a.members | {aid}:
                    self._patient_of[m] = p
        for stream in (alerts_stream, self.store.commands):
            self.store.ensure_group(stream, GROUP)
        self._stop = threading.Event()

    def _logic(self, patient: str) -> LifecycleLogic:
        logic = self.logics.get(patient)
        if logic is None:
            logic = self.logics[patient] = self.cfg.build(LifecycleState(), key=patient)
        return logic

    def _read(self, count: int) -> list[tuple[str, bytes, object]]:
        got = self.r.xreadgroup(GROUP, "service", {self.alerts_stream: ">", self.store.commands: ">"},
                                count=count) or []
        out = []
        for stream, entries in got:
            name = stream.decode()
            for entry, fields in entries:
                try:
                    item = (alert_from_fields(fields) if name == self.alerts_stream
                            else command_from_fields(fields))
                except (KeyError, ValueError) as exc:  # not ours to apply: skip, but say so
                    log.warning("alarm service: unreadable entry %s of %s: %r", entry, name, exc)
                    self.r.xack(name, GROUP, entry)
                    continue
                out.append((name, entry, item))
        return out

    def step(self, count: int = 500) -> int:
        """Apply what arrived and what fell due; the number of entries applied."""
        now = self.clock.now_ns()
        per: dict[str, list] = defaultdict(list)
        acks: dict[str, list] = defaultdict(list)
        items = self._read(count)
        for stream, entry, item in items:
            if type(item) is Alert:
                patient = item.patient
                self._patient_of[item.alert_id] = patient
            else:
                patient = self._patient_of.get(item.target)
                if patient is None:
                    log.warning("alarm service: command for unknown alarm %s", item.target)
                    self.r.xack(stream, GROUP, entry)
                    continue
            per[patient].append(item)
            acks[patient].append((stream, GROUP, entry))
        for patient, logic in self.logics.items():
            if patient not in per:
                due = logic.notify_at()
                if due is not None and due <= now:
                    per[patient] = []
        for patient, its in per.items():
            logic = self._logic(patient)
            out = []
            for x in its:
                out += logic.on_item(x)[0]
            out += logic.on_notify(now)[0]
            self.store.commit(patient, logic.snapshot(), out, acks.get(patient, ()))
            open_ids = {m for a in logic.st.alarms.values() for m in a.members | {a.alert_id}}
            for aid in [k for k, v in self._patient_of.items() if v == patient and k not in open_ids]:
                del self._patient_of[aid]  # closed: a later command for it has nothing to act on
        return len(items)

    def next_wake_ns(self) -> int | None:
        due = [d for d in (lg.notify_at() for lg in self.logics.values()) if d is not None]
        return min(due) if due else None

    def run(self, poll_s: float = 0.2) -> None:
        while not self._stop.is_set():
            if self.step() == 0:
                self._stop.wait(poll_s)

    def stop(self) -> None:
        self._stop.set()
