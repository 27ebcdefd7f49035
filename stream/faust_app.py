"""The same operators over Kafka, with faust-streaming, for sites that run Kafka.

Topics:

- ``vitalstream.mqtt``: what an MQTT->Kafka bridge (e.g. a Kafka Connect MQTT
  source) writes: key = MQTT topic (``vitalstream/<device>/<codec>``), value =
  the raw payload, record timestamp = receive time.
- ``vitalstream.readings``: internal repartition topic, key = shard
  (``crc32(patient) % shards``), value = the ``Reading`` as JSON (not pickle:
  a consumer must never unpickle what a producer wrote).

Agent ``ingest`` runs stage A (the engine-free ``Ingest``) and writes raw readings
and dead letters before yielding, so faust commits the Kafka offset only after
the data is stored (at least once; stage A dedups redeliveries). Agent
``patients`` hosts one ``ShardHost`` per shard it owns and writes aggregates,
scores and alerts; a 1 s timer closes the windows of silent patients.

Known limits: per-patient state is in memory (no faust table changelog yet),
so a rebalance or restart starts the moved shards' windows afresh.
"""

from __future__ import annotations

from typing import Callable

import faust

from vitalstream.clock import Clock, SystemClock
from vitalstream.model import Message, Quality, Reading
from vitalstream.operators.shard import ShardHost, shard_of
from vitalstream.signals import Signal
from vitalstream.stream import assembly
from vitalstream.stream.settings import Settings


def reading_to_json(r: Reading) -> list:
    return [r.patient, r.device, r.signal.value, r.value, r.unit, r.event_ns, r.recv_ns, r.source,
            int(r.quality)]


def reading_from_json(v: list) -> Reading:
    return Reading(v[0], v[1], Signal(v[2]), float(v[3]), v[4], int(v[5]), int(v[6]), v[7],
                   Quality(v[8]))


class FaustRuntime:
    def __init__(self, settings: Settings, *, broker: str = "kafka://localhost:9092",
                 outcome_writer: object, result_writer: object, clock: Clock | None = None,
                 app_id: str = "vitalstream") -> None:
        self.ingest = assembly.ingest(settings)
        self.host_cfg = assembly.patient_host(settings)
        self.clock = clock or SystemClock()
        self.shards = settings.pipeline.shards
        self.hosts: dict[str, ShardHost] = {}
        self.outcome_writer = outcome_writer
        self.result_writer = result_writer
        self.app = faust.App(app_id, broker=broker, store="memory://", topic_partitions=8)
        self.mqtt_topic = self.app.topic("vitalstream.mqtt", key_type=bytes, value_type=bytes,
                                         key_serializer="raw", value_serializer="raw")
        self.readings_topic = self.app.topic("vitalstream.readings", key_type=str,
                                             key_serializer="raw", value_serializer="json")
        self.forward: Callable = self._forward
        self.ingest_agent = self.app.agent(self.mqtt_topic, name="ingest")(self._ingest_agent)
        self.patients_agent = self.app.agent(self.readings_topic, name="patients")(self._patients_agent)
        self.app.timer(1.0)(self._tick)

    async def _forward(self, shard: str, reading: Reading) -> None:
        await self.readings_topic.send(key=shard, value=reading_to_json(reading))

    def handle_message(self, msg: Message) -> list[Reading]:
        """Stage A for one message: store its outcomes, return its readings."""
        out: list = []
        self.ingest.process(msg, out)
        self.outcome_writer.write(out)
        return [o for o in out if type(o) is Reading]

    def handle_readings(self, shard: str, readings: list[Reading]) -> None:
        host = self.hosts.get(shard)
        if host is None:
            host = self.hosts[shard] = self.host_cfg.build(key=shard)
        self.result_writer.write(host.on_batch(readings)[0])

    async def _ingest_agent(self, stream):
        async for event in stream.events():
            topic = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            recv_ns = round(event.message.timestamp * 1e9)
            for r in self.handle_message(Message(topic, event.value, recv_ns)):
                await self.forward(shard_of(r.patient, self.shards), r)
            yield None

    async def _patients_agent(self, stream):
        async for event in stream.events():
            key = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            self.handle_readings(key, [reading_from_json(event.value)])
            yield None

    async def _tick(self) -> None:
        now = self.clock.now_ns()
        for host in self.hosts.values():
            self.result_writer.write(host.on_notify(now)[0])

    def close_all(self) -> None:
        """End of a bounded input: flush every patient's buffers and windows."""
        for host in self.hosts.values():
            self.result_writer.write(host.on_eof()[0])
