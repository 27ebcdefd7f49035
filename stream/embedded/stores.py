"""Time-series stores on free ports for tests: VictoriaMetrics (InfluxDB v2 write
API in, JSON export out) and InfluxDB 1.x (InfluxQL, for the Grafana queries).
Process handling is ``services.Service``."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

from vitalstream.stream.embedded.services import Service, ServiceError, ServiceTimeout, free_port

class VictoriaMetrics(Service):
    """VictoriaMetrics single node: InfluxDB line protocol in, JSON-lines export out.

    Name mapping of line protocol (checked by tests/test_services.py on 1.79.5):

    - metric name is ``{measurement}_{field}`` (``vitals value=72`` -> ``vitals_value``,
      ``vitals_1m count=3i,mean=1.5`` -> ``vitals_1m_count`` and ``vitals_1m_mean``);
    - tags become labels unchanged; the v2 ``bucket``/``org`` arguments are dropped
      (no ``db`` label is added on ``/api/v2/write``);
    - integer and float fields are stored as float64; ``true`` becomes 1 and a
      string field becomes 0 (it is not rejected: string data is silently lost);
    - timestamps are kept in milliseconds: a ns timestamp is truncated
      (``1700000000123456789`` -> ``1700000000123``).

    Ingested rows sit in an in-memory buffer for up to about a second before
    search sees them; ``flush()`` (``/internal/force_flush``) makes them
    exportable at once, and ``export`` always flushes first.
    """

    name = "victoria-metrics"
    binary_env = "VITALSTREAM_VICTORIA_METRICS_BIN"
    binary_path = "/usr/bin/victoria-metrics"
    scheme = "http"

    def _command(self) -> list[str]:
        return [self.binary, f"-httpListenAddr={self.host}:{self.port}",
                f"-storageDataPath={self.dir}/data", "-retentionPeriod=100y"]

    def _ready(self) -> bool:
        return self._http("GET", "/health", timeout_s=1.0)[0] == 200

    def flush(self) -> None:
        status, body = self._http("GET", "/internal/force_flush")
        if status != 200:
            raise ServiceError("service", None, "flush_failed", f"{status}: {body[:200]!r}")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Parsed lines of ``/api/v1/export?match[]=<match>``: {"metric", "values", "timestamps"}.

        ``match`` is a series selector, e.g. ``vitals_value{patient="p1"}``. Everything
        stored is exported, the last seconds and future timestamps included: without an
        ``end`` VictoriaMetrics leaves out points stamped about now or later.
        """
        self.flush()
        end_s = int(time.time()) + 86_400
        status, body = self._http("GET", "/api/v1/export?" + urllib.parse.urlencode(
            {"match[]": match, "end": str(end_s)}))
        if status != 200:
            raise ServiceError("service", None, "export_failed", f"{status}: {body[:300]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def wait_for_points(self, match: str, n: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Export ``match`` until it holds at least ``n`` samples in total; the last export."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.export(match)
            found = sum(len(r["values"]) for r in rows)
            if found >= n:
                return rows
            if time.monotonic() > deadline:
                raise ServiceTimeout("service", None, "points_missing",
                                     f"{match}: {found} of {n} samples after {timeout_s} s")
            time.sleep(0.05)


class InfluxDB1(Service):
    """InfluxDB 1.x (``influxd``) with HTTP and the backup RPC port both on free ports.

    Used to check the InfluxQL that the Grafana dashboard sends.
    """

    name = "influxdb1"
    binary_env = "VITALSTREAM_INFLUXD_BIN"
    binary_path = "/usr/bin/influxd"
    scheme = "http"

    def __init__(self, workdir: str | Path | None = None, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.rpc_port = 0

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()

    def _prepare(self) -> None:
        assert self.dir is not None
        if not self.rpc_port:
            self.rpc_port = free_port()
        d = self.dir
        (d / "influxdb.conf").write_text(f"""\
reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
[logging]
  suppress-logo = true
""")

    def _env(self) -> dict[str, str]:
        # influxd lets INFLUXDB_* variables override every config key (e.g. the HTTP port).
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.dir / "influxdb.conf")]

    def _ready(self) -> bool:
        return self._http("GET", "/ping", timeout_s=1.0)[0] == 204

    def query(self, influxql: str, db: str | None = None, *, epoch: str = "ns") -> dict[str, Any]:
        """Raw JSON answer of ``/query``; a statement error raises ServiceError."""
        params = {"q": influxql, "epoch": epoch}
        if db is not None:
            params["db"] = db
        status, body = self._http("POST", "/query", urllib.parse.urlencode(params).encode())
        answer = json.loads(body or b"{}")
        errors = [answer.get("error")] + [r.get("error") for r in answer.get("results", [])]
        errors = [e for e in errors if e]
        if status != 200 or errors:
            raise ServiceError("service", None, "influxql_error", f"{influxql}: {status} {errors}")
        return answer

    def select(self, influxql: str, db: str) -> list[dict[str, Any]]:
        """Rows of every series of the first statement, as dicts with the series
        ``name``, its group-by tags and one key per column."""
        rows: list[dict[str, Any]] = []
        for series in self.query(influxql, db)["results"][0].get("series", []):
            head = {"name": series["name"], **series.get("tags", {})}
            rows += [{**head, **dict(zip(series["columns"], values))} for values in series["values"]]
        return rows

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def write(self, lines: str | Iterable[str], db: str, precision: str = "ns") -> None:
        body = lines if isinstance(lines, str) else "\n".join(lines)
        qs = urllib.parse.urlencode({"db": db, "precision": precision})
        status, answer = self._http("POST", f"/write?{qs}", body.encode())
        if status != 204:
            raise ServiceError("service", None, "write_failed", f"{status}: {answer[:300]!r}")
