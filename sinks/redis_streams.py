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

Durable buffer (issue 14): with ``spool_dir`` each held batch is one file
``<seq>-<kind>.jsonl`` (one JSON object per line, dead-letter payloads in
base64), written to a temporary name, fsync'ed and renamed, so a crash leaves a
whole batch or none. The retry thread delivers the files oldest first and
deletes one only once its items were written. A new writer over the same
directory (the process restarted, even after ``kill -9``) starts in the outage
state with those files as its backlog, so they go out before anything newer.
The bound is then ``spool_max_bytes`` of files; past it whole files go, oldest
first, in the drop order above (counted per item). ``outage.json`` keeps the
outage's start (wall ns) across a restart. With ``announce_outage`` the writer
adds one pipeline alert when an outage ends, once the backlog is out: rule
``redis_outage``, patient ``pipeline``, state resolved, value the outage's
length in seconds, ``alert_id`` from the start, so a writer that restarted
mid-outage raises the same alert and the add-once marker keeps it single.

>>> a = Alert("id1", "p1", "r", "heart_rate", "warning", "firing", 131.0, 120.0, 5, 1,
...           covers=("*",))
>>> _decode(ALERTS, _encode(ALERTS, a)) == a
True
>>> d = DeadLetter("decode", "bad_json", "x", "t", b"\\xff{", "d1", 7)
>>> _decode(DEAD_LETTERS, _encode(DEAD_LETTERS, d)) == d
True
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, TimeoutError as RedisTimeoutError
from redis.retry import Retry

from vitalstream.model import Alert, AlertState, DeadLetter, alert_id

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
OUTAGE_RULE = "redis_outage"
PIPELINE_KEY = "pipeline"  # the pipeline's own alarms (as operators/liveness.py)
_ALERT_FIELDS = tuple(f.name for f in fields(Alert))
_DEAD_FIELDS = tuple(f.name for f in fields(DeadLetter))


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
    spool_dir: str | None = None  # None: held in memory only (lost if the process ends)
    spool_max_bytes: int = 256 * 2**20  # bound of the spool files (all streams together)


def _encode(kind: str, item) -> str:
    """One spool line. NaN (an alarm without a value) is kept: Python's json reads it back."""
    if kind == ALERTS:
        d = {k: getattr(item, k) for k in _ALERT_FIELDS}
        d["covers"] = list(item.covers)
    elif kind == DEAD_LETTERS:
        d = {k: getattr(item, k) for k in _DEAD_FIELDS}
        d["payload"] = base64.b64encode(item.payload).decode("ascii")
    else:
        d = item
    return json.dumps(d, separators=(",", ":"))


def _decode(kind: str, line: str):
    d = json.loads(line)
    if kind == ALERTS:
        d["covers"] = tuple(d["covers"])
        return Alert(**d)
    if kind == DEAD_LETTERS:
        d["payload"] = base64.b64decode(d["payload"])
        return DeadLetter(**d)
    return d


@dataclass(frozen=True, slots=True)
class _SpoolFile:
    path: Path
    count: int  # items in it
    nbytes: int


def _write_durably(path: Path, body: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a crash mid-write leaves a .tmp (ignored), never half a batch
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power loss
    finally:
        os.close(fd)


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
    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None, *,
                 announce_outage: bool = False) -> None:
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
        # One pipeline alert when an outage ends (one writer of a deployment says it).
        self.announce_outage = announce_outage
        self.on_outage_alert: Callable[[Alert], None] | None = None
        self._announced = False
        self._outage_start_ns = 0
        self._spool: Path | None = None
        self._spool_bytes = 0
        self._seq = 0
        if cfg.spool_dir is not None:
            self._open_spool(Path(cfg.spool_dir))

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
        if self._spool is not None:
            return sum(f.count for q in self._backlog.values() for f in q) + self._in_flight
        return sum(len(q) for q in self._backlog.values()) + self._in_flight

    # -- the durable buffer -----------------------------------------------------------
    def _open_spool(self, directory: Path) -> None:
        """Take what an earlier process left as the backlog: delivered first, in order. The
        directory is made on the first item held (none while Redis answers)."""
        self._spool = directory
        left = []
        for path in directory.glob("*.jsonl"):  # nothing if it does not exist
            seq, _, kind = path.stem.partition("-")
            if kind not in self._backlog or not seq.isdigit():
                continue
            with open(path, encoding="utf-8") as f:
                count = sum(1 for line in f if line.strip())
            left.append((int(seq), kind, _SpoolFile(path, count, path.stat().st_size)))
        left.sort(key=lambda t: t[0])
        for seq, kind, f in left:
            self._backlog[kind].append(f)
            self._spool_bytes += f.nbytes
            self._seq = seq + 1
        if left:
            marker = directory / "outage.json"
            try:
                start_ns = int(json.loads(marker.read_text())["start_ns"])
            except (OSError, ValueError, KeyError, TypeError):
                start_ns = min(f.path.stat().st_mtime_ns for _, _, f in left)
            with self._lock:
                log.warning("redis outreach spool %s holds %d items of an earlier run: "
                            "delivering them first", directory, self._held())
                self._begin_outage(None, start_ns)

    def _hold_spooled(self, kind: str, items: list) -> None:
        """One durable file per batch (lock held), then the bound."""
        if items:
            body = "".join(_encode(kind, x) + "\n" for x in items)
            path = self._spool / f"{self._seq:012d}-{kind}.jsonl"
            self._seq += 1
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_durably(path, body)
            except OSError as exc:  # disk full or gone: counted like a full buffer
                self._dropped[kind] += len(items)
                log.error("redis outreach spool %s not writable (%s): %d %s dropped",
                          self._spool, exc, len(items), kind)
                return
            size = path.stat().st_size
            self._backlog[kind].append(_SpoolFile(path, len(items), size))
            self._spool_bytes += size
        excess = self._spool_bytes - max(0, self.cfg.spool_max_bytes)
        if excess <= 0:
            return
        for victim in _DROP_ORDER:
            q = self._backlog[victim]
            while excess > 0 and q:
                f = q.popleft()  # the oldest file goes first
                f.path.unlink(missing_ok=True)
                self._dropped[victim] += f.count
                self._spool_bytes -= f.nbytes
                excess -= f.nbytes
        if not self._drop_logged:
            self._drop_logged = True
            log.error("redis outreach spool full (%d bytes): dropping oldest dead letters, then "
                      "quarantined readings, then alerts", self.cfg.spool_max_bytes)

    def _outage_alert(self, end_ns: int) -> Alert:
        start = self._outage_start_ns
        lasted_s = max(0, end_ns - start) / 1e9
        return Alert(alert_id(PIPELINE_KEY, OUTAGE_RULE, start), PIPELINE_KEY, OUTAGE_RULE,
                     "redis", "warning", AlertState.RESOLVED, round(lasted_s, 3), float("nan"),
                     end_ns, start, 1, "",
                     f"alert outreach was degraded (Redis unavailable) for {lasted_s:.0f} s; "
                     "alerts held meanwhile are delivered")

    def _hold(self, kind: str, items: list) -> None:
        """Queue behind the backlog (lock held); make room by the drop order."""
        if self._spool is not None:
            self._hold_spooled(kind, items)
            return
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

    def _begin_outage(self, exc: BaseException | None, start_ns: int | None = None) -> None:
        """Lock held. ``exc`` None: a restart found a backlog in the spool (``start_ns``)."""
        self._in_outage = True
        self._drop_logged = False
        self._announced = False
        self._outage_started = time.monotonic()
        self._outage_start_ns = time.time_ns() if start_ns is None else start_ns
        self.outages += 1
        if exc is not None:
            self.failed_attempts += 1
            where = (f"in {self._spool} (up to {self.cfg.spool_max_bytes} bytes)"
                     if self._spool is not None else f"in memory (up to {self.cfg.buffer_max} items)")
            log.warning("redis %s unavailable (%s): outreach held %s, retrying with backoff",
                        self.cfg.url, exc, where)
        if self._spool is not None and start_ns is None:
            try:
                self._spool.mkdir(parents=True, exist_ok=True)
                _write_durably(self._spool / "outage.json",
                               json.dumps({"start_ns": self._outage_start_ns}))
            except OSError as err:
                log.error("redis outreach spool %s: outage start not recorded (%s)",
                          self._spool, err)
        if self._retry_thread is None or not self._retry_thread.is_alive():
            self._retry_thread = threading.Thread(target=self._retry_loop, daemon=True,
                                                  name="vitalstream-redis-retry")
            self._retry_thread.start()

    def _take(self) -> tuple[str, list, _SpoolFile | None] | None:
        """The next batch of the backlog (lock held), or None when it is empty."""
        for kind in (ALERTS, DEAD_LETTERS, QUARANTINE):  # alerts matter most: first
            q = self._backlog[kind]
            if not q:
                continue
            if self._spool is None:
                batch = [q.popleft() for _ in range(min(_BATCH, len(q)))]
                self._in_flight = len(batch)
                return kind, batch, None
            while q:
                f = q.popleft()
                try:
                    with open(f.path, encoding="utf-8") as fh:
                        batch = [_decode(kind, line) for line in fh if line.strip()]
                except FileNotFoundError:  # another writer on this directory delivered it
                    self._spool_bytes -= f.nbytes
                    continue
                self._in_flight = f.count
                return kind, batch, f
        return None

    def _put_back(self, kind: str, batch: list, f: _SpoolFile | None) -> None:
        if f is None:
            self._backlog[kind].extendleft(reversed(batch))  # back in front, in order
        else:
            self._backlog[kind].appendleft(f)

    def _end_outage(self) -> None:
        """Lock held: the backlog is out."""
        log.warning("redis back after %.1f s: outreach backlog delivered",
                    time.monotonic() - self._outage_started)
        self._in_outage = False
        if self._spool is not None:
            (self._spool / "outage.json").unlink(missing_ok=True)

    def _drain_once(self) -> bool:
        """Deliver the backlog; True once it is empty and the outage is over."""
        while True:
            announced = None
            with self._lock:
                nxt = self._take()
                if nxt is None:
                    if self._in_outage and self.announce_outage and not self._announced:
                        # Last in line, so it says the backlog is out; held like any alert,
                        # so a failure now keeps it (and the outage) for the next attempt.
                        self._announced = True
                        announced = self._outage_alert(time.time_ns())
                        self._hold(ALERTS, [announced])
                    else:
                        if self._in_outage:
                            self._end_outage()
                        return True
            if announced is not None:
                if self.on_outage_alert is not None:
                    self.on_outage_alert(announced)
                continue
            kind, batch, f = nxt
            try:
                self._send(kind, batch)  # outside the lock: the flow only queues meanwhile
            except redis.RedisError as exc:
                with self._lock:
                    self._put_back(kind, batch, f)
                    self._in_flight = 0
                    self.failed_attempts += 1
                    self._hold(kind, [])  # re-apply the bound (items arrived meanwhile)
                if not is_outage(exc):
                    log.error("redis refused outreach items (%s); still retrying", exc)
                return False
            with self._lock:
                if f is not None:  # written: only now may the file go
                    f.path.unlink(missing_ok=True)
                    self._spool_bytes -= f.nbytes
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
                held = {k: (sum(f.count for f in q) if self._spool is not None else len(q))
                        for k, q in self._backlog.items()}
            if self._spool is not None:
                log.error("redis still unavailable at close: %s outreach items left in %s for "
                          "the next start", held, self._spool)
            else:
                log.error("redis still unavailable at close: %s outreach items lost", held)
        self._closing.set()
        if self._retry_thread is not None:
            self._retry_thread.join(timeout_s)
        self.r.close()
