"""The default runtime: the operators hosted in a bytewax dataflow.

::

    mqtt (DynamicSource: one client per worker, shared subscription if >1)
      -> ingest (flat_map_batch: decode, normalise, plausibility, dedup)
      -> store (DynamicSink: raw readings + dead letters, then MQTT acks)
      -> readings -> key by shard -> patients (stateful_batch: ShardHost)
      -> results (DynamicSink: aggregates, scores -> InfluxDB; alerts -> Redis)

Stage A never leaves the worker that received the message, which is what lets
its sink acknowledge on the same MQTT connection. Stage B is keyed by shard
(``crc32(patient) % shards``), so a patient's state lives on one worker.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Optional, Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from vitalstream.model import Heard, Message, Reading
from vitalstream.clock import Clock, SystemClock
from vitalstream.operators.shard import HostState, PatientHost, ShardHost, shard_key
from vitalstream.stream.ingest import Ingest

Receiver = Callable[[int, int], "ReceiverLike"]


class ReceiverLike(Protocol):
    """What a source partition needs from a transport (MqttReceiver, ListReceiver)."""

    def start(self) -> None: ...
    def drain(self, max_items: int) -> list[Message]: ...
    def stop(self) -> None: ...
    def idle_for_s(self) -> float: ...


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


class _ReceiverPartition(StatelessSourcePartition[Message]):
    def __init__(self, receiver, idle_stop_s: float | None, poll_s: float) -> None:
        self.receiver = receiver
        self.idle_stop_s = idle_stop_s
        self.poll = timedelta(seconds=poll_s)
        self._awake: Optional[datetime] = None
        receiver.start()

    def next_batch(self) -> list[Message]:
        batch = self.receiver.drain(10_000)
        if batch:
            self._awake = None
            return batch
        if self.idle_stop_s is not None and self.receiver.idle_for_s() >= self.idle_stop_s:
            raise StopIteration
        # Nothing queued: let bytewax sleep a little instead of spinning a core.
        self._awake = datetime.now(timezone.utc) + self.poll
        return []

    def next_awake(self) -> Optional[datetime]:
        return self._awake

    def close(self) -> None:
        self.receiver.stop()


class ReceiverSource(DynamicSource[Message]):
    """One receiver per worker, built by ``factory(worker_index, worker_count)``."""

    def __init__(self, factory: Receiver, idle_stop_s: float | None = None,
                 poll_s: float = 0.005) -> None:
        self.factory = factory
        self.idle_stop_s = idle_stop_s
        self.poll_s = poll_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ReceiverPartition:
        return _ReceiverPartition(self.factory(worker_index, worker_count), self.idle_stop_s,
                                  self.poll_s)


class _WriterPartition(StatelessSinkPartition):
    def __init__(self, writer) -> None:
        self.writer = writer

    def write_batch(self, items: list) -> None:
        self.writer.write(items)

    def close(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()


class WriterSink(DynamicSink):
    """A sink partition per worker around ``factory(worker_index)`` (an object with ``write``)."""

    def __init__(self, factory: Callable[[int], object]) -> None:
        self.factory = factory

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _WriterPartition:
        return _WriterPartition(self.factory(worker_index))


class _ShardLogic(StatefulBatchLogic[Reading, object, HostState]):
    """bytewax's side of the operator contract: the host gets the system time here."""

    def __init__(self, host: ShardHost, clock: Clock, on_host: Callable | None,
                 eof_flush: Callable[[], bool], durable: bool = True) -> None:
        self.host = host
        self.clock = clock
        self.eof_flush = eof_flush
        self.durable = durable
        if on_host is not None:
            on_host(host)

    def on_batch(self, values: list[Reading]):
        return self.host.on_batch(values)[0], StatefulBatchLogic.RETAIN

    def on_notify(self):
        return self.host.on_notify(self.clock.now_ns())[0], StatefulBatchLogic.RETAIN

    def on_eof(self):
        # A bounded input has ended: close everything. A stop request does not
        # force windows shut; they would be written half-full.
        out = self.host.on_eof()[0] if self.eof_flush() else []
        return out, StatefulBatchLogic.RETAIN

    def notify_at(self) -> Optional[datetime]:
        self.host.saw_time(self.clock.now_ns())  # a fresh estimate after every activation
        due = self.host.notify_at()
        return None if due is None else _utc(due)

    def snapshot(self) -> HostState | None:
        # bytewax asks at every epoch even without recovery; with nowhere to keep it,
        # copying every patient's state would be work for nothing.
        return self.host.snapshot() if self.durable else None


class _PerThread:
    """One Ingest per worker thread: bytewax shares the mapper across threads."""

    def __init__(self, make: Callable[[], Ingest]) -> None:
        self._make = make
        self._local = threading.local()
        self.instances: list[Ingest] = []
        self._lock = threading.Lock()

    def __call__(self, msgs: list[Message]) -> list:
        ingest = getattr(self._local, "ingest", None)
        if ingest is None:
            ingest = self._local.ingest = self._make()
            with self._lock:
                self.instances.append(ingest)
        return ingest.process_batch(msgs)


def build_flow(source, make_ingest: Callable[[], Ingest], host: PatientHost,
               outcome_sink, result_sink, *, shards: int = 64, clock: Clock | None = None,
               on_host: Callable[[ShardHost], None] | None = None,
               eof_flush: Callable[[], bool] = lambda: True, durable: bool = True,
               flow_id: str = "vitalstream",
               extend: Callable[[Dataflow, object], None] | None = None) -> tuple[Dataflow, _PerThread]:
    """Assemble the dataflow; ``source``/``*_sink`` are bytewax Source/Sink objects.
    ``durable=False``: the run keeps no recovery state, so snapshots are not taken.
    ``extend(flow, keyed)`` adds steps over stage A's readings keyed by shard (the care
    stage: the same keys, so no second keying step per reading)."""
    clock = clock or SystemClock()
    flow = Dataflow(flow_id)
    msgs = op.input("mqtt", flow, source)
    ingest = _PerThread(make_ingest)
    outcomes = op.flat_map_batch("ingest", msgs, ingest)
    op.output("store", outcomes, outcome_sink)
    readings = op.filter("readings", outcomes, lambda o: type(o) is Reading or type(o) is Heard)
    keyed = op.key_on("shard", readings, lambda r: shard_key(r, shards))

    def builder(resume: HostState | None) -> _ShardLogic:
        return _ShardLogic(host.build(resume), clock, on_host, eof_flush, durable)

    results = op.stateful_batch("patients", keyed, builder)
    op.output("results", op.key_rm("unkey", results), result_sink)
    if extend is not None:
        extend(flow, keyed)
    return flow, ingest


class ListReceiver:
    """A receiver over a fixed list of messages (replays, tests): EOF when drained."""

    def __init__(self, messages: Iterable[Message]) -> None:
        self._msgs = list(messages)
        self._pos = 0

    def start(self) -> None:
        pass

    def drain(self, max_items: int) -> list[Message]:
        batch = self._msgs[self._pos:self._pos + max_items]
        self._pos += len(batch)
        if not batch:
            raise StopIteration
        return batch

    def idle_for_s(self) -> float:
        return 0.0

    def stop(self) -> None:
        pass
