"""The alarm service: the lifecycle (``operators.lifecycle``) between the pipeline's alert
events and the care team, with its state in Redis (``sinks.alarm_state``).

    vitalstream alerts serve            # alongside vitalstream run, on the same Redis

It reads the alert events the pipeline writes (``redis.alerts_stream``) and the commands
the CLI writes (``vitalstream alerts ack|snooze|resolve``), both with a consumer group, so
an entry is applied once; fires the lifecycle's timers (re-notification, escalation,
snooze ends, flapping) on its clock; and commits each patient's change together with the
acknowledgement of the entries it consumed (see ``RedisAlarmState.commit``). A restarted
service loads every patient's state and goes on where it stopped.

Alarm burden: with a line writer (``lines``), every step's notices and audit entries also
go through a ``BurdenMeter`` (its state committed with the rest), and each closed interval
is written to InfluxDB as ``alarm_burden`` points (``sinks.lineproto.burden_line``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import defaultdict
from typing import Callable

import redis

from vitalstream.clock import Clock, SystemClock
from vitalstream.model import Alert, AlertState
from vitalstream.operators.burden import BurdenMeter, Monitored
from vitalstream.operators.lifecycle import (Audit, Command, Lifecycle, LifecycleLogic,
                                             LifecycleState, Notice, Suppress)
from vitalstream.operators.liveness import GATEWAY_KEY, PIPELINE_KEY
from vitalstream.sinks.alarm_state import RedisAlarmState
from vitalstream.sinks.lineproto import burden_line

log = logging.getLogger(__name__)
GROUP = "vitalstream-lifecycle"


def alert_from_fields(f: dict[bytes, bytes]) -> Alert:
    d = {k.decode(): v.decode() for k, v in f.items()}
    return Alert(d["alert_id"], d["patient"], d["rule"], d["signal"], d["severity"], d["state"],
                 float(d["value"]), float(d["threshold"]), int(d["event_ns"]),
                 int(d["episode_start_ns"]), int(d.get("seq", 0) or 0), d.get("message", ""),
                 d.get("explanation", ""), d.get("group", ""),
                 tuple(json.loads(d["covers"])) if d.get("covers") else ())


def command_from_fields(f: dict[bytes, bytes]) -> Command:
    d = {k.decode(): v.decode() for k, v in f.items()}
    return Command(d["kind"], d["target"], d["by"], d["reason"], int(d["event_ns"]),
                   d.get("scope", "alarm"), float(d.get("minutes", 0) or 0),
                   d.get("assignee", ""), d.get("rule", ""), d.get("priority", ""))


def prefix_of(alerts_stream: str) -> str:
    """The lifecycle's key prefix: the alert stream's (``vitalstream:alerts`` ->
    ``vitalstream``), so runs with their own stream names keep their own alarms.

    >>> prefix_of("vitalstream:alerts"), prefix_of("ward-3:alerts"), prefix_of("alerts")
    ('vitalstream', 'ward-3', 'alerts')
    """
    head, sep, _ = alerts_stream.rpartition(":")
    return head if sep else alerts_stream


class AlarmThread:
    """The service on a thread of the pipeline process, riding out a Redis that is down
    (at start or later) as the rest of the pipeline does: it retries with backoff."""

    def __init__(self, url: str, alerts_stream: str, cfg: Lifecycle = Lifecycle(), *,
                 lines=None, monitored: Callable[[], int] | None = None) -> None:
        self.url, self.alerts_stream, self.cfg = url, alerts_stream, cfg
        self.lines, self.monitored = lines, monitored
        self._stop = threading.Event()
        self.service: AlarmService | None = None
        self._thread = threading.Thread(target=self._run, name="vitalstream-lifecycle",
                                        daemon=True)

    def start(self) -> "AlarmThread":
        self._thread.start()
        return self

    def _run(self) -> None:
        from vitalstream.sinks.redis_streams import connect, is_outage

        wait = 0.5
        while not self._stop.is_set():
            try:
                if self.service is None:
                    self.service = AlarmService(connect(self.url), self.alerts_stream,
                                                cfg=self.cfg, prefix=prefix_of(self.alerts_stream),
                                                lines=self.lines, monitored=self.monitored)
                if self.service.step() == 0:
                    self._stop.wait(0.2)
                wait = 0.5
            except Exception as exc:  # the pipeline must not stop for its alarm service
                if not is_outage(exc):
                    log.exception("alarm service step failed")
                self.service = None  # reload the state from Redis when it answers
                self._stop.wait(wait)
                wait = min(wait * 2, 10.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop, after applying what the pipeline wrote last (its final flush comes just
        before this); what still cannot be read stays in the stream for the next start."""
        self._stop.set()
        self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        try:
            while self.service is not None and time.monotonic() < deadline:
                if self.service.step() == 0:
                    break
        except Exception as exc:  # Redis gone at shutdown: the entries wait in the stream
            log.warning("alarm service: final step failed: %r", exc)


class AlarmService:
    def __init__(self, client: redis.Redis, alerts_stream: str, *, cfg: Lifecycle = Lifecycle(),
                 prefix: str = "vitalstream", clock: Clock | None = None, lines=None,
                 monitored: Callable[[], int] | None = None,
                 burden: BurdenMeter = BurdenMeter()) -> None:
        self.r = client
        self.cfg = cfg
        self.store = RedisAlarmState(client, prefix)
        self.alerts_stream = alerts_stream
        self.clock = clock or SystemClock()
        self.logics: dict[str, LifecycleLogic] = {
            p: cfg.build(st, key=p) for p, st in self.store.load_all().items()}
        self._patient_of: dict[str, str] = {}  # alert id -> patient, for commands
        # sources down that every patient depends on (the broker): alarm id -> since
        self._everyone: dict[str, int] = {}
        for p, logic in self.logics.items():
            for aid, a in logic.st.alarms.items():
                for m in a.members | {aid}:
                    self._patient_of[m] = p
                if a.covers == ("*",) and a.present:
                    self._everyone[aid] = a.raised_ns
        for stream in (alerts_stream, self.store.commands):
            self.store.ensure_group(stream, GROUP)
        self._recovering = True
        # alarm burden (only with somewhere to write it): how many patients are monitored
        # comes from the pipeline when it runs us, else the patients the lifecycle knows
        self.lines = lines
        self.meter = burden.build(self.store.load_burden()) if lines is not None else None
        self.monitored = monitored or (lambda: sum(
            1 for k in self.logics if not k.startswith(GATEWAY_KEY) and k != PIPELINE_KEY))
        self._monitored_last: int | None = None
        self._stop = threading.Event()

    def _logic(self, patient: str) -> LifecycleLogic:
        logic = self.logics.get(patient)
        if logic is None:
            # a patient first heard of while the broker is down depends on it too
            logic = self.logics[patient] = self.cfg.build(
                LifecycleState(suppressors=dict(self._everyone)), key=patient)
        return logic

    def _suppressions(self, a: Alert, per: dict[str, list]) -> None:
        """A source's alarm (``covers``) fired or resolved: tell the patients behind it, in
        stream order, so their own technical alarms that follow are held or released."""
        if a.state in (AlertState.FIRING, AlertState.RESOLVED):
            active = a.state == AlertState.FIRING
            if a.covers == ("*",):
                if active:
                    self._everyone[a.alert_id] = a.event_ns
                else:
                    self._everyone.pop(a.alert_id, None)
                covered = [p for p in {*self.logics, *per} if p != a.patient]
            else:
                covered = list(a.covers)
            for p in covered:
                per[p].append(Suppress(a.alert_id, active, a.event_ns))

    def _read(self, count: int) -> list[tuple[str, bytes, object]]:
        # After a start, first what this consumer read before and never committed (a crash
        # between read and commit), then what is new.
        since = "0" if self._recovering else ">"
        got = self.r.xreadgroup(GROUP, "service", {self.alerts_stream: since,
                                                   self.store.commands: since}, count=count) or []
        if self._recovering and not any(entries for _, entries in got):
            self._recovering = False
            got = self.r.xreadgroup(GROUP, "service", {self.alerts_stream: ">",
                                                       self.store.commands: ">"}, count=count) or []
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
                # The lifecycle's clock is when the team learns of it, not the data's time:
                # an alert on data uploaded late must not arrive already overdue.
                item = dataclasses.replace(item, event_ns=max(item.event_ns, now))
                if item.covers:
                    per[patient].append(item)
                    acks[patient].append((stream, GROUP, entry))
                    self._suppressions(item, per)
                    continue
            else:
                # an override names its patient; other commands an alarm of theirs
                patient = item.target if item.kind == "override" else \
                    self._patient_of.get(item.target)
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
        changes = []
        for patient, its in per.items():
            logic = self._logic(patient)
            out = []
            for x in its:
                out += logic.on_item(x)[0]
            out += logic.on_notify(now)[0]
            changes.append((patient, logic.snapshot(), out, acks.get(patient, ())))
        points = self._burden(now, [x for c in changes for x in c[2]])
        # one transaction: a source's alarm and what it did to its patients land together
        self.store.commit_many(changes, burden=None if self.meter is None else self.meter.snapshot())
        if points:
            # after the commit: a crash in between loses these points, never doubles them
            self.lines.write_lines([burden_line(p) for p in points])
        for patient, _, _, _ in changes:
            logic = self.logics[patient]
            open_ids = {m for a in logic.st.alarms.values() for m in a.members | {a.alert_id}}
            for aid in [k for k, v in self._patient_of.items() if v == patient and k not in open_ids]:
                del self._patient_of[aid]  # closed: a later command for it has nothing to act on
        return len(items)

    def _burden(self, now: int, outputs: list) -> list:
        meter = self.meter
        if meter is None:
            return []
        items = [x for x in outputs if type(x) in (Notice, Audit)]
        n = self.monitored()
        if n != self._monitored_last:
            items.insert(0, Monitored(now, n))
            self._monitored_last = n
        return meter.on_batch(items)[0] + meter.on_notify(now)[0]

    def next_wake_ns(self) -> int | None:
        due = [d for d in (lg.notify_at() for lg in self.logics.values()) if d is not None]
        return min(due) if due else None

    def run(self, poll_s: float = 0.2) -> None:
        while not self._stop.is_set():
            if self.step() == 0:
                self._stop.wait(poll_s)

    def stop(self) -> None:
        self._stop.set()
