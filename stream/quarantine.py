"""Replay of quarantined readings once their device has been assigned to a patient.

The quarantine stream (``settings.redis.quarantine_stream``) holds one entry per
valid reading of a device that mapped to no patient, as JSON in the field
``reading`` (written by ``stream.store.OutcomeWriter``). ``replay_quarantine``:

1. takes a lock (``{stream}:replay-lock``, SET NX with a TTL) so two replays
   cannot write the same readings twice;
2. reads the whole stream and, with a fresh copy of the registry, picks the
   entries whose device (and user index) now maps to a patient *at the
   reading's event time*; the others stay quarantined, untouched;
3. drops exact repeats (same device, user, signal, event time: a QoS 1
   redelivery is quarantined twice because quarantine comes before dedup);
4. feeds the picked readings through the same stage A (normalise with the
   original receive time, so the clock-skew check decides as it did live)
   and stage B (windows, rules) as the live pipeline, via the reference
   runner, flagged ``Quality.HISTORICAL``: stored and aggregated, never
   alerted on (rules skip HISTORICAL) and not learnt by anomaly detectors
   (the replay runs without them: a detector that saw only back-filled data
   would score nonsense);
5. writes readings and aggregates to InfluxDB, then in one MULTI moves the
   replayed entries to ``{stream}:replayed`` (audit: original id, patient,
   reading) and XDELs them from the quarantine stream. A second replay finds
   nothing left to do.

A crash between the store write and step 5 leaves the entries quarantined;
the next replay writes them again with the same series and timestamps, which
InfluxDB overwrites in place (VictoriaMetrics would keep both).

Window aggregates are per (patient, device, signal), so the replayed device's
windows do not collide with live ones unless the same device had readings
both stored live and quarantined in one window (a retroactive assignment that
reaches into an already-mapped window); then the replay's aggregate, holding
only the replayed readings, overwrites the live one.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from vitalstream.connectors.registry import DeviceRegistry, RegistryResolver
from vitalstream.errors import DecodeError, VitalstreamError
from vitalstream.model import Message, Quality, RawReading
from vitalstream.operators.dedup import Dedup
from vitalstream.stream import assembly
from vitalstream.stream.ingest import Ack, Ingest, Quarantined
from vitalstream.stream.reference import RunResult, run_reference
from vitalstream.stream.settings import Settings
from vitalstream.stream.store import LineWriter, OutcomeWriter, Outreach, ResultWriter

REPLAY_CODEC = "quarantine"
REPLAY_TOPIC = f"vitalstream-replay/q/{REPLAY_CODEC}"
LOCK_TTL_MS = 15 * 60 * 1000


@dataclass
class ReplayStats:
    scanned: int = 0  # entries read from the quarantine stream
    mapped: int = 0  # entries whose device now maps to a patient
    repeats: int = 0  # exact repeats among them, dropped
    readings: int = 0  # readings stored
    aggregates: int = 0
    alerts: int = 0  # always 0 unless a rule ignores HISTORICAL
    dead_letters: int = 0
    still_quarantined: int = 0
    removed: int = 0  # entries deleted from the quarantine stream


def raw_from_entry(doc: dict) -> RawReading:
    """The RawReading a quarantine entry holds (``user``/``gateway`` when present)."""
    try:
        return RawReading(device=doc["device"], patient=doc.get("patient"), signal=doc["signal"],
                          value=float(doc["value"]), unit=doc.get("unit"),
                          event_ns=int(doc["event_ns"]), quality=Quality(int(doc.get("quality", 0))),
                          source=doc.get("source", "json"), user=doc.get("user"),
                          gateway=doc.get("gateway"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError("quarantine", doc.get("device") if isinstance(doc, dict) else None,
                          "bad_entry", repr(exc)) from None


def decode_replay(payload: bytes, topic_device: str, recv_ns: int) -> list:
    """Codec of replayed entries: the stored reading, flagged HISTORICAL."""
    raw = raw_from_entry(json.loads(payload))
    raw.quality |= Quality.HISTORICAL
    return [raw]


def read_entries(client: redis.Redis, stream: str, page: int = 1000) -> Iterator[tuple[bytes, dict]]:
    """(entry id, reading dict) of every entry of ``stream``, oldest first."""
    start = "-"
    while True:
        rows = client.xrange(stream, min=start, max="+", count=page)
        for entry_id, fields in rows:
            yield entry_id, json.loads(fields[b"reading"])
        if len(rows) < page:
            return
        start = "(" + rows[-1][0].decode()


def _writers(settings: Settings, lines: LineWriter | None,
             outreach: Outreach | None) -> tuple[OutcomeWriter, ResultWriter, list]:
    to_close: list = []
    if lines is None:
        from vitalstream.sinks.influx import InfluxWriter

        cfg = settings.influx
        lines = InfluxWriter(dataclasses.replace(cfg, spool_dir=f"{cfg.spool_dir}/replay"))
        to_close.append(lines)
    if outreach is None:
        from vitalstream.sinks.redis_streams import RedisOutreach

        outreach = RedisOutreach(settings.redis)
        to_close.append(outreach)
    return (OutcomeWriter(lines, outreach),
            ResultWriter(lines, outreach, assembly.window_size_ns(settings)), to_close)


def replay_messages(entries: list[tuple[bytes, dict]], settings: Settings,
                    resolver: RegistryResolver) -> RunResult:
    """Stage A + B over picked entries, exactly as the live pipeline would run them."""
    flow = assembly.history_flow(settings)
    msgs = sorted((Message(REPLAY_TOPIC, json.dumps(doc).encode(), int(doc["recv_ns"]))
                   for _, doc in entries), key=lambda m: m.recv_ns)

    def make_ingest() -> Ingest:
        return assembly.ingest(settings, patient_of=resolver, codecs={REPLAY_CODEC: decode_replay})

    return run_reference(msgs, flow, make_ingest)


def replay_quarantine(settings: Settings, registry: DeviceRegistry, *,
                      client: redis.Redis | None = None, lines: LineWriter | None = None,
                      outreach: Outreach | None = None) -> ReplayStats:
    """Replay every quarantined reading whose device now maps to a patient (see module doc)."""
    from vitalstream.sinks.redis_streams import connect

    r = client or registry.r or connect(settings.redis.url)
    stream = settings.redis.quarantine_stream
    lock, token = f"{stream}:replay-lock", uuid.uuid4().hex
    if not r.set(lock, token, nx=True, px=LOCK_TTL_MS):
        raise VitalstreamError("quarantine", None, "replay_running", f"{lock} is held")
    stats = ReplayStats()
    try:
        # trust_payload=False: only the registry may take a reading out of quarantine.
        resolver = RegistryResolver(registry, trust_payload=False, poll_s=float("inf"))
        picked: list[tuple[bytes, dict]] = []
        seen = Dedup(horizon_ns=2**62, store_keys=True).build()  # the whole quarantine
        repeat_ids: list[bytes] = []
        for entry_id, doc in read_entries(r, stream):
            stats.scanned += 1
            try:
                raw = raw_from_entry(doc)
            except DecodeError:
                stats.still_quarantined += 1
                continue
            if resolver(raw) is None:
                stats.still_quarantined += 1
                continue
            stats.mapped += 1
            # (device, signal, time) as everywhere, plus the user of a shared cuff
            if seen.seen_before((raw.device, raw.signal, raw.event_ns, raw.user)):
                stats.repeats += 1
                repeat_ids.append(entry_id)
                continue
            picked.append((entry_id, doc))
        if not picked:
            return stats
        res = replay_messages(picked, settings, resolver)
        outcomes, results = _write(res, settings, lines, outreach)
        stats.readings, stats.dead_letters = outcomes.readings, outcomes.dead_letters
        stats.aggregates, stats.alerts = results.aggregates, results.alerts
        stats.removed = _commit(r, stream, picked, repeat_ids, resolver)
        return stats
    finally:
        # Release only our own lock (it may have expired and been taken by another replay).
        if r.get(lock) == token.encode():
            r.delete(lock)


def _write(res: RunResult, settings: Settings, lines: LineWriter | None,
           outreach: Outreach | None):
    outcome_w, result_w, to_close = _writers(settings, lines, outreach)
    try:
        outcome_w.write([*res.readings, *res.dead_letters,
                         *(q for q in res.quarantined if isinstance(q, Quarantined)), Ack(None)])
        result_w.write([*res.aggregates, *res.alerts, *res.scores])
    finally:
        for w in to_close:
            if hasattr(w, "flush_spool"):
                w.flush_spool()
            w.close()
    return outcome_w.stats, result_w.stats


def _commit(r: redis.Redis, stream: str, picked: list[tuple[bytes, dict]], repeat_ids: list[bytes],
            resolver: RegistryResolver) -> int:
    now = time.time_ns()
    pipe = r.pipeline(transaction=True)
    for entry_id, doc in picked:
        patient = resolver(raw_from_entry(doc))
        pipe.xadd(f"{stream}:replayed", {"id": entry_id, "patient": patient or "",
                                         "replayed_ns": now, "reading": json.dumps(doc)})
    ids = [e for e, _ in picked] + repeat_ids
    for i in range(0, len(ids), 1000):
        pipe.xdel(stream, *ids[i:i + 1000])
    res = pipe.execute()
    return sum(res[len(picked):])
