"""Stage A of every runtime: message -> readings or dead letters, deduplicated.

This stage runs where the message was received (no exchange between workers),
so the sink that writes its output can acknowledge the MQTT message on the same
connection once the readings are stored. It is engine-free: bytewax, faust and
the reference runner all call ``Ingest.process``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from vitalstream.connectors.codecs import default_codecs, parse_topic
from vitalstream.connectors.limits import MAX_PAYLOAD_BYTES, check_payload_size
from vitalstream.errors import VitalstreamError
from vitalstream.ids import check_identifier
from vitalstream.model import Alert, DeadLetter, Heard, Message, RawReading, Reading
from vitalstream.operators.dedup import Dedup
from vitalstream.operators.normalise import Normaliser, PatientResolver, patient_from_payload
from vitalstream.operators.ratelimit import RateLimit


@dataclass(slots=True)
class Ack:
    """Marker that follows the last output of a message: ack it once this is stored."""

    token: object


@dataclass(slots=True)
class Quarantined:
    """A valid reading whose device maps to no patient (kept, not alerted on)."""

    raw: RawReading
    recv_ns: int
    topic: str


# Heard: which gateway a patient's data came through (for gateway liveness); Alert: the
# receiver's own, about its broker connection (it reaches Redis with the dead letters)
Outcome = Union[Reading, DeadLetter, Quarantined, Ack, Heard, Alert]


@dataclass
class IngestStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    rate_limited: int = 0  # readings refused by the per-device rate limit (not messages)
    by_reason: dict[str, int] = field(default_factory=dict)


class Ingest:
    def __init__(self, normaliser: Normaliser = Normaliser(), dedup: Dedup = Dedup(),
                 patient_of: PatientResolver = patient_from_payload,
                 codecs: dict[str, Callable] | None = None,
                 rate_limit: RateLimit | None = None) -> None:
        self.normaliser = normaliser
        # a Dedup config, or an already built (possibly shared) logic
        self.dedup = dedup.build() if isinstance(dedup, Dedup) else dedup
        self.patient_of = patient_of
        self.codecs = default_codecs() if codecs is None else codecs
        self.stats = IngestStats()
        self._valid_ids: set[str] = set()
        # per Ingest, so per worker: with -w N one device's messages spread over N limiters
        self.limiter = rate_limit.limiter() if rate_limit is not None else None

    def _dead(self, err: VitalstreamError, msg: Message, out: list[Outcome]) -> None:
        st = self.stats
        st.dead_letters += 1
        st.by_reason[err.reason] = st.by_reason.get(err.reason, 0) + 1
        payload, detail = msg.payload, err.detail
        if len(payload) > MAX_PAYLOAD_BYTES:
            # a flood of megabyte messages must not be kept whole in Redis: the head is
            # enough to see what a device sent
            detail = f"{detail} (payload cut to {MAX_PAYLOAD_BYTES} of {len(payload)} bytes)"
            payload = payload[:MAX_PAYLOAD_BYTES]
        out.append(DeadLetter(err.step, err.reason, detail, msg.topic, payload,
                              err.device, msg.recv_ns))

    def _check_id(self, kind: str, value: str, device: str | None = None) -> None:
        # Ids repeat with every reading: remember the valid ones (bounded).
        if value in self._valid_ids:
            return
        check_identifier(kind, value, device)
        if len(self._valid_ids) >= 100_000:
            self._valid_ids.clear()
        self._valid_ids.add(value)

    def process(self, msg: Message, out: list[Outcome]) -> None:
        """Append the outcomes of one message (always ending with its Ack) to ``out``."""
        if type(msg) is Alert:  # the source's word about its link, not a message
            out.append(msg)
            return
        self.stats.messages += 1
        device = ""  # a topic that does not parse decodes to nothing
        try:
            device, codec = parse_topic(msg.topic)
            # ids become tags and keys downstream: refuse anything but a bounded printable token
            self._check_id("device", device)
            decoder = self.codecs.get(codec)
            if decoder is None:
                raise VitalstreamError("decode", device, "unknown_codec", codec)
            # before any codec parses it, whichever codec the table holds (connectors.limits)
            check_payload_size(msg.payload, step="decode", device=device)
            decoded = decoder(msg.payload, device, msg.recv_ns)
        except VitalstreamError as err:
            self._dead(err, msg, out)
            decoded = []
        except Exception as err:  # a codec bug must not stop the flow: dead-letter it
            self._dead(VitalstreamError("decode", None, "decoder_crash", repr(err)), msg, out)
            decoded = []
        self.accept(decoded, device, msg, out)
        out.append(Ack(msg.token))

    def accept(self, decoded: list, device: str, msg: Message, out: list[Outcome]) -> None:
        """Normalise, resolve and dedup decoded items of ``msg`` (from ``device``'s topic).
        A replay calls this directly with items it decoded itself, so its readings meet
        the same checks as live ones."""
        heard: set[tuple[str, str]] | None = None
        limiter = self.limiter
        limited: dict[str, int] | None = None  # device -> readings refused in this message
        for item in decoded:
            if isinstance(item, VitalstreamError):
                self._dead(item, msg, out)
                continue
            try:
                if item.device != device:  # a BLE MAC or a payload-named device
                    self._check_id("device", item.device)
                # before normalising: a flood of bad readings costs its device tokens too
                if limiter is not None and not limiter.admit(item.device, msg.recv_ns):
                    if limited is None:
                        limited = {}
                    limited[item.device] = limited.get(item.device, 0) + 1
                    continue
                reading = self.normaliser.normalise(item, msg.recv_ns, self.patient_of)
                if reading is not None:
                    self._check_id("patient", reading.patient, reading.device)
            except VitalstreamError as err:
                self._dead(err, msg, out)
                continue
            if reading is None:
                self.stats.quarantined += 1
                out.append(Quarantined(item, msg.recv_ns, msg.topic))
                continue
            if self.dedup.seen_before(reading.dedup_key()):
                self.stats.duplicates += 1
                continue
            self.stats.readings += 1
            out.append(reading)
            if item.gateway is not None:
                if heard is None:
                    heard = set()
                heard.add((item.gateway, reading.patient))
        if heard:
            out.extend(Heard(g, p, msg.recv_ns) for g, p in sorted(heard))
        if limited:
            self._rate_limited(limited, len(decoded), device, msg, out)

    def _rate_limited(self, limited: dict[str, int], n: int, device: str, msg: Message,
                      out: list[Outcome]) -> None:
        # one dead letter per message (its payload holds every reading), however many refused
        refused = sum(limited.values())
        self.stats.rate_limited += refused
        cfg = self.limiter.cfg
        who = ", ".join(f"{d} {k}" for d, k in sorted(limited.items()))
        self._dead(VitalstreamError(
            "ingest", next(iter(limited)) if len(limited) == 1 else device, "rate_limited",
            f"{refused} of {n} readings over the per-device limit ({cfg.rate_per_s:g}/s, "
            f"burst {cfg.burst}): {who}"), msg, out)

    def process_batch(self, msgs: list[Message]) -> list[Outcome]:
        out: list[Outcome] = []
        for m in msgs:
            self.process(m, out)
        return out
