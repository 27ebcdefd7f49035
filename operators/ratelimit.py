"""Per-device rate limit: a token bucket on receive time, for stage A.

A device (or a gateway speaking for it) that floods, a firmware loop re-sending the same
second, must not slow the partition it shares with every other device. Each device has
a bucket of ``burst`` readings that refills at ``rate_per_s``; a reading that finds it
empty is refused (stage A dead-letters it as ``rate_limited``, one dead letter per
message) and the others in the batch go on.

**Receive time, not event time.** The point is what a device costs the pipeline *now*:
a device sending a thousand readings a second is a flood whatever times it writes in
them, and event times are the device's to choose (a loop re-stamping one second, or
spreading its stamps, would pass an event-time limit). The receive time is the
receiver's stamp on each message (``Message.recv_ns``), handed in, so the limiter still
reads no clock and a replay of the same messages gives the same answers.

**Exact, in integers.** The bucket is kept as the generic cell rate algorithm (GCRA,
ITU-T I.371): one integer per device, the *theoretical arrival time* ``tat``. With
``T = 1e9 / rate_per_s`` ns per reading (rounded to the ns) a reading at ``t`` passes
iff ``tat - t <= (burst - 1) * T``, and then ``tat = max(tat, t) + T``. This is the
token bucket (capacity ``burst``, one token every ``T``) without floats.

**Bounded state.** ``tat <= t`` means the bucket is full again, which is what a device
never seen has: the state is dropped then with nothing forgotten (``notify_at`` is
``tat``). The ``RateLimiter`` that stage A holds sweeps full buckets at most every
``burst * T`` of receive time, and past ``max_devices`` (an id spray) starts afresh,
which only ever admits more, never less.

>>> lim = RateLimit(rate_per_s=2.0, burst=3).limiter()
>>> S = 1_000_000_000
>>> [lim.admit("d1", 0) for _ in range(4)]       # a burst of 3 passes, the 4th waits
[True, True, True, False]
>>> lim.admit("d1", S // 2), lim.admit("d1", S // 2)   # one token back every 0.5 s
(True, False)
>>> lim.admit("d2", 0)                           # another device has its own bucket
True

As an operator (``operators.contract``), per device, on readings stamped with their
receive time: ``on_item`` passes the reading or returns nothing (and counts it).

>>> from vitalstream.model import Reading
>>> from vitalstream.signals import Signal
>>> lg = RateLimit(rate_per_s=1.0, burst=1).build(key="d1")
>>> hr = lambda t: Reading("p1", "d1", Signal.HEART_RATE, 70.0, "/min", t, t)
>>> [len(lg.on_item(hr(t))[0]) for t in (0, S // 2, S)], lg.st.refused, lg.notify_at() == 2 * S
([1, 0, 1], 1, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from vitalstream.operators.contract import DISCARD, RETAIN, Emit, snapshot_of

NS = 1_000_000_000


@dataclass
class BucketState:
    tat: int | None = None  # theoretical arrival time (receive-time ns); None: full bucket
    refused: int = 0  # readings refused so far (dropped with the state: stage A counts its own)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Config: ``rate_per_s`` readings a second on average, ``burst`` at once, per device."""

    rate_per_s: float = 50.0
    burst: int = 500
    max_devices: int = 1_000_000  # buckets held by one limiter before it starts afresh

    def __post_init__(self) -> None:
        if not 0 < self.rate_per_s <= 1e9 or self.burst < 1 or self.max_devices < 1:
            raise ValueError("rate limit: rate_per_s in (0, 1e9], burst and max_devices >= 1")

    @property
    def interval_ns(self) -> int:
        """Receive time per token (the GCRA emission interval ``T``)."""
        return max(1, round(NS / self.rate_per_s))

    @property
    def tolerance_ns(self) -> int:
        """How far ``tat`` may run ahead of a reading that still passes: ``(burst-1) T``."""
        return (self.burst - 1) * self.interval_ns

    def build(self, resume_state: BucketState | None = None, *, key: str = "") -> "RateLimitLogic":
        return RateLimitLogic(self, resume_state if resume_state is not None else BucketState())

    def limiter(self) -> "RateLimiter":
        return RateLimiter(self)


class RateLimitLogic:
    """One device's bucket under the operator contract (readings carry ``recv_ns``)."""

    def __init__(self, cfg: RateLimit, st: BucketState) -> None:
        self.cfg, self.st = cfg, st
        self._t, self._tol = cfg.interval_ns, cfg.tolerance_ns

    def on_item(self, r) -> Emit:
        st, t = self.st, r.recv_ns
        tat = t if st.tat is None or st.tat < t else st.tat
        if tat - t > self._tol:
            st.refused += 1
            return [], RETAIN
        st.tat = tat + self._t
        return [r], RETAIN

    def notify_at(self) -> int | None:
        return self.st.tat  # then the bucket is full: nothing left to remember

    def on_notify(self, now_ns: int) -> Emit:
        if self.st.tat is not None and self.st.tat <= now_ns:
            return [], DISCARD
        return [], RETAIN

    def on_eof(self) -> Emit:
        return [], RETAIN

    def snapshot(self) -> BucketState:
        return snapshot_of(self.st)


class RateLimiter:
    """Every device's bucket, for stage A (``Ingest``), which sees all devices of its
    partition in one loop and no keyed runtime: a dict of ``tat`` per device, the same
    arithmetic as ``RateLimitLogic`` inlined, since it runs once a reading."""

    __slots__ = ("cfg", "_t", "_tol", "_tat", "_sweep_at", "_sweep_every")

    def __init__(self, cfg: RateLimit) -> None:
        self.cfg = cfg
        self._t, self._tol = cfg.interval_ns, cfg.tolerance_ns
        self._tat: dict[str, int] = {}
        self._sweep_every = cfg.burst * self._t  # an emptied bucket is full again by then
        self._sweep_at: int | None = None

    def admit(self, device: str, recv_ns: int) -> bool:
        """Does ``device``'s reading received at ``recv_ns`` pass? (It takes a token if so.)"""
        tats = self._tat
        tat = tats.get(device)
        if tat is None or tat < recv_ns:
            tat = recv_ns
        elif tat - recv_ns > self._tol:
            return False
        tats[device] = tat + self._t
        if self._sweep_at is None or recv_ns >= self._sweep_at or len(tats) > self.cfg.max_devices:
            self._sweep(recv_ns)
        return True

    def _sweep(self, now_ns: int) -> None:
        tats = self._tat
        for d in [d for d, tat in tats.items() if tat <= now_ns]:
            del tats[d]
        if len(tats) > self.cfg.max_devices:  # an id spray: forget all (admits more, never less)
            tats.clear()
        self._sweep_at = now_ns + self._sweep_every

    def __len__(self) -> int:
        """Devices whose bucket is not known to be full (what the limiter holds)."""
        return len(self._tat)
