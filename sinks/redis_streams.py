"""Redis Streams: the outreach queue for alerts, and the dead-letter/quarantine streams.

Alerts: ``XADD vitalstream:alerts`` one entry per alert event (fired, re-alert,
resolved) with ``alert_id`` (stable per episode), ``event_id`` (stable per
event), patient, rule, severity, state, value, threshold, event_time. A replay
of the same readings yields the same ids, and a Lua script adds an event only
if its ``event_id`` was not added before (``SET NX`` marker with a TTL), so
care-team tools never see a second copy. Consumers read with consumer groups
(``XREADGROUP``/``XACK``); ``ensure_group`` creates one.

Dead letters: ``vitalstream:deadletter`` with ``step``, ``reason``, ``detail``,
``topic``, ``payload`` (raw bytes), ``device``, ``recv_ns``. Quarantine:
``vitalstream:quarantine`` holds valid readings of devices mapped to no patient.

Outage (issue 9): a Redis that is down, hung or refusing writes (``OOM``,
``READONLY``, ``LOADING``...) must not stop the pipeline, whose readings path
does not depend on Redis. After one quick retry (``connect``: no multi-second
retry loop on the flow's thread) the items wait in memory in a bounded FIFO per
stream and the call returns. A background thread retries with exponential
backoff (``retry_initial_s`` doubling to ``retry_max_s``) and delivers the
backlog in order when Redis answers; until then new items queue behind it, so
each stream keeps its order. Re-sending is safe for alerts (the ``event_id``
marker above); a dead-letter or quarantine entry whose write broke half-way may
appear twice. Past ``buffer_max`` items the oldest dead letters go first, then
quarantined readings, and alerts last; drops are counted (``dropped``).
Memory is not durable: a process that ends during an outage loses what it
holds unless ``close()`` could still deliver it. ``state()`` and the
``in_outage``/``buffered``/``dropped`` properties are for the metrics endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterable

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, TimeoutError as RedisTimeoutError
from redis.retry import Retry

from vitalstream.model import Alert, DeadLetter

log = logging.getLogger(__name__)

_ADD_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""

# Server replies that mean "not now" rather than "never": treated like a lost connection.
_TRANSIENT_REPLIES = ("OOM", "MISCONF", "READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN",
                      "CLUSTERDOWN", "BUSY ")
ALERTS, DEAD_LETTERS, QUARANTINE = "alerts", "dead_letters", "quarantine"
_DROP_ORDER = (DEAD_LETTERS, QUARANTINE, ALERTS)  # which backlog gives way first when full
_BATCH = 500  # items per delivery attempt from the backlog


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    alerts_stream: str = "vitalstream:alerts"
    deadletter_stream: str = "vitalstream:deadletter"
    quarantine_stream: str = "vitalstream:quarantine"
    maxlen: int = 1_000_000
    dedup_ttl_s: int = 30 * 86_400
    buffer_max: int = 100_000  # items held in memory through an outage (all streams together)
    retry_initial_s: float = 0.5  # first wait before retrying after a failed write
    retry_max_s: float = 10.0  # the wait doubles up to this
    socket_timeout_s: float = 2.0  # a hung server counts as an outage after this


def is_outage(exc: BaseException) -> bool:
    """True for errors that pass (no connection, timeout, a server refusing writes for now)."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def connect(url: str, socket_timeout_s: float = 2.0) -> redis.Redis:
    """A client that fails fast: one quick retry (a pooled connection the server closed
    is re-opened), connect and read timeouts, so a caller on the flow's thread is never
    held for long; longer outages are the caller's to ride out."""
    return redis.Redis.from_url(
        url, retry=Retry(ExponentialBackoff(cap=0.1, base=0.05), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError], health_check_interval=30,
        socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s)


@dataclass(frozen=True, slots=True)
class OutreachState:
    """What the metrics endpoint shows of one writer."""

    in_outage: bool
    buffered: int  # items waiting in memory now
    dropped: int  # items given up because the buffer was full (total)
    dropped_alerts: int
    outages: int  # outages begun
    failed_attempts: int  # writes that failed with an outage error
    alerts_added: int
    alerts_suppressed: int  # re-sent events the marker refused


class RedisOutreach:
    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None) -> None:
        self.cfg = cfg
        self.r = client or connect(cfg.url, cfg.socket_timeout_s)
        self._add_once = self.r.register_script(_ADD_ONCE)
        self.alerts_added = 0
        self.alerts_suppressed = 0
        # Outage state; _lock guards everything below and, outside an outage, the writes.
        self._lock = threading.Lock()
        self._backlog: dict[str, deque] = {k: deque() for k in (ALERTS, DEAD_LETTERS, QUARANTINE)}
        self._in_flight = 0  # taken from the backlog by the retry thread, not yet delivered
        self._in_outage = False
        self._outage_started = 0.0
        self._retry_thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._dropped = {k: 0 for k in self._backlog}
        self._drop_logged = False
        self.outages = 0
        self.failed_attempts = 0

    # -- public writes ----------------------------------------------------------------
    def write_alerts(self, alerts: Iterable[Alert]) -> int:
        """XADD each alert event unless its event_id was already added; returns how many were new.

        During an outage the events are kept for later delivery and 0 is returned.
        """
        return self._write(ALERTS, list(alerts))

    def write_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        self._write(DEAD_LETTERS, list(letters))

    def write_quarantine(self, items: Iterable[dict]) -> None:
        self._write(QUARANTINE, list(items))

    # -- state ------------------------------------------------------------------------
    @property
    def in_outage(self) -> bool:
        return self._in_outage

    @property
    def buffered(self) -> int:
        with self._lock:
            return self._held()

    @property
    def dropped(self) -> int:
        """Items given up because the buffer was full, all streams together."""
        return sum(self._dropped.values())

    def dropped_by_stream(self) -> dict[str, int]:
        with self._lock:
            return dict(self._dropped)

    def state(self) -> OutreachState:
        with self._lock:
            return OutreachState(self._in_outage, self._held(), sum(self._dropped.values()),
                                 self._dropped[ALERTS], self.outages, self.failed_attempts,
                                 self.alerts_added, self.alerts_suppressed)

    # -- delivery ---------------------------------------------------------------------
    def _write(self, kind: str, items: list) -> int:
        if not items:
            return 0
        with self._lock:
            if not self._in_outage:
                # Outside an outage the write happens under the lock: the retry thread
                # does not exist then, so nothing waits on it.
                try:
                    return self._send(kind, items)
                except redis.RedisError as exc:
                    if not is_outage(exc):
                        raise
                    self._begin_outage(exc)
            self._hold(kind, items)
            return 0

    def _send(self, kind: str, items: list) -> int:
        """One pipelined round trip; returns the alerts newly added (0 for other kinds)."""
        cfg = self.cfg
        pipe = self.r.pipeline(transaction=False)
        if kind == ALERTS:
            for a in items:
                flat: list[str] = []
                for k, v in a.to_fields().items():
                    flat += [k, v]
                self._add_once(keys=[f"{cfg.alerts_stream}:seen:{a.event_id}", cfg.alerts_stream],
                               args=[cfg.dedup_ttl_s, cfg.maxlen, *flat], client=pipe)
            added = sum(1 for res in pipe.execute() if res)
            self.alerts_added += added
            self.alerts_suppressed += len(items) - added
            return added
        stream = cfg.deadletter_stream if kind == DEAD_LETTERS else cfg.quarantine_stream
        for item in items:
            fields = item.to_fields() if kind == DEAD_LETTERS else {"reading": json.dumps(item)}
            pipe.xadd(stream, fields, maxlen=cfg.maxlen, approximate=True)
        pipe.execute()
        return 0

    def _held(self) -> int:
        return sum(len(q) for q in self._backlog.values()) + self._in_flight

    def _hold(self, kind: str, items: list) -> None:
        """Queue behind the backlog (lock held); make room by the drop order."""
        self._backlog[kind].extend(items)
        excess = self._held() - max(0, self.cfg.buffer_max)
        if excess <= 0:
            return
        for victim in _DROP_ORDER:
            q = self._backlog[victim]
            while excess > 0 and q:
                q.popleft()  # the oldest goes: newer items matter more to whoever reads
                self._dropped[victim] += 1
                excess -= 1
        if not self._drop_logged:
            self._drop_logged = True
            log.error("redis outage buffer full (%d items): dropping oldest dead letters, then "
                      "quarantined readings, then alerts", self.cfg.buffer_max)

    def _begin_outage(self, exc: BaseException) -> None:
        self._in_outage = True
        self._drop_logged = False
        self._outage_started = time.monotonic()
        self.outages += 1
        self.failed_attempts += 1
        log.warning("redis %s unavailable (%s): outreach held in memory (up to %d items), "
                    "retrying with backoff", self.cfg.url, exc, self.cfg.buffer_max)
        if self._retry_thread is None or not self._retry_thread.is_alive():
            self._retry_thread = threading.Thread(target=self._retry_loop, daemon=True,
                                                  name="vitalstream-redis-retry")
            self._retry_thread.start()

    def _take(self) -> tuple[str, list] | None:
        """The next batch of the backlog (lock held), or None when it is empty."""
        for kind in (ALERTS, DEAD_LETTERS, QUARANTINE):  # alerts matter most: first
            q = self._backlog[kind]
            if q:
                batch = [q.popleft() for _ in range(min(_BATCH, len(q)))]
                self._in_flight = len(batch)
                return kind, batch
        return None

    def _drain_once(self) -> bool:
        """Deliver the backlog; True once it is empty and the outage is over."""
        while True:
            with self._lock:
                nxt = self._take()
                if nxt is None:
                    if self._in_outage:
                        log.warning("redis back after %.1f s: outreach backlog delivered",
                                    time.monotonic() - self._outage_started)
                    self._in_outage = False
                    return True
            kind, batch = nxt
            try:
                self._send(kind, batch)  # outside the lock: the flow only queues meanwhile
            except redis.RedisError as exc:
                with self._lock:
                    self._backlog[kind].extendleft(reversed(batch))  # back in front, in order
                    self._in_flight = 0
                    self.failed_attempts += 1
                    self._hold(kind, [])  # re-apply the bound (items arrived meanwhile)
                if not is_outage(exc):
                    log.error("redis refused outreach items (%s); still retrying", exc)
                return False
            with self._lock:
                self._in_flight = 0

    def _retry_loop(self) -> None:
        wait_s = self.cfg.retry_initial_s
        while not self._closing.wait(wait_s):
            if self._drain_once():
                return
            wait_s = min(wait_s * 2, self.cfg.retry_max_s)

    # -- lifecycle --------------------------------------------------------------------
    def flush(self, timeout_s: float = 5.0) -> bool:
        """Try to deliver what is held, for up to ``timeout_s``; True when nothing is left."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if not self._in_outage:
                    return True
            thread = self._retry_thread
            if thread is None or not thread.is_alive():
                if self._drain_once():
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def ensure_group(self, group: str, stream: str | None = None) -> None:
        try:
            self.r.xgroup_create(stream or self.cfg.alerts_stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is held if Redis answers within ``timeout_s``, then close the client."""
        if not self.flush(timeout_s):
            with self._lock:
                held = {k: len(q) for k, q in self._backlog.items()}
            log.error("redis still unavailable at close: %s outreach items lost", held)
        self._closing.set()
        if self._retry_thread is not None:
            self._retry_thread.join(timeout_s)
        self.r.close()
