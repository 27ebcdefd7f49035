"""The care stage inside the bytewax dataflow, beside the clinical one.

::

    readings keyed by shard (stage A, person-resolved; the clinical stage's keys) --+
                                                  +-> care (stateful_batch: CareHost)
    care commands (Redis stream) -> key by shard -------+   -> care_out (DynamicSink: ProfileStore, InfluxDB)

The care step is keyed by shard of person (``crc32(person) % shards``, like the
clinical stage), each shard a ``CareHost`` of its persons' logics: a person's state
lives in one place, bytewax calls Python once per shard and batch rather than once
per person, and the host's heap of deadlines makes a silent person's timers ("no
reading for 3 days") fire through the shard's ``notify_at``. Persons are never
evicted: the one who sends nothing is the one to remind. The commands source is one
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
from vitalstream.operators.care import CareFlow, CareHost, CareHostState
from vitalstream.operators.shard import shard_of


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


class _CareStep(StatefulBatchLogic):
    """bytewax's side of the contract for one shard of persons (``operators.care.CareHost``)."""

    def __init__(self, host: CareHost, clock: Clock, resume: CareHostState | None,
                 eof_flush: Callable[[], bool]) -> None:
        self.logic = host.build(resume)
        self.clock = clock
        self.eof_flush = eof_flush

    def on_batch(self, values: list) -> tuple[list, bool]:
        return self.logic.on_batch(values)[0], StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list, bool]:
        return self.logic.on_notify(self.clock.now_ns())[0], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list, bool]:
        # a bounded input has ended: send what already triggered (digests, deferrals); a
        # stop with durable state keeps them for the next start instead
        if not self.eof_flush():
            return [], StatefulBatchLogic.RETAIN
        return self.logic.on_eof()[0], StatefulBatchLogic.RETAIN

    def notify_at(self) -> Optional[datetime]:
        due = self.logic.notify_at()
        return None if due is None else _utc(due)

    def snapshot(self) -> CareHostState:
        return self.logic.snapshot()


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


def add_care(flow, keyed, care: CareFlow, sink, clock: Clock, commands=None,
             eof_flush: Callable[[], bool] = lambda: True, shards: int = 64) -> None:
    """Attach the care stage to stage A's readings, keyed by shard of patient as the
    clinical stage has them (``shard_key``: the same crc32 of the person); gateway
    liveness items in that stream are passed over by the host."""
    if commands is not None:
        cmds = op.key_on("care_command_shard", op.input("care_commands", flow, commands),
                         lambda e: shard_of(e.patient, shards))
        keyed = op.merge("care_items", keyed, cmds)
    host = CareHost(care)
    results = op.stateful_batch("care", keyed, lambda resume: _CareStep(host, clock, resume, eof_flush))
    op.output("care_out", op.key_rm("care_unkey", results), sink)
