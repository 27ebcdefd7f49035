"""Assembles a running pipeline from Settings: receivers, writers, dataflow, metrics.

``Pipeline.run()`` blocks until the input ends (``idle_stop_s`` of silence, for
bounded runs and tests) or SIGTERM/SIGINT, then flushes the sinks. On a signal,
open windows are *not* force-closed (they would be written half-full); with a
bounded run they are, since no more data will come.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from bytewax.run import cli_main
from bytewax.testing import run_main

from vitalstream.connectors.mqtt import MqttConfig, MqttReceiver
from vitalstream.model import Alert
from vitalstream.operators.dedup import LockedDedup
from vitalstream.operators.liveness import LinkWatch
from vitalstream.operators.shard import ShardHost
from vitalstream.stream import assembly
from vitalstream.stream.settings import Settings
from vitalstream.sinks.influx import InfluxWriter
from vitalstream.sinks.metrics import Metrics
from vitalstream.sinks.redis_streams import RedisOutreach
from vitalstream.stream.bytewax_flow import ReceiverSource, WriterSink, build_flow
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.store import OutcomeWriter, ResultWriter

log = logging.getLogger(__name__)


class _StoppableReceiver:
    """Wraps a receiver so a stop request or a long silence ends the input."""

    def __init__(self, inner: MqttReceiver, stop: threading.Event, link=None) -> None:
        self.inner = inner
        self.stop_event = stop
        self._last = time.monotonic()
        self.link = link  # LinkLogic: this receiver reports the broker connection's alarm

    def start(self) -> None:
        self.inner.start()

    def drain(self, max_items: int):
        if self.stop_event.is_set():
            raise StopIteration
        batch = self.inner.drain(max_items)
        if batch:
            self._last = time.monotonic()
        if self.link is not None:
            # its alarm travels with the messages (ingest passes it to the store's sink)
            return self.link.observe(self.inner.connected, time.time_ns()) + batch
        return batch

    def idle_for_s(self) -> float:
        return time.monotonic() - self._last

    def stop(self) -> None:
        self.inner.stop()


@dataclass
class Live:
    """What the demo display and the metrics endpoint read."""

    receivers: list[MqttReceiver] = field(default_factory=list)
    ingests: list[Ingest] = field(default_factory=list)
    outcome_writers: list[OutcomeWriter] = field(default_factory=list)
    result_writers: list[ResultWriter] = field(default_factory=list)
    hosts: list[ShardHost] = field(default_factory=list)
    influx: list[InfluxWriter] = field(default_factory=list)
    care_writers: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def totals(self) -> dict[str, int]:
        with self.lock:
            outreach = [w.outreach for w in (*self.outcome_writers, *self.result_writers)]
            late_w = sum(h.late_counts()[0] for h in self.hosts)
            late_r = sum(h.late_counts()[1] for h in self.hosts)
            return {
                "messages": sum(r.received for r in self.receivers),
                "acked": sum(r.acked for r in self.receivers),
                "readings": sum(w.stats.readings for w in self.outcome_writers),
                "readings_spooled": sum(w.stats.readings_spooled for w in self.outcome_writers),
                "store_rejected": sum(w.stats.store_rejected
                                      for w in (*self.outcome_writers, *self.result_writers)),
                "dead_letters": sum(w.stats.dead_letters for w in self.outcome_writers),
                "quarantined": sum(w.stats.quarantined for w in self.outcome_writers),
                "duplicates": sum(i.stats.duplicates for i in self.ingests),
                "rate_limited": sum(i.stats.rate_limited for i in self.ingests),
                "aggregates": sum(w.stats.aggregates for w in self.result_writers),
                "alerts": sum(w.stats.alerts for w in self.result_writers),
                "open_windows": sum(h.open_windows for h in self.hosts),
                "patients": sum(len(h.patients) for h in self.hosts),
                "late_window": late_w,
                "late_rules": late_r,
                "influx_spooled_batches": sum(i.batches_spooled for i in self.influx),
                "influx_errors": sum(i.errors for i in self.influx),
                "redis_outage": int(any(getattr(o, "in_outage", False) for o in outreach)),
                "redis_buffered": sum(getattr(o, "buffered", 0) for o in outreach),
                "redis_dropped": sum(getattr(o, "dropped", 0) for o in outreach),
                "tag_changes": sum(w.counts.get("TagChange", 0) for w in self.care_writers),
                "nudges": sum(w.counts.get("Nudge", 0) for w in self.care_writers),
                "nudges_suppressed": sum(w.counts.get("NudgeSuppressed", 0)
                                         for w in self.care_writers),
                "care_held": sum(len(w.held) for w in self.care_writers),
            }


_METRICS = {
    "messages": ("vitalstream_messages_received_total", "counter", "MQTT messages received"),
    "acked": ("vitalstream_messages_acked_total", "counter", "MQTT messages acknowledged after storage"),
    "readings": ("vitalstream_readings_stored_total", "counter",
                 "valid readings the store confirmed"),
    "readings_spooled": ("vitalstream_readings_spooled_total", "counter",
                         "readings put in the outage spool (stored counts them once replayed)"),
    "store_rejected": ("vitalstream_store_rejected_total", "counter",
                       "points the store refused for good (dead-lettered)"),
    "dead_letters": ("vitalstream_dead_letters_total", "counter", "inputs sent to the dead-letter stream"),
    "quarantined": ("vitalstream_quarantined_total", "counter", "readings of unmapped devices"),
    "duplicates": ("vitalstream_duplicates_total", "counter", "duplicate readings dropped"),
    "rate_limited": ("vitalstream_rate_limited_total", "counter",
                     "readings over their device's rate limit (dead-lettered, one per message)"),
    "aggregates": ("vitalstream_aggregates_total", "counter", "window aggregates written"),
    "alerts": ("vitalstream_alert_events_total", "counter", "alert events emitted"),
    "open_windows": ("vitalstream_open_windows", "gauge", "event-time windows open"),
    "patients": ("vitalstream_patients", "gauge", "patients with state"),
    "late_window": ("vitalstream_late_for_window_total", "counter", "readings too late for their window"),
    "late_rules": ("vitalstream_late_for_rules_total", "counter", "readings too late for rule evaluation"),
    "influx_spooled_batches": ("vitalstream_influx_spooled_batches_total", "counter", "batches spooled on outage"),
    "influx_errors": ("vitalstream_influx_errors_total", "counter", "failed InfluxDB write attempts"),
    "redis_outage": ("vitalstream_redis_outage", "gauge", "1 while Redis writes fail (outreach degraded)"),
    "redis_buffered": ("vitalstream_redis_buffered", "gauge", "alerts and dead letters held for Redis"),
    "redis_dropped": ("vitalstream_redis_dropped_total", "counter", "items dropped: Redis buffer full"),
    "tag_changes": ("vitalstream_profile_tag_changes_total", "counter", "profile tags set, updated or ended"),
    "nudges": ("vitalstream_nudges_sent_total", "counter", "nudges sent (reminders and care-team tasks)"),
    "nudges_suppressed": ("vitalstream_nudges_suppressed_total", "counter",
                          "nudges not sent (caps, quiet hours expired, holdout, already done...)"),
    "care_held": ("vitalstream_care_held", "gauge", "care outputs held for Redis (outage)"),
}


class Pipeline:
    def __init__(self, settings: Settings, *, idle_stop_s: float | None = None,
                 on_alert: Callable[[Alert], None] | None = None,
                 patient_resolver=None, process_id: int | None = None,
                 addresses: list[str] | None = None) -> None:
        self.settings = settings
        self.process_id = process_id
        self.addresses = addresses
        self.idle_stop_s = idle_stop_s
        self.on_alert = on_alert
        self.live = Live()
        self.stop_event = threading.Event()
        self._stoppables: list[_StoppableReceiver] = []
        self.patient_resolver = (patient_resolver if patient_resolver is not None
                                 else assembly.resolver(settings))
        self.host_cfg = assembly.patient_host(settings, caught_up=self._caught_up)
        # One dedup for every worker thread: with -w N a shared subscription spreads
        # a device's re-sends over the workers.
        self._dedup = LockedDedup(assembly.dedup(settings).build())
        self.metrics = Metrics()
        for key, (name, kind, text) in _METRICS.items():
            self.metrics.describe(name, kind, text)
        self.metrics.register(lambda: [(_METRICS[k][0], {}, float(v))
                                       for k, v in self.live.totals().items()])

    def _receiver(self, index: int, count: int) -> _StoppableReceiver:
        cfg: MqttConfig = self.settings.mqtt
        if count > 1 and not cfg.shared_group:
            from dataclasses import replace
            cfg = replace(cfg, shared_group=cfg.client_id)
        r = MqttReceiver(cfg, client_suffix=f"-{index}" if count > 1 else "", polled=True)
        with self.live.lock:
            self.live.receivers.append(r)
        after = self.settings.pipeline.broker_lost_after_s
        # one report for the deployment: worker indexes are global, so worker 0 is in process 0
        link = LinkWatch(after).build() if index == 0 and after is not None else None
        stoppable = _StoppableReceiver(r, self.stop_event, link)
        with self.live.lock:
            self._stoppables.append(stoppable)
        return stoppable

    def _influx(self, index: int, role: str) -> InfluxWriter:
        from dataclasses import replace
        cfg = self.settings.influx
        w = InfluxWriter(replace(cfg, spool_dir=f"{cfg.spool_dir}/{role}-{index}"))
        with self.live.lock:
            self.live.influx.append(w)
        return w

    def _outreach(self, index: int, role: str) -> RedisOutreach:
        """One writer per role and worker, each with its own spool (as ``_influx``). Result
        writer 0 says when an outage ended: one pipeline alert per deployment."""
        from dataclasses import replace
        cfg = self.settings.redis
        if cfg.spool_dir is not None:
            cfg = replace(cfg, spool_dir=f"{cfg.spool_dir}/redis-{role}-{index}")
        o = RedisOutreach(cfg, announce_outage=(role == "results" and index == 0))
        o.on_outage_alert = self.on_alert
        return o

    def _outcome_writer(self, index: int) -> OutcomeWriter:
        w = OutcomeWriter(self._influx(index, "raw"), self._outreach(index, "raw"),
                          ack=lambda token: token())
        with self.live.lock:
            self.live.outcome_writers.append(w)
        return w

    def _result_writer(self, index: int) -> ResultWriter:
        w = ResultWriter(self._influx(index, "results"), self._outreach(index, "results"),
                         assembly.window_size_ns(self.settings))
        w.on_alert = self.on_alert
        with self.live.lock:
            self.live.result_writers.append(w)
        return w

    def _ingest(self) -> Ingest:
        i = assembly.ingest(self.settings, patient_of=self.patient_resolver,
                            shared_dedup=self._dedup)
        with self.live.lock:
            self.live.ingests.append(i)
        return i

    def _on_host(self, host: ShardHost) -> None:
        with self.live.lock:
            self.live.hosts.append(host)

    def _care_writer(self, index: int):
        from vitalstream.sinks.profiles import ProfileStore
        from vitalstream.sinks.redis_streams import connect
        from vitalstream.stream.care import CareWriter

        w = CareWriter(ProfileStore(connect(self.settings.redis.url)), self._influx(index, "care"))
        with self.live.lock:
            self.live.care_writers.append(w)
        return w

    def _care(self, flow, keyed) -> None:
        from vitalstream.clock import SystemClock
        from vitalstream.sinks.profiles import ProfileStore
        from vitalstream.sinks.redis_streams import connect
        from vitalstream.stream.care_flow import CommandsSource, add_care

        url = self.settings.redis.url
        add_care(flow, keyed, assembly.care_flow(self.settings), WriterSink(self._care_writer),
                 SystemClock(), CommandsSource(lambda: ProfileStore(connect(url)),
                                               self.settings.care.commands_poll_s, self._input_ended),
                 self._flush_at_eof, self.settings.pipeline.shards)

    def _input_ended(self) -> bool:
        """Has the readings' input ended (a stop request, or a bounded run's idle stop)?"""
        if self.stop_event.is_set():
            return True
        if self.idle_stop_s is None:
            return False
        with self.live.lock:
            receivers = list(self._stoppables)
        return bool(receivers) and all(r.idle_for_s() >= self.idle_stop_s for r in receivers)

    def build(self):
        flow, _ = build_flow(ReceiverSource(self._receiver, self.idle_stop_s),
                             self._ingest, self.host_cfg, WriterSink(self._outcome_writer),
                             WriterSink(self._result_writer), shards=self.settings.pipeline.shards,
                             on_host=self._on_host,
                             eof_flush=self._flush_at_eof,
                             durable=self.settings.pipeline.state_dir is not None,
                             extend=self._care if self.settings.care.enabled else None)
        return flow

    def _recovery(self) -> dict:
        p = self.settings.pipeline
        if p.state_dir is None:
            return {}
        from datetime import timedelta
        from pathlib import Path

        from bytewax.recovery import RecoveryConfig, init_db_dir

        db = Path(p.state_dir)
        if not any(db.glob("part-*.sqlite3")):
            db.mkdir(parents=True, exist_ok=True)
            init_db_dir(db, 1)
        return {"epoch_interval": timedelta(seconds=p.snapshot_interval_s),
                "recovery_config": RecoveryConfig(db)}

    def _flush_at_eof(self) -> bool:
        """Close every open window when the input ends? A bounded input (idle stop): yes.
        A stop request: only without durable state, since the next start resumes them;
        such windows are written flagged partial."""
        return not self.stop_event.is_set() or self.settings.pipeline.state_dir is None

    def _caught_up(self) -> bool:
        """Nothing waits in this process's receive queues (see FrontierClock)."""
        return all(r.backlog == 0 for r in self.live.receivers)

    def request_stop(self, *_args) -> None:
        self.stop_event.set()

    def run(self, *, install_signals: bool = True) -> dict[str, int]:
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        port = self.settings.pipeline.metrics_port
        if port is not None:
            try:
                self.metrics.serve(port)
            except OSError as exc:
                log.warning("metrics endpoint not started on port %s: %s", port, exc)
        flow = self.build()
        alarms = None
        # one service per deployment: its state is per patient, so process 0 runs it
        if self.settings.pipeline.lifecycle and self.process_id in (None, 0):
            from vitalstream.stream.alarms import AlarmThread

            burden_lines = self._influx(0, "alarm-burden")
            alarms = AlarmThread(self.settings.redis.url, self.settings.redis.alerts_stream,
                                 assembly.lifecycle(self.settings), lines=burden_lines,
                                 monitored=lambda: self.live.totals()["patients"]).start()
        # Long-lived state (patients, baselines) need not be scanned by every young-
        # generation collection; at thousands of readings/s the default threshold
        # (700 allocations) spends ~9 % of the time in the collector.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        p = self.settings.pipeline
        kw = self._recovery()
        try:
            if p.workers <= 1 and self.addresses is None:
                run_main(flow, **kw)
            else:
                cli_main(flow, workers_per_process=p.workers, process_id=self.process_id,
                         addresses=self.addresses, **kw)
        finally:
            # Drain the spools; points the store refuses then still become dead letters.
            writers = (*self.live.outcome_writers, *self.live.result_writers)
            for writer in writers:
                writer.flush()
            for writer in writers:  # alerts held through a Redis outage get a last chance
                writer.finish()
            if alarms is not None:
                alarms.stop()
                burden_lines.flush_spool()
                burden_lines.close()
            self.metrics.close()
        return self.live.totals()
