"""Where every runtime writes: stage-A outcomes (with acks) and stage-B results.

``OutcomeWriter`` stores raw readings, dead letters and quarantined readings,
then acknowledges the messages they came from: an MQTT message is acked only
after everything it carried is in InfluxDB (or the spool) and Redis.
``ResultWriter`` stores window aggregates and anomaly scores in InfluxDB and
alert events in the outreach stream.

A point InfluxDB refuses for good (a 4xx about the point, see
``sinks/influx.py``) goes to the dead-letter stream as step ``store``, reason
``store_rejected``, with the server's message as detail and the line as
payload; the rest of its batch is stored and acked as usual.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Protocol, Sequence

from vitalstream.model import Alert, DeadLetter, Reading, WindowAggregate
from vitalstream.operators.anomaly.stage import PatientScore
from vitalstream.operators.bp import category_rank
from vitalstream.operators.bp_monitor import BpResult
from vitalstream.operators.news2 import BAND_RANK, News2Result
from vitalstream.sinks.lineproto import (aggregate_line, bp_class_line, news2_line, reading_line,
                                         score_line, window_measurement)
from vitalstream.stream.ingest import Ack, Outcome, Quarantined

if TYPE_CHECKING:  # influxdb_client is a heavy import that runtimes without InfluxDB skip
    from vitalstream.sinks.influx import Rejected, WriteReport

READINGS = "vitals"
SCORES = "anomaly"
NEWS2 = "news2"  # NEWS2 results, counted with the scores
BP_CLASS = "bp_class"  # blood pressure classes by guideline, counted with the scores


class LineWriter(Protocol):
    # None (a writer that reports nothing) means every line was stored.
    def write_lines(self, lines: list[str]) -> WriteReport | None: ...


class Outreach(Protocol):
    def write_alerts(self, alerts: Iterable[Alert]) -> int: ...
    def write_dead_letters(self, letters: Iterable[DeadLetter]) -> None: ...
    def write_quarantine(self, items: Iterable[dict]) -> None: ...


@dataclass
class WriteStats:
    """Counters of one writer. ``readings``, ``aggregates`` and ``scores`` count only
    points the store confirmed (a spooled point counts when its replay is confirmed);
    the ``*_spooled`` counters count points put in the spool during an outage."""

    readings: int = 0
    readings_spooled: int = 0
    dead_letters: int = 0  # everything sent to the dead-letter stream, store refusals included
    store_rejected: int = 0  # points the store refused for good (dead letters of step "store")
    quarantined: int = 0
    acked: int = 0
    aggregates: int = 0
    aggregates_spooled: int = 0
    alerts: int = 0
    scores: int = 0
    scores_spooled: int = 0


def store_dead_letter(rej: Rejected, device: str | None = None, recv_ns: int = 0) -> DeadLetter:
    """The dead letter of a point the store refused: the line is the payload."""
    return DeadLetter("store", "store_rejected", f"HTTP {rej.status}: {rej.detail}", "",
                      rej.line.encode(), device, recv_ns)


def _counts(report: WriteReport | None, kinds: Sequence[str]) -> tuple[Counter, Counter]:
    """(confirmed, spooled) points by measurement; ``kinds[i]`` is the measurement of line i."""
    if report is None:
        return Counter(kinds), Counter()
    head = report.total - report.spooled  # the spooled points are the tail
    confirmed, spooled = Counter(kinds[:head]), Counter(kinds[head:])
    for rej in report.rejected:
        if rej.index is not None:
            confirmed[kinds[rej.index]] -= 1
    confirmed.update(report.replayed)
    return confirmed, spooled


class OutcomeWriter:
    def __init__(self, lines: LineWriter, outreach: Outreach,
                 ack: Callable[[object], None] | None = None) -> None:
        self.lines = lines
        self.outreach = outreach
        self.ack = ack
        self.stats = WriteStats()

    def _account(self, report: WriteReport | None, readings: list[Reading],
                 dead: list[DeadLetter]) -> list[DeadLetter]:
        """Count what the store did with ``readings``; the dead letters to send."""
        st = self.stats
        if report is None:
            st.readings += len(readings)
            return dead
        st.readings += report.stored + report.replayed.get(READINGS, 0)
        st.readings_spooled += report.spooled
        st.store_rejected += len(report.rejected)
        for rej in report.rejected:
            r = readings[rej.index] if rej.index is not None else None
            dead.append(store_dead_letter(rej, r.device if r else None, r.recv_ns if r else 0))
        return dead

    def write(self, outcomes: list[Outcome]) -> None:
        lines, readings, dead, quarantine, acks, alerts = [], [], [], [], [], []
        for o in outcomes:
            t = type(o)
            if t is Reading:
                lines.append(reading_line(o))
                readings.append(o)
            elif t is Ack:
                acks.append(o.token)
            elif t is DeadLetter:
                dead.append(o)
            elif t is Alert:  # the receiver's broker-connection alarm
                alerts.append(o)
            elif t is Quarantined:
                raw = o.raw
                quarantine.append({"device": raw.device, "patient": raw.patient,
                                   "signal": raw.signal, "value": raw.value, "unit": raw.unit,
                                   "event_ns": raw.event_ns, "quality": int(raw.quality),
                                   "source": raw.source, "recv_ns": o.recv_ns, "topic": o.topic,
                                   "user": raw.user, "gateway": raw.gateway})
        # Order matters: nothing is acked before both stores have it. A point the
        # store refused for good is "stored" as a dead letter instead.
        dead = self._account(self.lines.write_lines(lines), readings, dead)
        if dead:
            self.outreach.write_dead_letters(dead)
        if quarantine:
            self.outreach.write_quarantine(quarantine)
        if alerts:
            self.outreach.write_alerts(alerts)
        st = self.stats
        st.dead_letters += len(dead)
        st.quarantined += len(quarantine)
        if self.ack is not None:
            for token in acks:
                if token is not None:
                    self.ack(token)
        st.acked += len(acks)

    def flush(self) -> None:
        """Drain the line writer's spool now (at shutdown); dead-letter what it refuses."""
        flush = getattr(self.lines, "flush_spool", None)
        dead = self._account(flush(), [], []) if flush is not None else []
        if dead:
            self.outreach.write_dead_letters(dead)
            self.stats.dead_letters += len(dead)

    def finish(self) -> None:
        """At the end of a run, after ``flush``: let the outreach sink deliver what it holds."""
        close = getattr(self.outreach, "close", None)
        if close is not None:
            close()


class ResultWriter:
    def __init__(self, lines: LineWriter, outreach: Outreach, window_size_ns: int) -> None:
        self.lines = lines
        self.outreach = outreach
        self.measurement = window_measurement(window_size_ns)
        self.stats = WriteStats()
        self.on_alert: Callable[[Alert], None] | None = None

    def _account(self, report: WriteReport | None, kinds: list[str],
                 devices: list[str | None]) -> list[DeadLetter]:
        st = self.stats
        confirmed, spooled = _counts(report, kinds)
        st.aggregates += confirmed[self.measurement]
        st.scores += confirmed[SCORES] + confirmed[NEWS2] + confirmed[BP_CLASS]
        st.aggregates_spooled += spooled[self.measurement]
        st.scores_spooled += spooled[SCORES] + spooled[NEWS2] + spooled[BP_CLASS]
        if report is None:
            return []
        st.store_rejected += len(report.rejected)
        return [store_dead_letter(rej, devices[rej.index] if rej.index is not None else None)
                for rej in report.rejected]

    def _dead_letter(self, dead: list[DeadLetter]) -> None:
        if dead:
            self.outreach.write_dead_letters(dead)
            self.stats.dead_letters += len(dead)

    def write(self, results: Iterable[object]) -> None:
        lines, kinds, devices, alerts = [], [], [], []
        for x in results:
            t = type(x)
            if t is WindowAggregate:
                lines.append(aggregate_line(x, self.measurement))
                kinds.append(self.measurement)
                devices.append(x.device or None)
            elif t is Alert:
                alerts.append(x)
            elif t is PatientScore:
                e = x.score.explanation
                lines.append(score_line(x.patient, e.signal, x.score.score, x.score.event_ns,
                                        e.expected_low, e.expected_high, e.observed))
                kinds.append(SCORES)
                devices.append(None)
            elif t is News2Result:
                n = x.news2
                lines.append(news2_line(x.patient, x.event_ns, n.score, BAND_RANK[n.band],
                                        n.complete, n.parameter_scores))
                kinds.append(NEWS2)
                devices.append(None)
            elif t is BpResult and x.bp is not None:  # a retraction (None) has no class to store
                b = x.bp
                lines.append(bp_class_line(x.patient, x.event_ns, b.guideline, b.category,
                                           category_rank(b.guideline, b.category), b.sbp_mean,
                                           b.dbp_mean, b.n_readings))
                kinds.append(BP_CLASS)
                devices.append(None)
        self._dead_letter(self._account(self.lines.write_lines(lines), kinds, devices))
        if alerts:
            self.outreach.write_alerts(alerts)
            self.stats.alerts += len(alerts)
            if self.on_alert is not None:
                for a in alerts:
                    self.on_alert(a)

    def flush(self) -> None:
        """Drain the line writer's spool now (at shutdown); dead-letter what it refuses."""
        flush = getattr(self.lines, "flush_spool", None)
        if flush is not None:
            self._dead_letter(self._account(flush(), [], []))

    def finish(self) -> None:
        """At the end of a run, after ``flush``: let the outreach sink deliver what it holds."""
        close = getattr(self.outreach, "close", None)
        if close is not None:
            close()
