"""Cohorts: the wards or programmes a patient belongs to, and so who may see them.

A patient is in at most one cohort (a ward, a remote-monitoring programme); a user is given
cohorts (``User.cohorts``). Everything the console shows passes ``Cohorts.visible``: a
patient outside the user's cohorts is answered as if it did not exist (404), so an id
cannot be probed.

Keys: ``<prefix>:console:cohorts`` (hash name -> JSON description) and
``<prefix>:console:patient-cohort`` (hash patient -> cohort name).
"""

from __future__ import annotations

import json

import redis

from vitalstream.ids import check_identifier
from vitalstream.stream.console.auth import AuthError, User


class Cohorts:
    def __init__(self, client: redis.Redis, prefix: str = "vitalstream") -> None:
        self.r = client
        self._names = f"{prefix}:console:cohorts"
        self._of = f"{prefix}:console:patient-cohort"

    def put(self, name: str, patients: list[str] | tuple[str, ...] = (), description: str = "") -> None:
        """Create ``name`` (or update its description) and move ``patients`` into it."""
        if not name or len(name) > 64 or name == "*" or not name.isprintable():
            raise AuthError("bad_value", "a cohort name is 1-64 printable characters, not *")
        for p in patients:
            check_identifier("patient", p)
        tx = self.r.pipeline(transaction=True)
        tx.hset(self._names, name, json.dumps({"description": description}))
        if patients:
            tx.hset(self._of, mapping={p: name for p in patients})
        tx.execute()

    def remove_patients(self, patients: list[str]) -> None:
        if patients:
            self.r.hdel(self._of, *patients)

    def names(self) -> list[str]:
        return sorted(k.decode() for k in self.r.hkeys(self._names))

    def of(self, patient: str) -> str | None:
        raw = self.r.hget(self._of, patient)
        return None if raw is None else raw.decode()

    def of_many(self, patients: list[str]) -> dict[str, str | None]:
        if not patients:
            return {}
        got = self.r.hmget(self._of, patients)
        return {p: (None if c is None else c.decode()) for p, c in zip(patients, got)}

    def members(self) -> dict[str, list[str]]:
        """Every cohort with its patients (sorted)."""
        out: dict[str, list[str]] = {n: [] for n in self.names()}
        for p, c in self.r.hgetall(self._of).items():
            out.setdefault(c.decode(), []).append(p.decode())
        return {k: sorted(v) for k, v in sorted(out.items())}

    def visible(self, user: User, patient: str) -> bool:
        return user.sees(self.of(patient))

    def for_user(self, user: User) -> dict[str, list[str]]:
        return {k: v for k, v in self.members().items() if user.sees(k)}
