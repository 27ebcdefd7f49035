"""Duplicate suppression on (device, signal, event time) over a bounded horizon.

Devices and gateways re-send (QoS 1 redelivery, retries after a lost ack). A
reading is a duplicate if the same device already reported the same signal at
the same event time. Memory is bounded by keeping keys only for ``horizon_ns``
of event time behind the newest reading seen; a reading older than that is
passed through (``seen_before`` returns False), which is safe because InfluxDB
is idempotent on (series, time) and windows dedup their own readings.

Keys are kept as their 64-bit hash (about 60 B each instead of ~180 B for the
tuple): at 8k readings/s over a 2-minute horizon that is ~60 MB, not ~170 MB.
Two different readings colliding is a ~1e-13 event per lookup at that size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from vitalstream.model import Reading
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of

Key = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Dedup:
    """Config: how far behind the newest event time keys are remembered.

    >>> d = Dedup(horizon_ns=10).build()
    >>> d.seen_before(("dev", "heart_rate", 100)), d.seen_before(("dev", "heart_rate", 100))
    (False, True)

    As an operator (the contract of ``operators.contract``), it passes a reading
    through once: ``on_item`` returns ``([reading], RETAIN)`` or ``([], RETAIN)``.
    """

    horizon_ns: int = 120 * 1_000_000_000
    bucket_ns: int = 10 * 1_000_000_000
    # Keys themselves rather than their hash: ``hash()`` of a str is salted per process,
    # so state that is snapshotted and resumed elsewhere must keep the keys.
    store_keys: bool = False

    def build(self, resume_state: "DedupState | None" = None, *, key: str = "") -> "DedupLogic":
        return DedupLogic(self, resume_state or DedupState())


@dataclass
class DedupState:
    buckets: dict[int, set] = field(default_factory=dict)  # bucket -> keys or key hashes
    max_event_ns: int | None = None


class DedupLogic(Stateless["DedupState"]):
    def __init__(self, cfg: Dedup, state: DedupState) -> None:
        self.cfg = cfg
        self.state = state

    def seen_before(self, key: Key) -> bool:
        st, cfg = self.state, self.cfg
        event_ns = key[2]
        if st.max_event_ns is not None and event_ns < st.max_event_ns - cfg.horizon_ns:
            return False
        bucket = event_ns // cfg.bucket_ns
        h = key if cfg.store_keys else hash(key)
        keys = st.buckets.get(bucket)
        if keys is None:
            keys = st.buckets[bucket] = set()
        elif h in keys:
            return True
        keys.add(h)
        if st.max_event_ns is None or event_ns > st.max_event_ns:
            st.max_event_ns = event_ns
            self._expire()
        return False

    def _expire(self) -> None:
        st, cfg = self.state, self.cfg
        oldest = (st.max_event_ns - cfg.horizon_ns) // cfg.bucket_ns - 1
        if len(st.buckets) > cfg.horizon_ns // cfg.bucket_ns + 3:
            for b in [b for b in st.buckets if b < oldest]:
                del st.buckets[b]

    def on_item(self, r: Reading) -> Emit:
        return ([] if self.seen_before(r.dedup_key()) else [r]), RETAIN

    def __len__(self) -> int:
        return sum(len(v) for v in self.state.buckets.values())

    def snapshot(self) -> DedupState:
        return snapshot_of(self.state)


class LockedDedup:
    """One ``DedupLogic`` shared by several threads (bytewax workers of one process)."""

    def __init__(self, logic: DedupLogic) -> None:
        self.logic = logic
        self._lock = threading.Lock()

    def seen_before(self, key: Key) -> bool:
        with self._lock:
            return self.logic.seen_before(key)

    @property
    def state(self) -> DedupState:
        return self.logic.state

    def __len__(self) -> int:
        return len(self.logic)
