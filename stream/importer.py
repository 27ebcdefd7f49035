"""``vitalstream import FILE``: Open mHealth data points back-filled into the stores.

Imported readings are history: flagged HISTORICAL, they are stored raw and
aggregated into windows like live data, but no rule alerts on them and no
anomaly detector learns from them. Items that fail validation go to the
dead-letter stream with their reason.
"""

from __future__ import annotations

from pathlib import Path

from vitalstream.clock import Clock, SystemClock
from vitalstream.connectors.omh_file import import_file as read_omh
from vitalstream.errors import VitalstreamError
from vitalstream.ids import check_identifier
from vitalstream.model import DeadLetter, RawReading, Reading
from vitalstream.operators.normalise import Normaliser
from vitalstream.sinks.influx import InfluxWriter
from vitalstream.sinks.redis_streams import RedisOutreach
from vitalstream.stream import assembly
from vitalstream.stream.settings import Settings
from vitalstream.stream.store import OutcomeWriter, ResultWriter


def import_file(path: Path, settings: Settings, clock: Clock | None = None) -> dict[str, int]:
    clock = clock or SystemClock()
    items = list(read_omh(path, clock=clock))
    # A back-fill is old by design: no clock-skew correction; the rest as on the live path.
    normaliser, resolve, now = Normaliser(max_clock_skew_ns=None), assembly.resolver(settings), clock.now_ns()
    readings: list[Reading] = []
    dead = [x for x in items if isinstance(x, DeadLetter)]
    for x in items:
        if not isinstance(x, RawReading):
            continue
        try:
            check_identifier("device", x.device)
            r = normaliser.normalise(x, now, resolve)
            if r is not None:
                check_identifier("patient", r.patient, r.device)
                readings.append(r)
        except VitalstreamError as e:
            dead.append(DeadLetter(e.step, e.reason, e.detail, f"file:{path}", b"", e.device, now))
    dedup = assembly.dedup(settings).build()
    readings.sort(key=lambda r: r.event_ns)
    readings = [r for r in readings if not dedup.seen_before(r.dedup_key())]
    lines = InfluxWriter(settings.influx)
    outreach = RedisOutreach(settings.redis)
    try:
        OutcomeWriter(lines, outreach).write([*readings, *dead])
        host = assembly.patient_host(settings, flow=assembly.history_flow(settings)).build()
        results = host.on_batch(readings)[0] + host.on_eof()[0]
        writer = ResultWriter(lines, outreach, assembly.window_size_ns(settings))
        writer.write(results)
    finally:
        lines.close()
        outreach.close()
    raw = sum(1 for x in items if isinstance(x, RawReading))
    return {"readings": len(readings), "dead_letters": len(dead),
            "aggregates": writer.stats.aggregates,
            "skipped_other": len(items) - raw - sum(1 for x in items if isinstance(x, DeadLetter))}
