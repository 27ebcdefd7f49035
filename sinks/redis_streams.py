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
"""

from __future__ import annotations

import json
import logging
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


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    alerts_stream: str = "vitalstream:alerts"
    deadletter_stream: str = "vitalstream:deadletter"
    quarantine_stream: str = "vitalstream:quarantine"
    maxlen: int = 1_000_000
    dedup_ttl_s: int = 30 * 86_400


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), 8),
        retry_on_error=[RedisConnectionError, RedisTimeoutError], health_check_interval=30)


class RedisOutreach:
    def __init__(self, cfg: RedisConfig, client: redis.Redis | None = None) -> None:
        self.cfg = cfg
        self.r = client or connect(cfg.url)
        self._add_once = self.r.register_script(_ADD_ONCE)
        self.alerts_added = 0
        self.alerts_suppressed = 0

    def write_alerts(self, alerts: Iterable[Alert]) -> int:
        """XADD each alert event unless its event_id was already added; returns how many were new."""
        alerts = list(alerts)
        if not alerts:
            return 0
        cfg = self.cfg
        pipe = self.r.pipeline(transaction=False)
        for a in alerts:
            flat: list[str] = []
            for k, v in a.to_fields().items():
                flat += [k, v]
            self._add_once(keys=[f"{cfg.alerts_stream}:seen:{a.event_id}", cfg.alerts_stream],
                           args=[cfg.dedup_ttl_s, cfg.maxlen, *flat], client=pipe)
        added = sum(1 for res in pipe.execute() if res)
        self.alerts_added += added
        self.alerts_suppressed += len(alerts) - added
        return added

    def write_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for d in letters:
            pipe.xadd(self.cfg.deadletter_stream, d.to_fields(), maxlen=self.cfg.maxlen,
                      approximate=True)
            n += 1
        if n:
            pipe.execute()

    def write_quarantine(self, items: Iterable[dict]) -> None:
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for q in items:
            pipe.xadd(self.cfg.quarantine_stream, {"reading": json.dumps(q)},
                      maxlen=self.cfg.maxlen, approximate=True)
            n += 1
        if n:
            pipe.execute()

    def ensure_group(self, group: str, stream: str | None = None) -> None:
        try:
            self.r.xgroup_create(stream or self.cfg.alerts_stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def close(self) -> None:
        self.r.close()
