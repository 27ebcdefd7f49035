"""Services, store counts and the alert clock for pipeline_bench.py."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import redis
from vitalstream.stream.embedded import Mosquitto, VictoriaMetrics

# Unlimited per-client queue: a consumer that falls behind (or is offline for the
# drain test) must not lose messages at the broker, or "loss" would measure
# mosquitto's default of 1000 instead of the consumer.
BROKER_CONFIG = "max_queued_messages 0\nmax_queued_bytes 0\n"


def broker(max_inflight: int | None) -> Mosquitto:
    extra = BROKER_CONFIG
    if max_inflight is not None:
        extra += f"max_inflight_messages {max_inflight}\n"
    return Mosquitto(extra_config=extra)


class BenchVictoriaMetrics(VictoriaMetrics):
    """VictoriaMetrics whose queries see the newest points at once (no 30 s latency offset, no cache)."""

    def _command(self) -> list[str]:
        return super()._command() + ["-search.latencyOffset=0s", "-search.disableCache"]

    def query_scalar(self, promql: str, at_s: float) -> float:
        qs = urllib.parse.urlencode({"query": promql, "time": f"{at_s:.3f}", "nocache": "1"})
        status, body = self._http("GET", f"/api/v1/query?{qs}")
        if status != 200:
            raise RuntimeError(f"VM query {promql}: {status} {body[:200]!r}")
        res = json.loads(body)["data"]["result"]
        return float(res[0]["value"][1]) if res else 0.0

    def count_between(self, metric: str, start_s: float, end_s: float) -> int:
        """Samples of ``metric`` with start_s <= t <= end_s (ms resolution)."""
        self.flush()
        span_ms = int((end_s - start_s) * 1000) + 2
        return int(self.query_scalar(f"sum(count_over_time({metric}[{span_ms}ms]))", end_s + 0.001))

    def sum_between(self, metric: str, start_s: float, end_s: float) -> float:
        self.flush()
        span_ms = int((end_s - start_s) * 1000) + 2
        return self.query_scalar(f"sum(sum_over_time({metric}[{span_ms}ms]))", end_s + 0.001)


@dataclass
class AlertArrival:
    arrival_ns: int
    event_ns: int
    state: str


@dataclass
class AlertReader:
    """Stamps the wall time at which each alert entry shows up in the Redis stream (XREAD BLOCK)."""

    url: str
    stream: str = "vitalstream:alerts"
    arrivals: list[AlertArrival] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="alert-reader")
        self._thread.start()

    def _run(self) -> None:
        r = redis.Redis.from_url(self.url)
        last = "0-0"
        while not self._stop.is_set():
            got = r.xread({self.stream: last}, count=10_000, block=200)
            now = time.time_ns()
            for _, entries in got or ():
                for entry_id, fields in entries:
                    last = entry_id
                    self.arrivals.append(AlertArrival(now, int(fields[b"event_ns"]),
                                                      fields[b"state"].decode()))

    def firing_between(self, start_ns: int, end_ns: int) -> list[AlertArrival]:
        return [a for a in list(self.arrivals)
                if a.state == "firing" and start_ns <= a.event_ns <= end_ns]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]
