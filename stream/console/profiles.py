"""A patient's care profile as the console shows it: the person behind the id, its tags with
their evidence, the nudges sent and suppressed, and the care team's manual tags.

What the care stage stores is per patient id (``sinks.profiles``); a person is the union
over its ids (``connectors.persons``: a merged id answers for its person). The console cuts
that union to the ids the user may see: an id of another ward is left out of the ids, the
aliases, the tags and the nudges, and a person id the user may not see is not named (the id
asked for stands in for it). So a merge across wards never shows one ward the other's data.

A manual tag is set on the person (on the id asked for when the person is not visible);
clearing ends the manual entries of the visible ids. A derived tag cannot be cleared by
hand: it follows the data, and a manual tag is the way to overrule it (set) while it stands.

>>> sorted(TAGS)[:2]
['hypertension', 'low-activity']
>>> _finite(float("nan")) is None and _finite(3.0) == 3.0
True
"""

from __future__ import annotations

import math
from typing import Any

from vitalstream.care import CareEvent
from vitalstream.stream.console.auth import User
from vitalstream.stream.console.cohorts import Cohorts

# the profile's tags (operators.profile.default_rules); a test checks they agree
TAGS = ("hypertension", "tachycardia-episodes", "nocturnal-desaturation",
        "poor-glycaemic-control", "low-activity", "non-adherent-measurement")


def _finite(v: Any) -> float | None:
    """A JSON-safe number (a missing reading's value may be NaN; JSON has no NaN)."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _evidence(items: Any) -> list[dict]:
    out = []
    for e in items or ():
        out.append({"time": str(e.get("time", "")), "event_ns": int(e.get("event_ns") or 0),
                    "signal": str(e.get("signal", "")), "value": _finite(e.get("value")),
                    "note": str(e.get("note", ""))})
    return out


def _int_or_none(v: Any) -> int | None:
    try:
        return None if v in (None, "") else int(v)
    except (TypeError, ValueError):
        return None


def _tag(name: str, t: dict) -> dict:
    return {"tag": name, "source": t.get("source", "derived"), "id": t.get("id", ""),
            "since_ns": int(t["start_ns"]), "end_ns": _int_or_none(t.get("end_ns")),
            "at_ns": int(t.get("at_ns") or t["start_ns"]), "change": t.get("change", ""),
            "confidence": _finite(t.get("confidence")) or 0.0, "rule": str(t.get("rule", "")),
            "guideline": str(t.get("guideline", "")), "evidence": _evidence(t.get("evidence"))}


def _nudge(n: dict) -> dict:
    digest = n.get("digest_of", [])
    return {"status": n["status"], "patient": str(n.get("patient", "")),
            "at_ns": int(n["at_ns"]), "due_ns": _int_or_none(n.get("due_ns")),
            "strategy": str(n.get("strategy", "")), "kind": str(n.get("kind", "")),
            "channel": str(n.get("channel", "")), "reason": str(n.get("reason", "")),
            "detail": str(n.get("detail", "")), "message": str(n.get("message", "")),
            "experiment": str(n.get("experiment", "")), "variant": str(n.get("variant", "")),
            "digest_of": [str(x) for x in digest or ()],
            "evidence": _evidence(n.get("evidence"))}


class Profiles:
    """Reads and manual tags through ``ProfileStore`` and ``PersonRegistry``, cut to a user."""

    def __init__(self, store: Any, persons: Any, cohorts: Cohorts) -> None:
        self.store, self.persons, self.cohorts = store, persons, cohorts

    def _visible(self, user: User, ids: list[str]) -> list[str]:
        cohort_of = self.cohorts.of_many(list(ids))
        return [i for i in ids if user.sees(cohort_of.get(i))]

    def person_of(self, user: User, patient: str) -> tuple[str, list[str]]:
        """(the person as this user may name it, its ids this user may see); ``patient`` is
        visible (the caller has checked)."""
        person = self.persons.resolve(patient)
        ids = self._visible(user, self.persons.ids(person))
        if patient not in ids:
            ids.append(patient)
        return (person if person in ids else patient), ids

    def view(self, user: User, patient: str) -> dict:
        person, ids = self.person_of(user, patient)
        raw = self.store.person(ids)
        visible = set(ids)
        aliases = [a for a in self.persons.aliases(self.persons.resolve(patient))
                   if not a.startswith("patient:") or a.split(":", 1)[1] in visible]
        nudges = [_nudge(n) for n in raw["nudges"]]
        nudges.sort(key=lambda n: n["at_ns"], reverse=True)  # stable: newest first
        suppressed = []
        for key, count in sorted(raw["suppressed"].items()):
            strategy, _, reason = key.partition("|")
            suppressed.append({"strategy": strategy, "reason": reason, "count": int(count)})
        return {"patient": patient, "person": person, "ids": ids, "aliases": aliases,
                "tags": [_tag(name, t) for name, t in sorted(raw["tags"].items())],
                "nudges": nudges, "suppressed": suppressed,
                "suppressed_total": sum(s["count"] for s in suppressed)}

    def manual_ids(self, ids: list[str], tag: str) -> list[str]:
        """Those of ``ids`` whose manual entry of ``tag`` is in effect."""
        out = []
        for pid in ids:
            m = self.store.tags(pid).get(tag, {}).get("manual")
            if m is not None and m.get("change") != "end":
                out.append(pid)
        return out

    def command(self, user: User, patient: str, tag: str, action: str,
                event_ns: int) -> tuple[list[str], bool]:
        """Set or clear a manual tag: (the ids it was given to, whether anything changed).
        A clear with no manual tag to end changes nothing (ids empty)."""
        person, ids = self.person_of(user, patient)
        manual = self.manual_ids(ids, tag)
        if action == "set":
            if manual:
                return manual, False  # already set by hand: its "since" stays
            self.store.command(CareEvent(person, "manual-tag", event_ns, tag))
            return [person], True
        for pid in manual:
            self.store.command(CareEvent(pid, "clear-tag", event_ns, tag))
        return manual, bool(manual)

    def tags_of(self, user: User, patients: list[str]) -> dict[str, list[str]]:
        """The tags in effect for each patient's person (over the ids the user may see):
        one read of the merges and one of each tag's members, whatever the ward's size."""
        merged = self.persons.load_all()  # merged id -> person
        members: dict[str, list[str]] = {}
        for pid, person in merged.items():
            members.setdefault(person, []).append(pid)
        having = {tag: {pid for pid, _ in self.store.cohort(tag)} for tag in TAGS}
        every = sorted({i for p in patients
                        for i in [merged.get(p, p), *members.get(merged.get(p, p), ())]})
        seen = set(self._visible(user, every))
        out = {}
        for p in patients:
            person = merged.get(p, p)
            ids = {i for i in [person, *members.get(person, ())] if i in seen} | {p}
            out[p] = [t for t in TAGS if ids & having[t]]
        return out

    def members(self, user: User, tag: str, patients: list[str]) -> list[str]:
        """Those of ``patients`` (already visible) whose person has ``tag`` in effect."""
        got = self.tags_of(user, patients)
        return [p for p in patients if tag in got[p]]
