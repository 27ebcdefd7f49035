"""The care stage as a service: one ``CareLogic`` per person, a clock, and the stores.

``CareService`` hosts the care stage (``operators.care.CareFlow``) the way a
runtime does: items are routed to the logic of their *person* (a merged patient
id resolves to the person it was linked into, ``connectors.persons``), timers
fire when the injected clock reaches them, and every output goes to a
``CareWriter``: tag changes to the profile store, to the profile events stream
and to InfluxDB as annotations; nudges to the nudge outreach stream and the
patient's nudge log; suppressions counted by reason; exposures and outcome
records to the experiment's hashes.

The bytewax dataflow hosts the same logics in a keyed step (``stream.bytewax_flow``);
this class is what ``vitalstream care replay`` and the tests run, on a
``FakeClock`` when time must pass faster than it does.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable

from vitalstream.care import Exposure, Nudge, NudgeSuppressed, TagChange
from vitalstream.clock import Clock
from vitalstream.operators.care import CareFlow, CareLogic
from vitalstream.operators.experiment.outcomes import OutcomeRecord
from vitalstream.sinks.lineproto import profile_line


class CareWriter:
    """Where the care stage's outputs go (Redis via ``ProfileStore``, InfluxDB line writer).

    Redis away: the outputs wait in memory (up to ``buffer_max``, the oldest going first,
    counted in ``dropped``) and are written, in order, by the next write that finds Redis
    back. Writes are idempotent (event and nudge ids), so a batch that half-landed
    before the outage is safe to write again."""

    def __init__(self, store, lines=None, buffer_max: int = 100_000) -> None:
        self.store = store
        self.lines = lines  # an object with write_lines(list[str]) (InfluxWriter), or None
        self.counts: dict[str, int] = {}
        self.buffer_max = buffer_max
        self.held: list = []
        self.dropped = 0

    def write(self, outputs: Iterable[Any]) -> None:
        import redis

        outputs = list(outputs)
        lines = []
        for x in outputs:
            name = type(x).__name__
            self.counts[name] = self.counts.get(name, 0) + 1
            if type(x) is TagChange:
                lines.append(profile_line(x.patient, x.tag, x.change, x.source, x.confidence,
                                          f"{x.tag} {x.change}", x.rule, x.at_ns))
        if lines and self.lines is not None:
            self.lines.write_lines(lines)
        pending = self.held + outputs
        try:
            self._store(pending)
            self.held = []
        except redis.RedisError:
            over = len(pending) - self.buffer_max
            if over > 0:
                self.dropped += over
                pending = pending[over:]
            self.held = pending

    def _store(self, outputs: list) -> None:
        tags, nudges, outcomes = [], [], {}
        for x in outputs:
            t = type(x)
            if t is TagChange:
                tags.append(x)
            elif t in (Nudge, NudgeSuppressed, Exposure):
                nudges.append(x)
            elif t is OutcomeRecord:
                outcomes.setdefault(x.experiment, []).append(x.to_json())
        if tags:
            self.store.apply(tags)
        if nudges:
            self.store.record(nudges)
        for name, recs in outcomes.items():
            self.store.record_outcomes(name, recs)


class CareService:
    def __init__(self, flow: CareFlow, writer: CareWriter | None, clock: Clock, *,
                 person_of: Callable[[str], str] | None = None) -> None:
        self.flow = flow
        self.writer = writer
        self.clock = clock
        self.person_of = person_of if person_of is not None else (lambda pid: pid)
        self.logics: dict[str, CareLogic] = {}
        self.outputs: list = []  # everything emitted, in order (for callers and tests)
        self._commands_after = "0-0"

    def logic(self, person: str) -> CareLogic:
        got = self.logics.get(person)
        if got is None:
            got = self.logics[person] = self.flow.build(key=person)
        return got

    def feed(self, items: Iterable[Any]) -> list:
        """Items (readings, care events) in; outputs out, already written."""
        out: list = []
        for x in items:
            person = self.person_of(x.patient)
            out += self.logic(person).on_item(x)[0]
        return self._emit(out)

    def tick(self) -> list:
        """Fire every timer due at the clock's time."""
        now = self.clock.now_ns()
        out: list = []
        for logic in self.logics.values():
            due = logic.notify_at()
            if due is not None and due <= now:
                out += logic.on_notify(now)[0]
        return self._emit(out)

    def run_until(self, t_ns: int) -> list:
        """Move a FakeClock to ``t_ns`` one timer at a time (so days pass in order, and a
        silent person's reminders fire when they are due, not all at the end). A heap of
        deadlines: each step asks only the logic it notified for its next one."""
        out: list = []
        heap = [(d, k) for k, lg in self.logics.items() if (d := lg.notify_at()) is not None]
        heapq.heapify(heap)
        while heap and heap[0][0] <= t_ns:
            due, key = heapq.heappop(heap)
            logic = self.logics[key]
            if logic.notify_at() != due:
                continue  # stale: its deadline moved (the logic is in the heap again if due)
            if due > self.clock.now_ns():
                self.clock.set(due)
            now = self.clock.now_ns()
            out += self._emit(logic.on_notify(now)[0])
            nxt = logic.notify_at()
            if nxt is not None:
                if nxt <= now:  # a logic that asks again for a time already reached would spin
                    raise RuntimeError(f"care logic of {key} did not move its timer on")
                heapq.heappush(heap, (nxt, key))
        if t_ns > self.clock.now_ns():
            self.clock.set(t_ns)
            out += self.tick()
        return out

    def poll_commands(self, store) -> list:
        """Care-team commands queued in Redis (manual tags, visits, meals, zones) in."""
        self._commands_after, events = store.commands(self._commands_after)
        return self.feed(events) if events else []

    def _emit(self, out: list) -> list:
        if out and self.writer is not None:
            self.writer.write(out)
        self.outputs += out
        return out


def merged(items: Iterable[Any], by: Callable[[Any], int]) -> list:
    """Several event-ordered item lists as one (for replays of readings and care events)."""
    return list(heapq.merge(*items, key=by))
