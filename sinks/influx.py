"""InfluxDB writer: influxdb-client v2 write API, line protocol batches, retries, spool.

Works with InfluxDB 2.x and anything that serves ``/api/v2/write`` (VictoriaMetrics
in the tests). What a failed write means depends on the answer:

- **Refused for good**: a 4xx about the points themselves (400 bad line protocol
  or field type conflict, 413 too large, 422 outside retention...). Retrying the
  same body can never succeed, and one bad point must not hold back the others:
  the batch is split in halves until every refused point is alone, the rest is
  stored, and the refused points come back in ``WriteReport.rejected`` for the
  caller to dead-letter. 413 splits the same way, so a batch too large is not
  refused whole.
- **Outage**: no answer (connection refused or reset, timeout), a 5xx, or a 4xx
  that is about the request rather than its points (401/403 credentials, 404 no
  such bucket, 408, 429 rate limit...). A batch is tried ``max_retries`` times
  with exponential backoff; then it goes to the spool and the writer enters
  outage mode, where batches go straight to the spool (so the flow is not
  stalled by timeouts) and the server is probed every ``probe_interval_s``;
  when it answers, the spool is replayed first, in order. A replayed batch that
  the server refuses for good is split and dead-lettered like a fresh one, so
  the replay never stops at it.

Splitting costs about two requests per refused point and halving level
(``2 k log2 n`` for ``k`` bad points in ``n``); the common case, a batch stored
whole, is one request. Re-sending points already stored while splitting is
harmless: InfluxDB overwrites a point with the same series and time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from vitalstream.errors import SinkError
from vitalstream.sinks.lineproto import line_measurement
from vitalstream.sinks.spool import Spool

log = logging.getLogger(__name__)

# 4xx answers that say nothing about the points: the request as a whole was refused
# (credentials, a missing bucket or a wrong URL, a timeout, a rate limit). Splitting
# would see every single point refused and dead-letter a whole fleet's data over an
# expired token; instead the points wait in the spool, as in an outage, until the
# cause is fixed.
NOT_ABOUT_THE_POINTS = frozenset({401, 403, 404, 405, 407, 408, 425, 429})
MAX_DETAIL = 1000  # characters of the server's message kept with a refused point


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    token: str = ""
    org: str = "vitalstream"
    bucket: str = "vitals"
    timeout_ms: int = 10_000
    max_retries: int = 3
    backoff_s: float = 0.2
    probe_interval_s: float = 5.0
    spool_dir: str = "./vitalstream-data/spool"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A point the store refused for good, with the server's answer."""

    line: str
    status: int
    detail: str
    index: int | None  # its position in the write_lines call; None when it came from the spool


@dataclass(slots=True)
class WriteReport:
    """What became of the points of one ``write_lines`` (or ``flush_spool``) call.

    Points are dealt with in order, so the spooled ones are always the tail of the
    batch: ``lines[total - spooled:]``. Every point of the call is either stored,
    spooled or rejected. ``rejected`` also holds spooled points of earlier calls
    refused while the spool was replayed (``index`` None), and ``replayed`` counts,
    by measurement, the spooled points of earlier calls the store confirmed now.
    """

    total: int = 0
    stored: int = 0
    spooled: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    replayed: dict[str, int] = field(default_factory=dict)


class _Down(Exception):
    """The store did not take a body within the attempts allowed (outage)."""


def refusal(exc: BaseException) -> tuple[int, str] | None:
    """``(status, server message)`` when ``exc`` is a refusal of the points for good,
    None when it means an outage (see the module doc)."""
    status = getattr(exc, "status", None)
    if not (isinstance(exc, InfluxDBError) and isinstance(status, int) and 400 <= status < 500
            and status not in NOT_ABOUT_THE_POINTS):
        return None
    msg = getattr(exc, "message", None) or getattr(exc, "reason", None) or ""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return status, str(msg)[:MAX_DETAIL]


def describe(exc: BaseException) -> str:
    """One line for a log: the status and message of an HTTP answer, else the error."""
    status = getattr(exc, "status", None)
    if isinstance(exc, InfluxDBError) and status is not None:
        msg = getattr(exc, "message", "")
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        return f"HTTP {status}: {str(msg)[:200]}"
    return repr(exc)


class InfluxWriter:
    def __init__(self, cfg: InfluxConfig, *, sleep=time.sleep, monotonic=time.monotonic) -> None:
        self.cfg = cfg
        self._client = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                      timeout=cfg.timeout_ms)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self.spool = Spool(cfg.spool_dir)
        self._sleep = sleep
        self._monotonic = monotonic
        self._outage_since: float | None = None
        self._last_probe = 0.0
        self.points_written = 0  # confirmed by the store, fresh or replayed
        self.points_spooled = 0
        self.points_rejected = 0
        self.batches_spooled = 0
        self.errors = 0  # failed attempts that meant an outage (not refusals)
        if len(self.spool):
            self._outage_since = monotonic()  # replay leftovers of a previous run first

    def _post(self, body: str) -> None:
        self._api.write(bucket=self.cfg.bucket, org=self.cfg.org, record=body,
                        write_precision=WritePrecision.NS)

    def _send(self, body: str, attempts: int) -> tuple[int, str] | None:
        """None when stored, ``(status, message)`` when refused for good; _Down otherwise."""
        delay = self.cfg.backoff_s
        for attempt in range(attempts):
            try:
                self._post(body)
                return None
            except Exception as exc:  # urllib3/ApiException/timeouts: sorted by refusal()
                refused = refusal(exc)
                if refused is not None:
                    return refused
                self.errors += 1
                log.warning("influx write failed (attempt %d): %s", attempt + 1, describe(exc))
                if attempt + 1 < attempts:
                    self._sleep(delay)
                    delay *= 2
        raise _Down()

    def _resolve(self, lines: list[str], attempts: int, stored: Callable[[int, int], None],
                 rejected: Callable[[int, tuple[int, str]], None]) -> int:
        """Store ``lines``, splitting what is refused until each refused point is alone.

        Calls ``stored(lo, hi)`` for each stored slice and ``rejected(i, refusal)``
        for each refused point. Returns the index of the first point left unsent by
        an outage (``len(lines)`` when none): slices are tried left to right, so
        what is left is always a tail.
        """
        todo = [(0, len(lines))]
        while todo:
            lo, hi = todo.pop()
            try:
                refused = self._send("\n".join(lines[lo:hi]), attempts)
            except _Down:
                return lo
            if refused is None:
                self.points_written += hi - lo
                stored(lo, hi)
            elif hi - lo == 1:
                self.points_rejected += 1
                log.warning("influx refused a point for good (%d %s): %.300s",
                            refused[0], refused[1], lines[lo])
                rejected(lo, refused)
            else:
                mid = (lo + hi) // 2
                todo.append((mid, hi))
                todo.append((lo, mid))  # popped first: left to right
        return len(lines)

    def _replay_batch(self, body: str, rep: WriteReport) -> str:
        """Store one spooled batch; what is left of it when the server went away again."""
        lines = [line for line in body.split("\n") if line]

        def stored(lo: int, hi: int) -> None:
            for line in lines[lo:hi]:
                m = line_measurement(line)
                rep.replayed[m] = rep.replayed.get(m, 0) + 1

        def rejected(i: int, refused: tuple[int, str]) -> None:
            rep.rejected.append(Rejected(lines[i], refused[0], refused[1], None))

        # One attempt: this is a probe, the next one comes probe_interval_s later.
        start = self._resolve(lines, 1, stored, rejected)
        return "\n".join(lines[start:])

    def _recover(self, rep: WriteReport) -> bool:
        """In outage: probe at most every probe_interval_s; replay the spool when back."""
        now = self._monotonic()
        if now - self._last_probe < self.cfg.probe_interval_s:
            return False
        self._last_probe = now
        try:
            self.spool.replay(lambda body: self._replay_batch(body, rep))
        except OSError as exc:  # the spool itself: stay in outage, append raises if it persists
            log.error("influx spool replay failed: %s", exc)
            return False
        if len(self.spool):
            log.warning("influx still unavailable; %d spooled batches wait", len(self.spool))
            return False
        log.info("influx back after %.1f s; spool replayed", now - (self._outage_since or now))
        self._outage_since = None
        return True

    def write_lines(self, lines: list[str]) -> WriteReport:
        """Store ``lines`` or spool them; returns only when each point is stored,
        durable in the spool, or refused for good (in the report, to dead-letter)."""
        rep = WriteReport(total=len(lines))
        if not lines:
            return rep
        start = 0
        if self._outage_since is None or self._recover(rep):
            def stored(lo: int, hi: int) -> None:
                rep.stored += hi - lo

            def rejected(i: int, refused: tuple[int, str]) -> None:
                rep.rejected.append(Rejected(lines[i], refused[0], refused[1], i))

            start = self._resolve(lines, self.cfg.max_retries, stored, rejected)
            if start == len(lines):
                return rep
            self._outage_since = self._monotonic()
            self._last_probe = self._outage_since
        tail = lines[start:]
        try:
            self.spool.append("\n".join(tail))
        except OSError as exc:
            raise SinkError("influx", None, "spool_failed", repr(exc)) from exc
        self.batches_spooled += 1
        self.points_spooled += len(tail)
        rep.spooled = len(tail)
        return rep

    @property
    def in_outage(self) -> bool:
        return self._outage_since is not None

    def flush_spool(self) -> WriteReport:
        """Try to drain the spool now (used at shutdown); refused points are in the report."""
        rep = WriteReport()
        if len(self.spool):
            self._last_probe = float("-inf")
            self._recover(rep)
        return rep

    def close(self) -> None:
        self._api.close()
        self._client.close()
