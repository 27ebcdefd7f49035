"""InfluxDB writer: influxdb-client v2 write API, line protocol batches, retries, spool.

Works with InfluxDB 2.x and anything that serves ``/api/v2/write`` (VictoriaMetrics
in the tests). A batch is tried ``max_retries`` times with exponential backoff;
then it goes to the spool and the writer enters outage mode, where batches go
straight to the spool (so the flow is not stalled by timeouts) and the server is
probed every ``probe_interval_s``; when it answers, the spool is replayed first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from vitalstream.errors import SinkError
from vitalstream.sinks.spool import Spool

log = logging.getLogger(__name__)


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
        self.points_written = 0
        self.batches_spooled = 0
        self.errors = 0
        if len(self.spool):
            self._outage_since = monotonic()  # replay leftovers of a previous run first

    def _post(self, body: str) -> None:
        self._api.write(bucket=self.cfg.bucket, org=self.cfg.org, record=body,
                        write_precision=WritePrecision.NS)

    def _try(self, body: str) -> bool:
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.max_retries):
            try:
                self._post(body)
                return True
            except Exception as exc:  # urllib3/ApiException/timeouts: all mean "not written"
                self.errors += 1
                log.warning("influx write failed (attempt %d): %s", attempt + 1, exc)
                if attempt + 1 < self.cfg.max_retries:
                    self._sleep(delay)
                    delay *= 2
        return False

    def _recover(self) -> bool:
        """In outage: probe at most every probe_interval_s; replay the spool when back."""
        now = self._monotonic()
        if now - self._last_probe < self.cfg.probe_interval_s:
            return False
        self._last_probe = now
        try:
            self.spool.replay(self._post)
        except Exception as exc:
            log.warning("influx still unavailable: %s", exc)
            return False
        log.info("influx back after %.1f s; spool replayed", now - (self._outage_since or now))
        self._outage_since = None
        return True

    def write_lines(self, lines: list[str]) -> None:
        """Store ``lines`` or spool them; returns only when one of the two is durable."""
        if not lines:
            return
        body = "\n".join(lines)
        if self._outage_since is None or self._recover():
            if self._try(body):
                self.points_written += len(lines)
                return
            self._outage_since = self._monotonic()
            self._last_probe = self._outage_since
        try:
            self.spool.append(body)
        except OSError as exc:
            raise SinkError("influx", None, "spool_failed", repr(exc)) from exc
        self.batches_spooled += 1

    @property
    def in_outage(self) -> bool:
        return self._outage_since is not None

    def flush_spool(self) -> None:
        """Try to drain the spool now (used at shutdown)."""
        if len(self.spool):
            self._last_probe = 0.0
            self._recover()

    def close(self) -> None:
        self._api.close()
        self._client.close()
