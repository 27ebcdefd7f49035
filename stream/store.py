"""Where every runtime writes: stage-A outcomes (with acks) and stage-B results.

``OutcomeWriter`` stores raw readings, dead letters and quarantined readings,
then acknowledges the messages they came from: an MQTT message is acked only
after everything it carried is in InfluxDB (or the spool) and Redis.
``ResultWriter`` stores window aggregates and anomaly scores in InfluxDB and
alert events in the outreach stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from vitalstream.model import Alert, DeadLetter, Reading, WindowAggregate
from vitalstream.operators.anomaly.stage import PatientScore
from vitalstream.sinks.lineproto import aggregate_line, reading_line, score_line, window_measurement
from vitalstream.stream.ingest import Ack, Outcome, Quarantined


class LineWriter(Protocol):
    def write_lines(self, lines: list[str]) -> None: ...


class Outreach(Protocol):
    def write_alerts(self, alerts: Iterable[Alert]) -> int: ...
    def write_dead_letters(self, letters: Iterable[DeadLetter]) -> None: ...
    def write_quarantine(self, items: Iterable[dict]) -> None: ...


@dataclass
class WriteStats:
    readings: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    acked: int = 0
    aggregates: int = 0
    alerts: int = 0
    scores: int = 0


class OutcomeWriter:
    def __init__(self, lines: LineWriter, outreach: Outreach,
                 ack: Callable[[object], None] | None = None) -> None:
        self.lines = lines
        self.outreach = outreach
        self.ack = ack
        self.stats = WriteStats()

    def write(self, outcomes: list[Outcome]) -> None:
        lines, dead, quarantine, acks = [], [], [], []
        for o in outcomes:
            t = type(o)
            if t is Reading:
                lines.append(reading_line(o))
            elif t is Ack:
                acks.append(o.token)
            elif t is DeadLetter:
                dead.append(o)
            elif t is Quarantined:
                raw = o.raw
                quarantine.append({"device": raw.device, "patient": raw.patient,
                                   "signal": raw.signal, "value": raw.value, "unit": raw.unit,
                                   "event_ns": raw.event_ns, "quality": int(raw.quality),
                                   "source": raw.source, "recv_ns": o.recv_ns, "topic": o.topic,
                                   "user": raw.user, "gateway": raw.gateway})
        # Order matters: nothing is acked before both stores have it.
        self.lines.write_lines(lines)
        if dead:
            self.outreach.write_dead_letters(dead)
        if quarantine:
            self.outreach.write_quarantine(quarantine)
        st = self.stats
        st.readings += len(lines)
        st.dead_letters += len(dead)
        st.quarantined += len(quarantine)
        if self.ack is not None:
            for token in acks:
                if token is not None:
                    self.ack(token)
        st.acked += len(acks)


class ResultWriter:
    def __init__(self, lines: LineWriter, outreach: Outreach, window_size_ns: int) -> None:
        self.lines = lines
        self.outreach = outreach
        self.measurement = window_measurement(window_size_ns)
        self.stats = WriteStats()
        self.on_alert: Callable[[Alert], None] | None = None

    def write(self, results: Iterable[object]) -> None:
        lines, alerts = [], []
        for x in results:
            t = type(x)
            if t is WindowAggregate:
                lines.append(aggregate_line(x, self.measurement))
                self.stats.aggregates += 1
            elif t is Alert:
                alerts.append(x)
            elif t is PatientScore:
                e = x.score.explanation
                lines.append(score_line(x.patient, e.signal, x.score.score, x.score.event_ns,
                                        e.expected_low, e.expected_high, e.observed))
                self.stats.scores += 1
        self.lines.write_lines(lines)
        if alerts:
            self.outreach.write_alerts(alerts)
            self.stats.alerts += len(alerts)
            if self.on_alert is not None:
                for a in alerts:
                    self.on_alert(a)
