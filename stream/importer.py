"""``vitalstream import FILE``: Open mHealth data points back-filled into the stores.

Imported readings are history: flagged HISTORICAL, they are stored raw and
aggregated into windows like live data, but no rule alerts on them and no
anomaly detector learns from them. Items that fail validation go to the
dead-letter stream with their reason.
"""

from __future__ import annotations

from pathlib import Path

from vitalstream.connectors.omh import import_file as read_omh
from vitalstream.model import DeadLetter, Reading
from vitalstream.sinks.influx import InfluxWriter
from vitalstream.sinks.redis_streams import RedisOutreach
from vitalstream.stream import assembly
from vitalstream.stream.settings import Settings
from vitalstream.stream.store import OutcomeWriter, ResultWriter


def import_file(path: Path, settings: Settings) -> dict[str, int]:
    items = list(read_omh(path))
    dedup = assembly.dedup(settings).build()
    readings = sorted((x for x in items if isinstance(x, Reading)), key=lambda r: r.event_ns)
    readings = [r for r in readings if not dedup.seen_before(r.dedup_key())]
    dead = [x for x in items if isinstance(x, DeadLetter)]
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
    return {"readings": len(readings), "dead_letters": len(dead),
            "aggregates": writer.stats.aggregates, "skipped_other": len(items) - len(readings) - len(dead)}
