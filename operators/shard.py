"""Hosts many per-patient logics behind one stateful step, with one timer heap.

Runtimes key readings by shard, not by patient: a bytewax or faust step then
holds a few shard states instead of one per patient, and only the patients
whose deadlines are due are touched when time passes (a scan of every key on
every wake-up is what makes naive per-key event-time windows slow).
"""

from __future__ import annotations

import heapq
import zlib
from typing import Callable, Iterable

from vitalstream.model import Reading
from vitalstream.operators.clock import Clock, FrontierClock
from vitalstream.operators.patient import Output, PatientFlow, PatientLogic, PatientState


def shard_of(patient: str, shards: int) -> str:
    """Stable across processes and runs (``hash()`` of a str is salted per process)."""
    return str(zlib.crc32(patient.encode()) % shards)


class ShardHost:
    def __init__(self, flow: PatientFlow, wall: Clock,
                 resume_state: dict[str, PatientState] | None = None, *,
                 idle_grace_ns: int = 0, caught_up: Callable[[], bool] | None = None) -> None:
        self.flow = flow
        self.system = wall
        # Patients' clocks move between readings with the data's frontier, not with
        # processing time (see FrontierClock).
        self.wall = FrontierClock(wall, idle_grace_ns, caught_up)
        self.patients: dict[str, PatientLogic] = {}
        self._timers: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}
        for patient, st in (resume_state or {}).items():
            self.patients[patient] = flow.build(patient, self.wall, st)
            if st.last_recv_ns:
                self.wall.saw(st.last_recv_ns)  # the frontier survives a restart
        for patient in self.patients:
            self._schedule(patient)

    def _logic(self, patient: str) -> PatientLogic:
        logic = self.patients.get(patient)
        if logic is None:
            logic = self.patients[patient] = self.flow.build(patient, self.wall)
        return logic

    def _schedule(self, patient: str) -> None:
        due = self.patients[patient].next_wall_ns()
        if due is None:
            return
        current = self._scheduled.get(patient)
        if current is None or due < current:
            self._scheduled[patient] = due
            heapq.heappush(self._timers, (due, patient))

    def on_batch(self, readings: Iterable[Reading]) -> list[Output]:
        out: list[Output] = []
        touched = set()
        for r in readings:
            self.wall.saw(r.recv_ns)
            out.extend(self._logic(r.patient).on_item(r))
            touched.add(r.patient)
        for p in touched:
            self._schedule(p)
        return out

    def on_notify(self) -> list[Output]:
        out: list[Output] = []
        now = self.wall.now_ns()
        timers = self._timers
        done = []
        while timers and timers[0][0] <= now:
            due, patient = heapq.heappop(timers)
            if self._scheduled.get(patient) != due:
                continue  # superseded by an earlier deadline that already ran
            del self._scheduled[patient]
            out.extend(self.patients[patient].advance())
            done.append(patient)
        for patient in done:
            # Rescheduled after the loop: a deadline that is still "now" waits for
            # the next call instead of spinning here.
            self._schedule(patient)
        return out

    def on_eof(self) -> list[Output]:
        """Bounded input has ended: flush every buffer and close every window."""
        out: list[Output] = []
        for p in sorted(self.patients):
            out.extend(self.patients[p].advance(final=True))
        self._timers.clear()
        self._scheduled.clear()
        return out

    def notify_at_ns(self) -> int | None:
        """System time of the next timer (for runtimes that schedule on the system clock)."""
        return self.wall.to_system(self._timers[0][0]) if self._timers else None

    @property
    def open_windows(self) -> int:
        return sum(len(p.window) for p in self.patients.values())

    def late_counts(self) -> tuple[int, int]:
        w = sum(p.state.late_window for p in self.patients.values())
        r = sum(p.state.late_rules for p in self.patients.values())
        return w, r

    def snapshot(self) -> dict[str, PatientState]:
        return {p: logic.snapshot() for p, logic in self.patients.items()}
