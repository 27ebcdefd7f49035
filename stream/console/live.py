"""Live updates: the outreach and audit streams, fanned out to every open screen.

One thread per console process reads ``<prefix>:outreach`` (what the lifecycle sends) and
``<prefix>:audit`` (who did what) with its own consumer group, blocking in XREADGROUP, so
an event reaches the browsers as soon as Redis has it, with no polling anywhere. Each
process has its own group (``vitalstream-console:<instance>``): every process must see
every event, since each serves its own browsers. The group starts at "now" on every start:
a screen that (re)connects fetches the current alarms, it does not replay history.

Subscribers are asyncio queues (one per server-sent-events connection), each with the
predicate of what its user may see; a slow screen's queue is bounded and its oldest
events are dropped rather than holding the others back (it re-fetches on the next one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Callable

import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    kind: str  # notice | audit
    patient: str
    data: dict


@dataclass(eq=False)
class Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    sees: Callable[[Event], bool]  # may this screen's user see the event


class LiveFeed:
    def __init__(self, client: redis.Redis, prefix: str = "vitalstream",
                 instance: str | None = None, block_ms: int = 1000) -> None:
        self.r = client
        self.streams = {f"{prefix}:outreach": "notice", f"{prefix}:audit": "audit"}
        self.group = f"vitalstream-console:{instance or socket.gethostname()}"
        self.block_ms = block_ms
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-live", daemon=True)
        self.delivered = 0

    def start(self) -> "LiveFeed":
        for s in self.streams:
            try:
                self.r.xgroup_destroy(s, self.group)  # a previous run's: start at now
            except redis.ResponseError:
                pass
            self.r.xgroup_create(s, self.group, id="$", mkstream=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.block_ms / 1000 + 2)
        for s in self.streams:
            try:
                self.r.xgroup_destroy(s, self.group)
            except redis.RedisError:
                pass

    def subscribe(self, sees: Callable[[Event], bool], maxsize: int = 256) -> Subscriber:
        sub = Subscriber(asyncio.get_running_loop(), asyncio.Queue(maxsize), sees)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def _run(self) -> None:
        wait = 0.5
        while not self._stop.is_set():
            try:
                got = self.r.xreadgroup(self.group, "console", {s: ">" for s in self.streams},
                                        count=500, block=self.block_ms) or []
                wait = 0.5
            except redis.RedisError as exc:  # Redis away: screens keep what they have
                log.warning("console live feed: %r", exc)
                self._stop.wait(wait)
                wait = min(wait * 2, 10.0)
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    self._recreate()
                continue
            for stream, entries in got:
                name = stream.decode()
                kind = self.streams[name]
                for entry, fields in entries:
                    self._publish(_event(kind, fields))
                if entries:
                    self.r.xack(name, self.group, *[e for e, _ in entries])

    def _recreate(self) -> None:
        for s in self.streams:
            try:
                self.r.xgroup_create(s, self.group, id="$", mkstream=True)
            except redis.ResponseError:
                pass

    def _publish(self, ev: Event | None) -> None:
        if ev is None:
            return
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.sees(ev):
                sub.loop.call_soon_threadsafe(_offer, sub.queue, ev)
                self.delivered += 1


def _offer(q: asyncio.Queue, ev: Event) -> None:
    if q.full():
        q.get_nowait()  # this screen is behind: it loses the oldest, not the newest
    q.put_nowait(ev)


def _event(kind: str, fields: dict[bytes, bytes]) -> Event | None:
    d = {k.decode(): v.decode() for k, v in fields.items()}
    if kind == "notice":
        try:
            msg = json.loads(d["message"])
        except (KeyError, ValueError):
            return None
        return Event(kind, msg.get("patient", ""), msg)
    if "patient" not in d:
        return None
    for k in ("event_ns",):
        if d.get(k, "").isdigit():
            d[k] = int(d[k])
    return Event(kind, d["patient"], d)


def sse(ev: Event) -> str:
    """One server-sent event.

    >>> sse(Event("notice", "p1", {"alert_id": "a1"}))
    'event: notice\\ndata: {"alert_id": "a1"}\\n\\n'
    """
    return f"event: {ev.kind}\ndata: {json.dumps(ev.data)}\n\n"
