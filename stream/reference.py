"""The reference runner: the same operators in a plain loop, the oracle tests compare against.

Wall time is simulated: before each message the fake wall clock is set to the
message's receive time, then timers due by then fire, as they would in a live
runtime. At the end every buffer is flushed and every window closed (EOF).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from vitalstream.model import Alert, DeadLetter, Heard, Message, Reading, WindowAggregate
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.shard import PatientHost
from vitalstream.stream.ingest import Ack, Ingest, Quarantined


@dataclass
class RunResult:
    readings: list[Reading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    aggregates: list[WindowAggregate] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    scores: list[object] = field(default_factory=list)  # PatientScore, anomaly_score readings
    acks: int = 0

    def add_results(self, items: Iterable[object]) -> None:
        for x in items:
            if type(x) is WindowAggregate:
                self.aggregates.append(x)
            elif type(x) is Alert:
                self.alerts.append(x)
            else:
                self.scores.append(x)


def run_reference(messages: Iterable[Message], flow: PatientFlow | PatientHost,
                  make_ingest: Callable[[], Ingest] = Ingest, *,
                  start_wall_ns: int | None = None) -> RunResult:
    messages = list(messages)
    wall = start_wall_ns if start_wall_ns is not None else (messages[0].recv_ns if messages else 0)
    ingest = make_ingest()
    host = (flow if isinstance(flow, PatientHost) else PatientHost(flow)).build()
    res = RunResult()
    for msg in messages:
        wall = max(wall, msg.recv_ns)
        due = host.notify_at()
        if due is not None and due <= wall:
            res.add_results(host.on_notify(wall)[0])
        out: list = []
        ingest.process(msg, out)
        batch = []
        for o in out:
            t = type(o)
            if t is Reading:
                res.readings.append(o)
                batch.append(o)
            elif t is DeadLetter:
                res.dead_letters.append(o)
            elif t is Quarantined:
                res.quarantined.append(o)
            elif t is Ack:
                res.acks += 1
            elif t is Heard:
                batch.append(o)
        res.add_results(host.on_batch(batch)[0])
    res.add_results(host.on_eof()[0])
    return res
