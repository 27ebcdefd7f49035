"""Profiles, nudges and experiment exposures in Redis: what the care stage writes.

Layout (prefix ``vitalstream``; every key is per patient id, never per merged
person: a person's view is the union over its ids, see ``connectors.persons``)::

    {p}:profile:{id}            hash  "derived:TAG" / "manual:TAG" -> JSON of the tag's
                                      latest state (start, end, confidence, rule, evidence)
    {p}:profile:{id}:log        stream, every TagChange of the patient
    {p}:profile:events          stream, every TagChange (for downstream tools; once per
                                      event_id, like alerts)
    {p}:cohort:{TAG}            sorted set id -> start_ns, ids with TAG in effect
    {p}:nudges                  stream, the outreach queue of nudges (field "message": JSON
                                      of data/nudge-v1.schema.json; once per nudge_id);
                                      clinical alerts have their own stream, never behind it
    {p}:nudges:{id}             stream, the patient's nudges sent and suppressed
    {p}:nudges:suppressed       hash "strategy|reason" -> count (and per patient:
                                      {p}:nudges:{id}:suppressed)
    {p}:experiment:{NAME}:exposures  hash id -> JSON Exposure (first one only)
    {p}:experiment:{NAME}:outcomes   hash "id|metric" -> JSON outcome record
    {p}:care:commands           stream of CareEvents for the running care stage (manual
                                      tags, visits, meals, time zones)

A tag is "in effect" when its manual entry is set, else when its derived one is:
a manual tag is never overwritten by the data's view.
"""

from __future__ import annotations

import json
from typing import Iterable

import redis

from vitalstream.care import CareEvent, Exposure, MANUAL, Nudge, NudgeSuppressed, TagChange

_ADD_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""
_LOG_MAXLEN = 1000  # entries per patient log
_TTL_S = 90 * 86_400  # how long an id is remembered for once-only adds


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else x


def _flat(fields: dict) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, v if isinstance(v, str) else json.dumps(v)]
    return out


class ProfileStore:
    def __init__(self, client: redis.Redis, prefix: str = "vitalstream") -> None:
        self.r = client
        self.p = prefix
        self._add_once = client.register_script(_ADD_ONCE)

    @property
    def nudge_stream(self) -> str:
        return f"{self.p}:nudges"

    # -- writes (the care stage's sink)
    def apply(self, changes: Iterable[TagChange]) -> int:
        """Store tag changes; returns how many were new (a replay adds none twice)."""
        changes = list(changes)
        if not changes:
            return 0
        pipe = self.r.pipeline(transaction=False)
        for c in changes:
            body = c.to_json()
            pipe.hset(self._profile(c.patient), f"{c.source}:{c.tag}", json.dumps(body))
            self._add_once(keys=[f"{self.p}:profile:seen:{c.event_id}", f"{self.p}:profile:events"],
                           args=[_TTL_S, 1_000_000, *_flat({k: v if isinstance(v, str) else json.dumps(v)
                                                           for k, v in body.items()})],
                           client=pipe)
            pipe.xadd(f"{self._profile(c.patient)}:log", {"change": json.dumps(body)},
                      maxlen=_LOG_MAXLEN, approximate=True)
        res = pipe.execute()
        added = sum(1 for i, x in enumerate(res) if i % 3 == 1 and x)
        self._reindex({(c.patient, c.tag) for c in changes})
        return added

    def _reindex(self, keys: set[tuple[str, str]]) -> None:
        keys = sorted(keys)
        pipe = self.r.pipeline(transaction=False)
        for pid, tag in keys:
            pipe.hmget(self._profile(pid), f"manual:{tag}", f"derived:{tag}")
        states = pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        for (pid, tag), (manual, derived) in zip(keys, states):
            live = _in_effect(manual, derived)
            if live is None:
                pipe.zrem(f"{self.p}:cohort:{tag}", pid)
            else:
                pipe.zadd(f"{self.p}:cohort:{tag}", {pid: live["start_ns"]})
        pipe.execute()

    def record(self, items: Iterable[object]) -> int:
        """Store nudge outcomes (Nudge, NudgeSuppressed, Exposure); returns nudges newly queued."""
        pipe = self.r.pipeline(transaction=False)
        queued_at: list[int] = []
        for x in items:
            t = type(x)
            if t is Nudge:
                body = json.dumps(x.to_json())
                queued_at.append(len(pipe.command_stack))
                self._add_once(keys=[f"{self.p}:nudges:seen:{x.nudge_id}", f"{self.p}:nudges"],
                               args=[_TTL_S, 1_000_000, "message", body], client=pipe)
                pipe.xadd(f"{self.p}:nudges:{x.patient}", {"sent": body},
                          maxlen=_LOG_MAXLEN, approximate=True)
            elif t is NudgeSuppressed:
                body = x.to_json()
                pipe.xadd(f"{self.p}:nudges:{x.patient}", {"suppressed": json.dumps(body)},
                          maxlen=_LOG_MAXLEN, approximate=True)
                pipe.hincrby(f"{self.p}:nudges:suppressed", f"{x.strategy}|{x.reason}", 1)
                pipe.hincrby(f"{self.p}:nudges:{x.patient}:suppressed", f"{x.strategy}|{x.reason}", 1)
            elif t is Exposure:
                pipe.hsetnx(f"{self.p}:experiment:{x.experiment}:exposures", x.patient,
                            json.dumps(x.to_json()))
        res = pipe.execute()
        return sum(1 for i in queued_at if res[i])

    def record_outcomes(self, experiment: str, records: Iterable[dict]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for rec in records:
            pipe.hset(f"{self.p}:experiment:{experiment}:outcomes",
                      f"{rec['patient']}|{rec['metric']}", json.dumps(rec))
        pipe.execute()

    # -- the care team's side
    def command(self, event: CareEvent) -> None:
        """Hand a CareEvent to the running care stage (and, for a manual tag, store it now so
        the console shows it before the stage has seen it)."""
        self.r.xadd(f"{self.p}:care:commands",
                    {"patient": event.patient, "kind": event.kind, "event_ns": str(event.event_ns),
                     "value": event.value}, maxlen=100_000, approximate=True)
        if event.kind in ("manual-tag", "clear-tag"):
            set_ = event.kind == "manual-tag"
            self.apply([TagChange(event.patient, event.value, "set" if set_ else "end",
                                  "set by the care team" if set_ else "cleared by the care team",
                                  event.event_ns, None if set_ else event.event_ns,
                                  1.0 if set_ else 0.0, event.event_ns, source=MANUAL)])

    def commands(self, after: str = "0-0", count: int = 1000) -> tuple[str, list[CareEvent]]:
        """CareEvents queued after stream id ``after``: (last id, events)."""
        got = self.r.xrange(f"{self.p}:care:commands", min=f"({after}" if after != "0-0" else "-",
                            count=count)
        out = []
        for eid, f in got:
            f = {_s(k): _s(v) for k, v in f.items()}
            out.append(CareEvent(f["patient"], f["kind"], int(f["event_ns"]), f.get("value", "")))
            after = _s(eid)
        return after, out

    # -- reads
    def tags(self, pid: str) -> dict[str, dict]:
        """Every tag of one patient id: TAG -> {"effective": state or None, "manual", "derived"}."""
        raw = {_s(k): json.loads(_s(v)) for k, v in self.r.hgetall(self._profile(pid)).items()}
        out: dict[str, dict] = {}
        for field_, body in raw.items():
            source, tag = field_.split(":", 1)
            out.setdefault(tag, {"manual": None, "derived": None})[source] = body
        for tag, both in out.items():
            both["effective"] = _in_effect(both["manual"], both["derived"])
        return out

    def person(self, ids: list[str]) -> dict:
        """A person's profile: the union of its ids' tags (each marked with the id it came
        from), its nudges and suppression counts."""
        tags: dict[str, list] = {}
        for pid in ids:
            for tag, both in self.tags(pid).items():
                tags.setdefault(tag, []).append({"id": pid, **both})
        effective = {}
        for tag, entries in tags.items():
            live = [e["effective"] | {"id": e["id"]} for e in entries if e["effective"] is not None]
            if live:
                effective[tag] = min(live, key=lambda e: e["start_ns"])
        return {"ids": ids, "tags": effective,
                "history": {t: entries for t, entries in tags.items()},
                "nudges": sorted((n for pid in ids for n in self.nudges(pid)),
                                 key=lambda n: n["at_ns"]),
                "suppressed": _sum_counts(self.suppressed(pid) for pid in ids)}

    def log(self, pid: str, count: int = 200) -> list[dict]:
        return [json.loads(_s(f[b"change"] if b"change" in f else f["change"]))
                for _, f in self.r.xrevrange(f"{self._profile(pid)}:log", count=count)][::-1]

    def cohort(self, tag: str) -> list[tuple[str, int]]:
        return [(_s(m), int(s)) for m, s in self.r.zrange(f"{self.p}:cohort:{tag}", 0, -1,
                                                             withscores=True)]

    def nudges(self, pid: str, count: int = 200) -> list[dict]:
        out = []
        for _, f in self.r.xrevrange(f"{self.p}:nudges:{pid}", count=count):
            f = {_s(k): _s(v) for k, v in f.items()}
            if "sent" in f:
                out.append({"status": "sent", **json.loads(f["sent"])})
            else:
                out.append({"status": "suppressed", **json.loads(f["suppressed"])})
        return out[::-1]

    def suppressed(self, pid: str | None = None) -> dict[str, int]:
        key = f"{self.p}:nudges:suppressed" if pid is None else f"{self.p}:nudges:{pid}:suppressed"
        return {_s(k): int(v) for k, v in self.r.hgetall(key).items()}

    def exposures(self, experiment: str) -> list[Exposure]:
        out = []
        for _, v in self.r.hgetall(f"{self.p}:experiment:{experiment}:exposures").items():
            d = json.loads(_s(v))
            out.append(Exposure(d["experiment"], d["variant"], d["patient"], d["strategy"], d["at_ns"]))
        return sorted(out, key=lambda e: (e.at_ns, e.patient))

    def outcomes(self, experiment: str) -> list[dict]:
        return [json.loads(_s(v)) for v in
                self.r.hgetall(f"{self.p}:experiment:{experiment}:outcomes").values()]

    def _profile(self, pid: str) -> str:
        return f"{self.p}:profile:{pid}"


def _in_effect(manual, derived) -> dict | None:
    """The tag's state in effect: the manual entry while it is set, else the derived one."""
    for raw in (manual, derived):
        if raw is None:
            continue
        body = json.loads(_s(raw)) if isinstance(raw, (bytes, str)) else raw
        if body["change"] != "end":
            return body
    return None


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out

