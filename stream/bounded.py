"""Run the real pipeline against real services for a bounded input (tests, demo, benchmarks).

``PipelineRun`` starts ``Pipeline`` in a thread with ``idle_stop_s`` (the input
ends after that much silence), waits until its MQTT subscription is granted,
lets the caller publish, and joins. Each run gets its own client id and stream
names, so runs can share one broker and one Redis.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from vitalstream.stream import settings as config
from vitalstream.stream.settings import Settings
from vitalstream.errors import VitalstreamError
from vitalstream.stream.app import Pipeline


def settings_for(mqtt_url: str, redis_url: str, influx_url: str, spool_dir: str | Path, *,
                 tag: str | None = None, **pipeline: Any) -> Settings:
    """Settings for a private run: unique client id and Redis stream names per ``tag``, and
    no durable state unless ``state_dir`` is given (runs must not resume each other)."""
    pipeline.setdefault("state_dir", None)
    tag = tag or uuid.uuid4().hex[:8]
    s = config.load(env={}, overrides={("mqtt", "url"): mqtt_url, ("redis", "url"): redis_url,
                                       ("influx", "url"): influx_url,
                                       ("influx", "spool_dir"): str(spool_dir),
                                       ("redis", "spool_dir"): str(spool_dir)})
    return dataclasses.replace(
        s,
        mqtt=dataclasses.replace(s.mqtt, client_id=f"vs-{tag}"),
        redis=dataclasses.replace(s.redis, alerts_stream=f"{tag}:alerts",
                                  deadletter_stream=f"{tag}:deadletter",
                                  quarantine_stream=f"{tag}:quarantine"),
        pipeline=dataclasses.replace(s.pipeline, metrics_port=None, **pipeline))


class PipelineRun:
    def __init__(self, settings: Settings, *, idle_stop_s: float = 3.0, **kw: Any) -> None:
        self.pipeline = Pipeline(settings, idle_stop_s=idle_stop_s, **kw)
        self.totals: dict[str, int] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vitalstream-pipeline", daemon=True)

    def _run(self) -> None:
        try:
            self.totals = self.pipeline.run(install_signals=False)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self, timeout_s: float = 15.0) -> "PipelineRun":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            receivers = list(self.pipeline.live.receivers)
            if receivers and all(r.subscribed.is_set() for r in receivers):
                return self
            if self.error is not None:
                raise self.error
            time.sleep(0.02)
        raise VitalstreamError("harness", None, "not_subscribed",
                               f"pipeline did not subscribe within {timeout_s} s")

    def join(self, timeout_s: float = 120.0) -> dict[str, int]:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.pipeline.request_stop()
            self._thread.join(10)
            raise VitalstreamError("harness", None, "timeout", f"pipeline still running after {timeout_s} s")
        if self.error is not None:
            raise self.error
        assert self.totals is not None
        return self.totals

    def __enter__(self) -> "PipelineRun":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.pipeline.request_stop()
            self._thread.join(30)
