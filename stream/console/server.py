"""Building the console from settings, and running it on uvicorn (in the foreground for
``vitalstream console``, on a thread for ``vitalstream demo`` and the tests)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from vitalstream.sinks.alarm_state import RedisAlarmState
from vitalstream.sinks.lineproto import window_measurement
from vitalstream.stream.console.app import Console, create_app
from vitalstream.stream.console.auth import Accounts
from vitalstream.stream.console.cohorts import Cohorts
from vitalstream.stream.console.live import LiveFeed
from vitalstream.stream.console.profiles import Profiles
from vitalstream.stream.console.views import Views

log = logging.getLogger(__name__)


def prefix(settings: Any) -> str:
    from vitalstream.stream.alarms import prefix_of

    return prefix_of(settings.redis.alerts_stream)


def accounts(settings: Any, client: Any = None) -> Accounts:
    from vitalstream.sinks.redis_streams import connect

    c = settings.console
    return Accounts(client or connect(settings.redis.url), prefix(settings),
                    session_ttl_s=c.session_ttl_s, max_failures=c.login_max_failures,
                    window_s=c.login_window_s)


class _Deferred:
    """A reader whose store did not answer when the console started: it asks again on use,
    so a console started before its store still comes up (alarms need only Redis)."""

    def __init__(self, make) -> None:
        self._make, self._reader = make, None

    def __getattr__(self, name: str):
        if self._reader is None:
            self._reader = self._make()
        return getattr(self._reader, name)


def reader(settings: Any) -> Any:
    from vitalstream.stream.console.series import SeriesError, reader_for

    i, c = settings.influx, settings.console

    def make():
        return reader_for(i.url, kind=c.series, database=c.database or i.bucket, token=i.token)

    try:
        return make()
    except SeriesError as exc:
        log.warning("console: series store not answering (%s); will ask again on use", exc)
        return _Deferred(make)


CONFIGURED = object()


def build(settings: Any, *, client: Any = None, series: Any = CONFIGURED, live: bool = True,
          instance: str | None = None) -> Console:
    """The console's parts from settings (``series``: a reader to use instead of the
    configured store's; None: no series, the ward shows alarms only)."""
    from vitalstream.sinks.redis_streams import connect
    from vitalstream.stream import assembly

    r = client or connect(settings.redis.url)
    p = prefix(settings)
    alarms = RedisAlarmState(r, p)
    cohorts = Cohorts(r, p)
    lifecycle = assembly.lifecycle(settings)
    views = Views(alarms, cohorts, reader(settings) if series is CONFIGURED else series,
                  lifecycle=lifecycle, stale_after_s=settings.console.stale_after_s,
                  window_measurement=window_measurement(
                      round(settings.pipeline.window_size_s * 1e9)))
    c = settings.console
    name = instance or c.instance or f"{socket.gethostname()}:{c.port}"
    feed = LiveFeed(r, p, instance=name) if live else None
    return Console(accounts(settings, r), cohorts, alarms, views, feed, lifecycle,
                   profiles=profiles(r, cohorts))


def profiles(client: Any, cohorts: Cohorts) -> Profiles:
    """The care stage's profile store and the person registry, under their own prefixes
    (the care stage's and the CLI's: ``vitalstream``), whatever the alarms' prefix."""
    from vitalstream.connectors.persons import PersonRegistry
    from vitalstream.sinks.profiles import ProfileStore

    return Profiles(ProfileStore(client), PersonRegistry(client), cohorts)


class ConsoleServer:
    """The app on uvicorn in a background thread: ``start()`` returns once it answers."""

    def __init__(self, console: Console, host: str = "127.0.0.1", port: int = 0) -> None:
        self.console = console
        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        config = uvicorn.Config(create_app(console), host=host, port=port, log_level="warning",
                                timeout_graceful_shutdown=2, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "ConsoleServer":
        if self.console.feed is not None:
            self.console.feed.start()
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"console did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        if self.console.feed is not None:
            self.console.feed.stop()

    def __enter__(self) -> "ConsoleServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(console: Console, host: str, port: int) -> None:
    """``vitalstream console``: in the foreground until Ctrl-C."""
    if console.feed is not None:
        console.feed.start()
    try:
        uvicorn.run(create_app(console), host=host, port=port, log_level="info",
                    timeout_graceful_shutdown=2)
    finally:
        if console.feed is not None:
            console.feed.stop()
