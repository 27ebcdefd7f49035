"""The care stage inside the bytewax dataflow, beside the clinical one.

::

    readings (stage A, person-resolved) --+
                                          +-> key by person -> care (stateful_batch: CareLogic)
    care commands (Redis stream) ---------+       -> care_out (DynamicSink: ProfileStore, InfluxDB)

The care step is keyed by person, not by shard: its state lives for months and
its timers ("no reading for 3 days") must fire for a person who sends nothing,
which bytewax's per-key ``notify_at`` does. The commands source is one
partition reading ``{prefix}:care:commands``; its position is its snapshot, so
with durable state a restart goes on where it stopped, and without state it
reads the stream from the start, which rebuilds the manual tags the lost state
held.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import bytewax.operators as op
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.operators import StatefulBatchLogic

from vitalstream.clock import Clock
from vitalstream.model import Reading
from vitalstream.operators.care import CareFlow, CareLogic, CareState


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


class _CareStep(StatefulBatchLogic):
    """bytewax's side of the contract for one person (bytewax does not hand the key to
    the builder: it is taken from the first item, and kept in the state)."""

    def __init__(self, flow: CareFlow, clock: Clock, resume: CareState | None,
                 eof_flush: Callable[[], bool]) -> None:
        self.flow = flow
        self.clock = clock
        self.eof_flush = eof_flush
        self.logic: CareLogic | None = None
        if resume is not None:
            self.logic = flow.build(resume, key=resume.key)

    def on_batch(self, values: list) -> tuple[list, bool]:
        if self.logic is None:
            self.logic = self.flow.build(key=values[0].patient)
        out: list = []
        for x in values:
            out += self.logic.on_item(x)[0]
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list, bool]:
        return self.logic.on_notify(self.clock.now_ns())[0], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list, bool]:
        # a bounded input has ended: send what already triggered (digests, deferrals); a
        # stop with durable state keeps them for the next start instead
        if self.logic is None or not self.eof_flush():
            return [], StatefulBatchLogic.RETAIN
        return self.logic.on_eof()[0], StatefulBatchLogic.RETAIN

    def notify_at(self) -> Optional[datetime]:
        due = None if self.logic is None else self.logic.notify_at()
        return None if due is None else _utc(due)

    def snapshot(self) -> CareState | None:
        return None if self.logic is None else self.logic.snapshot()


class _Commands(StatefulSourcePartition):
    def __init__(self, store, after: str, poll_s: float, ended: Callable[[], bool]) -> None:
        self.store = store
        self.ended = ended
        self.after = after
        self.poll = timedelta(seconds=poll_s)
        self._awake: Optional[datetime] = None

    def next_batch(self) -> list:
        import redis

        if self.ended():
            raise StopIteration  # the readings' input has ended: so do the commands
        try:
            self.after, events = self.store.commands(self.after)
        except redis.RedisError:
            events = []  # Redis away: the commands wait in their stream
        self._awake = None if events else datetime.now(timezone.utc) + self.poll
        return events

    def next_awake(self) -> Optional[datetime]:
        return self._awake

    def snapshot(self) -> str:
        return self.after


class CommandsSource(FixedPartitionedSource):
    """The care team's commands (``ProfileStore.command``) as a bytewax input."""

    def __init__(self, make_store: Callable[[], Any], poll_s: float = 1.0,
                 ended: Callable[[], bool] = lambda: False) -> None:
        self.make_store = make_store
        self.poll_s = poll_s
        self.ended = ended

    def list_parts(self) -> list[str]:
        return ["commands"]

    def build_part(self, step_id: str, for_part: str, resume_state: str | None) -> _Commands:
        return _Commands(self.make_store(), resume_state or "0-0", self.poll_s, self.ended)


def add_care(flow, outcomes, care: CareFlow, sink, clock: Clock, commands=None,
             eof_flush: Callable[[], bool] = lambda: True) -> None:
    """Attach the care stage to the stage-A ``outcomes`` stream of a dataflow."""
    items = op.filter("care_readings", outcomes, lambda o: type(o) is Reading)
    if commands is not None:
        items = op.merge("care_items", items, op.input("care_commands", flow, commands))
    keyed = op.key_on("person", items, lambda x: x.patient)
    results = op.stateful_batch("care", keyed, lambda resume: _CareStep(care, clock, resume, eof_flush))
    op.output("care_out", op.key_rm("care_unkey", results), sink)
