"""A care-team tool's side of the outreach stream: a Redis consumer group, at-least-once.

A pager gateway, SMS sender or EHR inbox reads ``<prefix>:outreach`` (field ``message``,
JSON following ``outreach-v1.schema.json``) like this::

    consumer = OutreachConsumer(redis.Redis(), "vitalstream:outreach", "pager", "pager-1")
    consumer.ensure_group()
    consumer.run(send_page)          # send_page(msg) raises to have msg delivered again

**At-least-once.** An entry is acknowledged (``XACK``) only after the handler returned, so
a consumer that crashes mid-way leaves it pending and it is delivered again: to the same
consumer name on restart (its own pending entries come first), or to any consumer of the
group once it has been idle for ``claim_idle_ms`` (``XAUTOCLAIM``). A handler can therefore
see a message twice and must be idempotent on ``(alert_id, reason, event_ns)``: those three
identify one notice (a re-notification has its own ``event_ns``).

**Poison.** A message that is not JSON or fails the schema, that made the handler raise on
its ``max_deliveries``-th delivery, or that has been delivered more often than that without
an ack (it keeps killing the consumer) goes to ``<stream>:dead`` with the error and is
acknowledged in the same transaction, so it cannot hold up the messages behind it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import jsonschema
import redis

from vitalstream.sinks.alarm_state import outreach_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutreachMessage:
    entry_id: str
    message: dict[str, Any]  # the decoded ``message`` field ({} if it could not be decoded)
    deliveries: int  # times Redis has delivered this entry to the group, this time included
    error: str | None = field(default=None)  # why it is poison (undecodable, off schema)


class OutreachConsumer:
    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, *,
                 claim_idle_ms: int = 60000, schema_check: bool = True,
                 schema: dict | None = None) -> None:
        self.r, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.dead_stream = f"{stream}:dead"
        self.claim_idle_ms = claim_idle_ms
        # schema: the messages' JSON Schema (default: alarm outreach; nudge_schema() for
        # the nudge stream)
        self._validator = (jsonschema.Draft202012Validator(schema or outreach_schema())
                           if schema_check else None)
        # Our own pending list is read once after a (re)start, page by page: re-reading it on
        # every poll would retry a failing handler at once, instead of after claim_idle_ms.
        self._history: str | None = "0"
        # XAUTOCLAIM scans at most 10 x count PEL entries per call: the cursor carries on.
        self._claim_cursor = "0-0"

    def ensure_group(self, start_id: str = "0") -> None:
        """Create the group (and the stream). ``"0"``: a new group sees the backlog;
        ``"$"``: only messages written from now on."""
        try:
            self.r.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self, count: int = 10, block_ms: int | None = 1000) -> list[OutreachMessage]:
        """Up to ``count`` messages: our own pending ones first (after a restart), then ones
        idle over ``claim_idle_ms`` in any consumer's pending list, then new ones (waiting up
        to ``block_ms`` for them only if nothing else came; ``None``: do not wait). Keep
        ``block_ms`` below the client's socket timeout. Poison comes back with ``error`` set."""
        while self._history is not None:
            got = self._read(self._history, count, None)
            if not got:
                self._history = None
                break
            last = got[-1][0]
            self._history = last.decode() if isinstance(last, bytes) else last
            out = self._parse(got, known=None)
            if out:  # else all were deleted entries: read the next page
                return out
        while True:
            # Redis 7 also returns the ids of entries deleted from the stream and drops them
            # from the PEL itself; Redis 6.2 returns them as empty entries (``_parse``).
            cursor, claimed = self.r.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms,
                self._claim_cursor, count=count)[:2]
            self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
            if claimed or self._claim_cursor == "0-0":
                break
        out = self._parse(claimed, known=None)
        if len(claimed) < count:
            new = self._read(">", count - len(claimed), None if claimed else block_ms)
            out += self._parse(new, known=1)
        return out

    def ack(self, entry_id: str) -> None:
        self.r.xack(self.stream, self.group, entry_id)

    def dead_letter(self, msg: OutreachMessage, error: str) -> None:
        """Move ``msg`` to ``<stream>:dead`` and ack it, atomically: a crash in between
        would otherwise leave it both dead and pending (a second dead copy)."""
        raw = self.r.xrange(self.stream, msg.entry_id, msg.entry_id)
        p = self.r.pipeline(transaction=True)
        p.xadd(self.dead_stream, {
            "entry_id": msg.entry_id, "message": raw[0][1].get(b"message", b"") if raw else b"",
            "error": error, "deliveries": str(msg.deliveries), "group": self.group,
            "consumer": self.consumer})
        p.xack(self.stream, self.group, msg.entry_id)
        p.execute()
        log.warning("outreach %s -> %s after %d deliveries: %s", msg.entry_id,
                    self.dead_stream, msg.deliveries, error)

    def run(self, handler: Callable[[OutreachMessage], object], *, count: int = 10,
            block_ms: int | None = 1000, max_deliveries: int = 5, once: bool = False,
            stop: Callable[[], bool] = lambda: False) -> int:
        """Hand each message to ``handler`` and ack it once the handler returned (at least
        once: be idempotent on ``alert_id`` + ``reason`` + ``event_ns``). A handler that
        raises leaves the message pending; it is retried after ``claim_idle_ms``, and
        dead-lettered when it fails on delivery ``max_deliveries``. ``once``: stop when
        nothing is left instead of waiting. Returns the number of messages handled."""
        handled = 0
        while not stop():
            batch = self.poll(count, None if once else block_ms)
            if not batch and once:
                return handled
            for msg in batch:
                if msg.error is not None:
                    self.dead_letter(msg, msg.error)
                    continue
                if msg.deliveries > max_deliveries:  # it never got as far as an error
                    self.dead_letter(msg, f"delivered {msg.deliveries} times without an ack")
                    continue
                try:
                    handler(msg)
                except Exception as exc:  # noqa: BLE001  the handler's failure is data here
                    if msg.deliveries >= max_deliveries:
                        self.dead_letter(msg, f"handler: {type(exc).__name__}: {exc}")
                    else:
                        log.warning("outreach %s: handler failed (delivery %d): %s",
                                    msg.entry_id, msg.deliveries, exc)
                    continue
                self.ack(msg.entry_id)
                handled += 1
        return handled

    # -- internals --

    def _read(self, start: str, count: int, block_ms: int | None) -> list[tuple[Any, dict]]:
        res = self.r.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count,
                                block=block_ms)
        return res[0][1] if res else []

    def _parse(self, entries: list[tuple[Any, dict]], known: int | None) -> list[OutreachMessage]:
        ids = [e.decode() if isinstance(e, bytes) else e for e, _ in entries]
        counts = {i: known for i in ids} if known is not None else self._deliveries(ids)
        out = []
        for entry_id, (_, fields) in zip(ids, entries):
            if entry_id not in counts:  # claimed by another consumer meanwhile: theirs now
                continue
            if not fields:  # deleted from the stream (XTRIM/XDEL) while pending
                self.ack(entry_id)
                continue
            out.append(self._decode(entry_id, fields, counts[entry_id]))
        return out

    def _deliveries(self, ids: list[str]) -> dict[str, int]:
        # Neither XREADGROUP nor XAUTOCLAIM return the delivery count; XPENDING does.
        p = self.r.pipeline(transaction=False)
        for i in ids:
            p.xpending_range(self.stream, self.group, i, i, 1, consumername=self.consumer)
        return {i: rows[0]["times_delivered"] for i, rows in zip(ids, p.execute()) if rows}

    def _decode(self, entry_id: str, fields: dict, deliveries: int) -> OutreachMessage:
        try:
            msg = json.loads(fields[b"message"])
        except (KeyError, ValueError) as exc:
            return OutreachMessage(entry_id, {}, deliveries, f"not a JSON message: {exc!r}")
        if self._validator is not None:
            err = jsonschema.exceptions.best_match(self._validator.iter_errors(msg))
            if err is not None:
                return OutreachMessage(entry_id, msg if isinstance(msg, dict) else {},
                                       deliveries, f"schema: {err.json_path}: {err.message}")
        return OutreachMessage(entry_id, msg, deliveries)
