"""One identity per person: aliases of a patient id, in Redis, with an audit log.

A device maps to a patient (``connectors.registry``). A person also has ids in
other systems: a hospital record number (``mrn``), an app account (``app``), a
phone number (``phone``), a messaging-app id (``msg``). Each is an *alias* of one
person id. Linking another *patient* id (kind ``patient``) is a merge: two
records turned out to be one person.

Redis layout (prefix ``vitalstream:persons``)::

    {prefix}:alias            hash  "kind:value" -> person id
    {prefix}:members:{person} set   the aliases of a person ("kind:value")
    {prefix}:moved:{patient}  JSON  the aliases a merge moved from that patient (for unlink)
    {prefix}:log              stream, one entry per link/unlink: op, person, alias, moved,
                              by, reason, at_ns (the audit trail)
    {prefix}:version          counter, bumped by every change (resolvers poll it)

Merges and splits are explicit (``link``/``unlink``), audited, and their effect on
data already stored is defined, not guessed:

- raw readings keep their device, and the patient id they were stored under;
  readings that arrive after a merge are stored under the merged person;
- profiles, nudge logs and experiment exposures are stored per patient id and
  never rewritten: a person's view (``vitalstream profile show``, the console) is
  the union over the person's merged ids, so a merge moves them into one view and
  an unlink restores each id's own, exactly;
- the running care stage follows the merged person from the merge on (its caps
  count the nudges sent to the person); alerts of the merged id are raised for
  the person.

A merge moves the merged patient's own aliases with it (a phone number of B is a
phone number of A afterwards); ``unlink`` of the merge gives them back. Chains
are flattened at link time: linking into a person that is itself merged links
into its root, and a person cannot be merged into one of its own ids.

>>> alias_key("phone", "+447700900123")
'phone:+447700900123'
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

import redis

from vitalstream.errors import IdentityError
from vitalstream.ids import check_identifier

STEP = "identity"
KINDS = ("patient", "mrn", "app", "phone", "msg")
_MAX_RETRIES = 16


def alias_key(kind: str, value: str) -> str:
    if kind not in KINDS:
        raise IdentityError(STEP, None, "bad_alias", f"alias kind {kind!r}: one of {', '.join(KINDS)}")
    return f"{kind}:{check_identifier('alias', value)}"


def _s(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x


@dataclass(frozen=True)
class Change:
    op: str  # "link" | "unlink"
    person: str
    alias: str
    moved: tuple[str, ...]
    by: str
    reason: str
    at_ns: int

    def to_json(self) -> dict:
        return {"op": self.op, "person": self.person, "alias": self.alias,
                "moved": list(self.moved), "by": self.by, "reason": self.reason, "at_ns": self.at_ns}


class PersonRegistry:
    def __init__(self, client: redis.Redis, prefix: str = "vitalstream:persons") -> None:
        self.r = client
        self.prefix = prefix

    @property
    def _alias(self) -> str:
        return f"{self.prefix}:alias"

    def _members(self, person: str) -> str:
        return f"{self.prefix}:members:{person}"

    @property
    def version_key(self) -> str:
        return f"{self.prefix}:version"

    # -- reads
    def resolve(self, patient: str) -> str:
        """The person a patient id belongs to (itself unless merged)."""
        got = self.r.hget(self._alias, f"patient:{patient}")
        return _s(got) if got is not None else patient

    def find(self, kind: str, value: str) -> str | None:
        """The person an alias names, or None."""
        key = alias_key(kind, value)
        got = self.r.hget(self._alias, key)
        if got is not None:
            return _s(got)
        return value if kind == "patient" else None

    def aliases(self, person: str) -> list[str]:
        return sorted(_s(m) for m in self.r.smembers(self._members(person)))

    def ids(self, person: str) -> list[str]:
        """The patient ids that make up a person: itself first, then merged ones."""
        return [person] + [a.split(":", 1)[1] for a in self.aliases(person) if a.startswith("patient:")]

    def history(self, person: str | None = None) -> list[Change]:
        out = []
        for _, f in self.r.xrange(f"{self.prefix}:log"):
            f = {_s(k): _s(v) for k, v in f.items()}
            c = Change(f["op"], f["person"], f["alias"], tuple(json.loads(f["moved"])), f["by"],
                       f["reason"], int(f["at_ns"]))
            if person is None or c.person == person or c.alias == f"patient:{person}":
                out.append(c)
        return out

    def show(self, id_: str) -> dict:
        person = self.resolve(id_)
        return {"person": person, "asked": id_, "ids": self.ids(person),
                "aliases": self.aliases(person),
                "history": [c.to_json() for c in self.history(person)]}

    def version(self) -> int:
        return int(self.r.get(self.version_key) or 0)

    def load_all(self) -> dict[str, str]:
        """patient id -> person, for every merged patient id (what resolvers cache)."""
        return {_s(k).split(":", 1)[1]: _s(v) for k, v in self.r.hgetall(self._alias).items()
                if _s(k).startswith("patient:")}

    # -- changes
    def link(self, person: str, kind: str, value: str, *, by: str, reason: str = "",
             at_ns: int | None = None) -> Change:
        """Make ``kind:value`` an alias of ``person`` (kind ``patient``: merge that patient)."""
        check_identifier("patient", person)
        key = alias_key(kind, value)
        if not by:
            raise IdentityError(STEP, None, "no_actor", "a link says who made it (by)")

        def plan(pipe) -> Change:
            root = _s(pipe.hget(self._alias, f"patient:{person}") or person)
            current = pipe.hget(self._alias, key)
            if current is not None:
                if _s(current) == root:
                    raise _Nothing
                raise IdentityError(STEP, None, "already_linked",
                                    f"{key} is an alias of {_s(current)}: unlink it first")
            moved: tuple[str, ...] = ()
            if kind == "patient":
                if value == root:
                    raise IdentityError(STEP, None, "self_merge", f"{value} is {root} itself")
                moved = tuple(sorted(_s(m) for m in pipe.smembers(self._members(value))))
            pipe.multi()
            for m in moved:
                pipe.hset(self._alias, m, root)
                pipe.sadd(self._members(root), m)
            if moved:
                pipe.delete(self._members(value))
                pipe.set(f"{self.prefix}:moved:{value}", json.dumps(list(moved)))
            pipe.hset(self._alias, key, root)
            pipe.sadd(self._members(root), key)
            return Change("link", root, key, moved, by, reason, at_ns or time.time_ns())

        return self._change(plan)

    def unlink(self, kind: str, value: str, *, by: str, reason: str = "",
               at_ns: int | None = None) -> Change:
        """Undo a link (kind ``patient``: split a merge, giving back the aliases it moved)."""
        key = alias_key(kind, value)
        if not by:
            raise IdentityError(STEP, None, "no_actor", "an unlink says who made it (by)")

        def plan(pipe) -> Change:
            current = pipe.hget(self._alias, key)
            if current is None:
                raise IdentityError(STEP, None, "not_linked", f"{key} is no alias")
            person = _s(current)
            moved: tuple[str, ...] = ()
            if kind == "patient":
                raw = pipe.get(f"{self.prefix}:moved:{value}")
                mine = set(_s(m) for m in pipe.smembers(self._members(person)))
                moved = tuple(m for m in json.loads(_s(raw)) if m in mine) if raw else ()
            pipe.multi()
            pipe.hdel(self._alias, key)
            pipe.srem(self._members(person), key)
            for m in moved:
                pipe.hset(self._alias, m, value)
                pipe.srem(self._members(person), m)
                pipe.sadd(self._members(value), m)
            if kind == "patient":
                pipe.delete(f"{self.prefix}:moved:{value}")
            return Change("unlink", person, key, moved, by, reason, at_ns or time.time_ns())

        return self._change(plan)

    def _change(self, plan: Callable) -> Change:
        for _ in range(_MAX_RETRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(self._alias)
                    try:
                        change = plan(pipe)
                    except _Nothing:
                        pipe.reset()
                        return Change("none", "", "", (), "", "", 0)
                    pipe.incr(self.version_key)
                    pipe.xadd(f"{self.prefix}:log",
                              {k: json.dumps(v) if k == "moved" else str(v)
                               for k, v in change.to_json().items()})
                    pipe.execute()
                    return change
                except redis.WatchError:
                    continue
        raise IdentityError(STEP, None, "contention", f"gave up after {_MAX_RETRIES} retries")


class _Nothing(Exception):
    """The link asked for is already there."""


class PersonResolver:
    """Wraps a ``patient_of`` so that readings carry the merged person, cached by version.

    Polls ``{prefix}:version`` at most every ``poll_s`` of ``monotonic()`` time; through a
    Redis outage it keeps the last mapping (a merge made meanwhile takes effect once
    Redis answers)."""

    def __init__(self, persons: PersonRegistry, inner: Callable, *, poll_s: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.persons = persons
        self.inner = inner
        self.poll_s = poll_s
        self._monotonic = monotonic
        self._version = -1
        self._next = float("-inf")
        self.map: dict[str, str] = {}
        self.failures = 0
        self.retry_max_s = 30.0

    def refresh(self) -> None:
        now = self._monotonic()
        if now < self._next:
            return
        self._next = now + self.poll_s
        try:
            v = self.persons.version()
            if v != self._version:
                self.map, self._version = self.persons.load_all(), v
            self.failures = 0
        except redis.RedisError:
            # serve the last mapping; back off, since the poll runs on the flow's thread and
            # a hung server costs a socket timeout per poll
            self.failures += 1
            self._next = now + min(self.retry_max_s, self.poll_s * 2 ** self.failures)

    def __call__(self, raw) -> str | None:
        patient = self.inner(raw)
        if patient is None:
            return None
        self.refresh()
        return self.map.get(patient, patient)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # stale, reloads... of the wrapped resolver
