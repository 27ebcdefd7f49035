"""Device -> patient identity registry, stored in Redis, mapped by event time.

A device is known by the id its connector puts in ``RawReading.device``: a MAC
(BLE, normalised to ``AA:BB:CC:DD:EE:FF``), a serial, a vendor id, or the topic
id of a JSON/SenML device. A shared device (a BP cuff with users 1..4) is
assigned per user index.

Redis keys (``prefix`` defaults to ``vitalstream:devices``)::

    {prefix}:dev:{key}   hash, one field per interval: field = start_ns (decimal),
                         value = JSON {"patient": str, "end_ns": int | null}
    {prefix}:index       set of every {key} ever assigned
    {prefix}:version     integer, INCR on every change (resolvers poll it)
    {prefix}:log         stream, one entry per change (op, key, patient, start_ns,
                         end_ns, at_ns): the audit trail
    {prefix}:changed     pub/sub channel, the new version is published on change

``{key}`` is the device id, or ``{device}#u{user}`` for one user of a shared
device. Intervals are half-open ``[start_ns, end_ns)`` in event time; ``end_ns``
null means open-ended. Sorted sets are not used because their float scores
cannot hold a nanosecond timestamp exactly.

Overlaps are resolved by one rule: a new interval may cut short the single
open-ended interval that started strictly before it (the usual reassignment:
"from t on this device belongs to patient B"); any other overlap is rejected
with ``IdentityError(reason="overlap")``, so closed history is never rewritten
silently. Assigning the same patient again over its own open interval is a
no-op.

Lookup of (device, user): the ``{device}#u{user}`` intervals when that device
has any per-user assignment (then an unknown user maps to nobody: guessing
would file one family member's pressure under another's), else the device's
own intervals.
"""

from __future__ import annotations

import json
import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import redis
from vitalstream.connectors.ble.gateway import normalise_device
from vitalstream.errors import IdentityError
from vitalstream.model import RawReading

log = logging.getLogger(__name__)

STEP = "registry"
_MAX_RETRIES = 50


@dataclass(frozen=True, slots=True)
class Assignment:
    device: str
    user: int | None
    patient: str
    start_ns: int
    end_ns: int | None  # None: open-ended

    def covers(self, event_ns: int) -> bool:
        return self.start_ns <= event_ns and (self.end_ns is None or event_ns < self.end_ns)

    def to_dict(self) -> dict:
        return {"device": self.device, "user": self.user, "patient": self.patient,
                "start_ns": self.start_ns, "end_ns": self.end_ns}


def device_key(device: str, user: int | None = None) -> str:
    """Registry key of a device, or of one user of a shared device.

    >>> device_key("aa:bb:cc:dd:ee:ff"), device_key("cuff-1", 2)
    ('AA:BB:CC:DD:EE:FF', 'cuff-1#u2')
    """
    base = normalise_device(device)
    return base if user is None else f"{base}#u{int(user)}"


def split_key(key: str) -> tuple[str, int | None]:
    base, sep, user = key.rpartition("#u")
    if sep and user.isdigit():
        return base, int(user)
    return key, None


def _parse(key: str, raw: dict) -> list[Assignment]:
    device, user = split_key(key)
    out = []
    for start, value in raw.items():
        v = json.loads(value)
        out.append(Assignment(device, user, v["patient"], int(start), v["end_ns"]))
    out.sort(key=lambda a: a.start_ns)
    return out


def _decode_hash(raw: dict) -> dict:
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


class DeviceRegistry:
    """Python API over the Redis layout above. All methods are atomic per device key."""

    def __init__(self, client: redis.Redis, prefix: str = "vitalstream:devices") -> None:
        self.r = client
        self.prefix = prefix

    # -- keys ---------------------------------------------------------------
    def _dev(self, key: str) -> str:
        return f"{self.prefix}:dev:{key}"

    @property
    def version_key(self) -> str:
        return f"{self.prefix}:version"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changed"

    # -- changes --------------------------------------------------------------
    def _change(self, key: str, plan: Callable[[list[Assignment]], tuple[dict, str, dict]]) -> None:
        """Optimistic transaction on one device key: ``plan(current)`` -> (hset fields, op, log)."""
        dev = self._dev(key)
        for _ in range(_MAX_RETRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(dev)
                    current = _parse(key, _decode_hash(pipe.hgetall(dev)))
                    fields, op, log = plan(current)
                    if not fields:
                        return
                    pipe.multi()
                    pipe.hset(dev, mapping=fields)
                    pipe.sadd(f"{self.prefix}:index", key)
                    pipe.incr(self.version_key)
                    pipe.xadd(f"{self.prefix}:log", {"op": op, "key": key, "at_ns": time.time_ns(),
                                                     **{k: json.dumps(v) for k, v in log.items()}})
                    res = pipe.execute()
                    self.r.publish(self.channel, res[2])
                    return
                except redis.WatchError:
                    continue
        raise IdentityError(STEP, key, "contention", f"gave up after {_MAX_RETRIES} retries")

    def assign(self, device: str, patient: str, start_ns: int, end_ns: int | None = None,
               user: int | None = None) -> None:
        """Map ``device`` (user ``user``) to ``patient`` over ``[start_ns, end_ns)``."""
        key = device_key(device, user)
        if not patient:
            raise IdentityError(STEP, key, "bad_patient", "patient id is empty")
        if end_ns is not None and end_ns <= start_ns:
            raise IdentityError(STEP, key, "bad_interval", f"end {end_ns} <= start {start_ns}")

        def plan(current: list[Assignment]) -> tuple[dict, str, dict]:
            fields: dict[str, str] = {}
            for a in current:
                overlaps = (end_ns is None or a.start_ns < end_ns) and \
                           (a.end_ns is None or start_ns < a.end_ns)
                if not overlaps:
                    continue
                if a.end_ns is None and a.patient == patient and a.start_ns <= start_ns \
                        and end_ns is None:
                    return {}, "", {}  # already assigned from earlier on: nothing to do
                if a.end_ns is None and a.start_ns < start_ns:
                    fields[str(a.start_ns)] = json.dumps({"patient": a.patient, "end_ns": start_ns})
                    continue
                raise IdentityError(STEP, key, "overlap",
                                    f"[{start_ns}, {end_ns}) overlaps {a.patient} "
                                    f"[{a.start_ns}, {a.end_ns})")
            fields[str(start_ns)] = json.dumps({"patient": patient, "end_ns": end_ns})
            return fields, "assign", {"patient": patient, "start_ns": start_ns, "end_ns": end_ns}

        self._change(key, plan)

    def unassign(self, device: str, at_ns: int, user: int | None = None) -> None:
        """Close the device's open interval at event time ``at_ns``."""
        key = device_key(device, user)

        def plan(current: list[Assignment]) -> tuple[dict, str, dict]:
            open_ = [a for a in current if a.end_ns is None]
            if not open_:
                raise IdentityError(STEP, key, "not_assigned", "no open assignment to close")
            a = open_[-1]
            if at_ns <= a.start_ns:
                raise IdentityError(STEP, key, "bad_interval",
                                    f"unassign at {at_ns} is not after the start {a.start_ns}")
            return ({str(a.start_ns): json.dumps({"patient": a.patient, "end_ns": at_ns})},
                    "unassign", {"patient": a.patient, "start_ns": a.start_ns, "end_ns": at_ns})

        self._change(key, plan)

    # -- reads ------------------------------------------------------------------
    def history(self, device: str, user: int | None = None) -> list[Assignment]:
        key = device_key(device, user)
        return _parse(key, _decode_hash(self.r.hgetall(self._dev(key))))

    def lookup(self, device: str, event_ns: int, user: int | None = None) -> str | None:
        """Straight from Redis (no cache); the pipeline uses ``RegistryResolver``."""
        return RegistrySnapshot(self.load_all()).lookup(device, event_ns, user)

    def keys(self) -> list[str]:
        return sorted(k.decode() for k in self.r.smembers(f"{self.prefix}:index"))

    def load_all(self) -> dict[str, list[Assignment]]:
        keys = self.keys()
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.hgetall(self._dev(k))
        return {k: _parse(k, _decode_hash(raw)) for k, raw in zip(keys, pipe.execute())}

    def list(self) -> list[Assignment]:
        """Every interval of every device, ordered by key then start."""
        return [a for k, items in sorted(self.load_all().items()) for a in items]

    def version(self) -> int:
        v = self.r.get(self.version_key)
        return int(v) if v is not None else 0


class RegistrySnapshot:
    """An in-memory copy of the registry, searched by binary search on start times."""

    def __init__(self, data: dict[str, list[Assignment]]) -> None:
        self._starts = {k: [a.start_ns for a in v] for k, v in data.items()}
        self._items = data
        self._per_user = {split_key(k)[0] for k in data if split_key(k)[1] is not None}
        self._base: dict[str, str] = {}  # device id as sent -> key; bounded by the fleet

    def _key(self, device: str) -> str:
        base = self._base.get(device)
        if base is None:
            if len(self._base) >= 100_000:  # ids come off the wire: never grow without bound
                self._base.clear()
            base = self._base[device] = device_key(device)
        return base

    def _find(self, key: str, event_ns: int) -> str | None:
        starts = self._starts.get(key)
        if not starts:
            return None
        i = bisect_right(starts, event_ns) - 1
        if i < 0:
            return None
        a = self._items[key][i]
        return a.patient if a.covers(event_ns) else None

    def lookup(self, device: str, event_ns: int, user: int | None = None) -> str | None:
        base = self._key(device)
        if user is not None and base in self._per_user:
            return self._find(f"{base}#u{int(user)}", event_ns)
        return self._find(base, event_ns)

    def knows(self, device: str) -> bool:
        base = self._key(device)
        return base in self._starts or base in self._per_user


class RegistryResolver:
    """``patient_of`` for ``Ingest``/``Pipeline``: registry by event time, cached.

    The cache is reloaded when ``{prefix}:version`` changes; the version is
    read at most every ``poll_s`` seconds of ``monotonic()`` time, so a change
    reaches a running pipeline within about ``poll_s`` without a restart and
    without a Redis round trip per reading.

    A device with no registry entry at all falls back to the payload's
    patient when ``trust_payload`` (JSON devices that name their patient);
    otherwise, and when the payload names nobody, the reading is quarantined
    (None). A device that is registered but not assigned at the event time is
    quarantined whatever the payload says: the registry is authoritative.

    Redis down: the last snapshot keeps being served (``stale``), and polls back
    off from ``poll_s`` doubling to ``retry_max_s``, so the flow is neither
    stopped nor slowed; the first poll that succeeds reloads. At construction
    there is no snapshot yet, so an unreachable registry raises there.
    """

    def __init__(self, registry: DeviceRegistry, *, poll_s: float = 0.5, trust_payload: bool = True,
                 monotonic: Callable[[], float] = time.monotonic, retry_max_s: float = 10.0) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self.trust_payload = trust_payload
        self.retry_max_s = retry_max_s
        self._monotonic = monotonic
        self._version = -1
        self._next_poll = float("-inf")
        self.snapshot = RegistrySnapshot({})
        self.reloads = 0
        self.failures = 0  # consecutive failed polls: > 0 while Redis is unreachable
        self.failed_polls = 0  # total, for metrics
        self.refresh(force=True)

    @property
    def stale(self) -> bool:
        """True while the registry cannot be read and the last snapshot is served."""
        return self.failures > 0

    def refresh(self, force: bool = False) -> None:
        now = self._monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + self.poll_s
        try:
            version = self.registry.version()
            if version != self._version or force:
                data = self.registry.load_all()
                # A change between the two reads only makes us reload once more later.
                self.snapshot, self._version = RegistrySnapshot(data), version
                self.reloads += 1
        except redis.RedisError as exc:
            if force:
                raise  # at start there is no mapping to fall back on
            # Keep serving the last known mapping through a Redis outage. The poll runs on
            # the flow's thread, so back off: a hung server would otherwise cost a socket
            # timeout every poll_s.
            self.failures += 1
            self.failed_polls += 1
            if self.failures == 1:
                log.warning("device registry unreadable (%s): serving the last snapshot "
                            "(version %d) until Redis answers", exc, self._version)
            self._next_poll = now + min(self.retry_max_s, self.poll_s * 2 ** self.failures)
            return
        if self.failures:
            log.warning("device registry readable again after %d failed polls", self.failures)
            self.failures = 0

    def __call__(self, raw: RawReading) -> str | None:
        self.refresh()
        snap = self.snapshot
        if snap.knows(raw.device):
            return snap.lookup(raw.device, raw.event_ns, raw.user)
        return raw.patient if self.trust_payload else None
