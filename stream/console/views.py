"""What each screen shows, assembled from the stores and cut to what the user may see.

Technical alarms are not about one patient: a gateway's (``gateway:<id>``) is seen by
whoever sees a patient it covers, the pipeline's broker alarm (covers ``*``) by everyone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from vitalstream.errors import VitalstreamError
from vitalstream.operators.lifecycle import RANK, Lifecycle
from vitalstream.operators.liveness import GATEWAY_KEY, PIPELINE_KEY
from vitalstream.sinks.alarm_state import RedisAlarmState
from vitalstream.signals import spec
from vitalstream.stream.console.auth import User
from vitalstream.stream.console.cohorts import Cohorts
from vitalstream.stream.console.live import Event

log = logging.getLogger(__name__)
NS = 1_000_000_000
DISPLAY = {"high": "critical", "medium": "warning", "low": "info"}
BANDS = ("low", "low-medium", "medium", "high")
ANNOTATED = ("raised", "priority_raised", "escalated", "recovered", "resolved", "backfill")


def _unit(signal: str) -> str:
    try:
        return spec(signal).unit
    except KeyError:
        return ""


class Views:
    def __init__(self, alarms: RedisAlarmState, cohorts: Cohorts, reader: Any = None, *,
                 lifecycle: Lifecycle = Lifecycle(), stale_after_s: float = 600.0,
                 window_measurement: str = "vitals_1m", latest_horizon_s: float = 86400.0,
                 cache_s: float = 2.0) -> None:
        self.alarms, self.cohorts, self.reader = alarms, cohorts, reader
        self.tiers = [t.name for t in lifecycle.tiers]
        self.stale_after_s = stale_after_s
        self.window_measurement = window_measurement
        self.latest_horizon_s = latest_horizon_s
        # Every screen re-reads on every live event: a short cache keeps a burst of alarms
        # from becoming a burst of store queries.
        self.cache_s = cache_s
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._newest_ns = 0

    def now_ns(self) -> int:
        """The screen's "now": the wall clock, or the newest reading when data runs ahead
        of it (the demo's compressed time; a device clock ahead within the pipeline's skew
        allowance), so ages and chart ranges stay about the data."""
        return max(time.time_ns(), self._newest_ns)

    # -- who sees what --

    def sees_patient(self, user: User, patient: str) -> bool:
        return self.cohorts.visible(user, patient)

    def sees_alarm(self, user: User, a: dict) -> bool:
        covers = a.get("covers") or []
        if "*" in covers:
            return True
        if covers:
            return any(user.sees(c) for c in self.cohorts.of_many(list(covers)).values())
        return self.sees_patient(user, a["patient"])

    def sees_event(self, user: User, ev: Event) -> bool:
        if ev.patient == PIPELINE_KEY or ev.patient.startswith(GATEWAY_KEY):
            covers = ev.data.get("covers")
            if isinstance(covers, list):
                return self.sees_alarm(user, {"patient": ev.patient, "covers": covers})
            return True  # an audit entry of a technical alarm: says only who acted
        return self.sees_patient(user, ev.patient)

    def _patients_of(self, user: User, cohort: str | None) -> dict[str, str | None]:
        members = self.cohorts.for_user(user)
        out: dict[str, str | None] = {p: k for k, ps in members.items() for p in ps
                                      if cohort is None or k == cohort}
        if user.sees(None) and cohort is None:
            # a user of every cohort also sees patients not yet placed in one
            for a in self.alarms.alarms():
                p = a["patient"]
                if p not in out and p != PIPELINE_KEY and not p.startswith(GATEWAY_KEY):
                    out[p] = self.cohorts.of(p)
        return out

    # -- alarms --

    def alerts(self, user: User, cohort: str | None = None) -> list[dict]:
        raw = [a for a in self.alarms.alarms() if not a.get("suppressed")]
        cohort_of = self.cohorts.of_many(sorted({a["patient"] for a in raw}))
        out = []
        for a in raw:
            c = cohort_of.get(a["patient"])
            if not self.sees_alarm(user, a) or (cohort is not None and c != cohort):
                continue
            level = int(a.get("level", 0))
            out.append({
                "alert_id": a["alert_id"], "patient": a["patient"], "cohort": c,
                "rule": a["rule"], "priority": a["priority"], "display": DISPLAY[a["priority"]],
                "state": a["state"], "present": a["present"], "level": level,
                "tier": self.tiers[level - 1] if 0 < level <= len(self.tiers) else "",
                "raised_ns": a["raised_ns"], "signal": a.get("signal", ""),
                "value": a.get("value"), "unit": a.get("unit", ""),
                "threshold": a.get("threshold"), "explanation": a.get("explanation", ""),
                "assignee": a.get("assignee", ""), "snoozed_until_ns": a.get("snoozed_until_ns"),
                "members": a.get("members", []), "covers": a.get("covers", []),
                "muted": bool(a.get("muted", False))})
        # the most urgent first; within a priority, whoever has waited longest
        out.sort(key=lambda a: (a["muted"], -RANK[a["priority"]], a["state"] != "active",
                                a["raised_ns"],
                                a["alert_id"]))
        return out

    def history(self, alert_id: str) -> list[dict]:
        out = []
        for h in self.alarms.history(alert_id):
            if "message" in h:  # a notice: its whole message, not only the indexed fields
                h = {**json.loads(h.pop("message")), **h}
            level = str(h.get("level", ""))
            out.append({"kind": h["kind"], "event_ns": int(h["event_ns"]),
                        "reason": h.get("reason", ""),
                        "action": h.get("action", ""), "who": h.get("who", ""),
                        "priority": h.get("priority", ""),
                        "level": int(level) if level.isdigit() else None,
                        "explanation": h.get("explanation") or "", "detail": h.get("detail", "")})
        return out

    def audit(self, user: User, limit: int, patient: str | None = None) -> list[dict]:
        out: list[dict] = []
        last = "+"
        scanned = 0
        while len(out) < limit and scanned < 20_000:
            got = self.alarms.r.xrevrange(self.alarms.audit, max=last, count=500)
            if not got:
                break
            for entry, f in got:
                d = {k.decode(): v.decode() for k, v in f.items()}
                if (patient is None or d.get("patient") == patient) and self.sees_event(
                        user, Event("audit", d.get("patient", ""), {})):
                    out.append({"event_ns": int(d.get("event_ns") or 0),
                                **{k: d.get(k, "") for k in ("alert_id", "patient", "who",
                                                             "action", "reason", "detail")}})
                    if len(out) >= limit:
                        break
            scanned += len(got)
            last = "(" + got[-1][0].decode()
        return out

    # -- patients --

    def _cached(self, key: tuple, make):
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.cache_s:
                return hit[1]
        value = make()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def ward(self, user: User, cohort: str | None, only: list[str] | None = None) -> list[dict]:
        members = self._patients_of(user, cohort) if only is None else \
            {p: self.cohorts.of(p) for p in only}
        patients = sorted(members)
        wall = time.time_ns()
        since = wall - round(self.latest_horizon_s * NS)
        until = wall + round(self.latest_horizon_s * NS)  # see now_ns
        latest, news2 = {}, {}
        if self.reader is not None and patients:
            key = tuple(patients)
            try:
                latest = self._cached(("latest",) + key,
                                      lambda: self.reader.latest(patients, since, until))
                news2 = self._cached(("news2",) + key,
                                     lambda: self.reader.latest_news2(patients, since, until))
            except VitalstreamError as exc:  # the series store is away: alarms still show
                log.warning("console ward: %s", exc)
                latest, news2 = {}, {}
            newest = max((t for sigs in latest.values() for t, _ in sigs.values()), default=0)
            self._newest_ns = max(self._newest_ns, min(newest, until))
        now = self.now_ns()
        counts: dict[str, dict[str, int]] = {p: {"high": 0, "medium": 0, "low": 0} for p in patients}
        for a in self.alarms.alarms():
            if a["patient"] in counts and not a.get("suppressed"):
                counts[a["patient"]][a["priority"]] += 1
        out = []
        for p in patients:
            vitals = {}
            for sig, (t, v) in latest.get(p, {}).items():
                vitals[sig] = {"value": v, "unit": _unit(sig), "time_ns": t,
                               "age_s": max(0.0, (now - t) / NS)}
            n = news2.get(p)
            newest = max((x["time_ns"] for x in vitals.values()), default=None)
            out.append({"patient": p, "cohort": members[p], "vitals": vitals,
                        "news2": None if n is None else {
                            "score": int(n[1]), "band": BANDS[max(0, min(3, int(n[2])))],
                            "time_ns": n[0]},
                        "alerts": counts[p],
                        "stale": newest is None or (now - newest) / NS > self.stale_after_s})
        return out

    def series(self, patient: str, start: int, end: int) -> dict:
        signals: dict[str, dict] = {}
        if self.reader is not None:
            readings = self.reader.readings(patient, start, end)
            windows = self.reader.windows(patient, start, end, self.window_measurement)
            anomaly = self.reader.anomaly(patient, start, end)
            for sig in sorted({*readings, *windows, *anomaly}):
                signals[sig] = {"unit": _unit(sig), "readings": readings.get(sig, []),
                                "window": {"measurement": self.window_measurement,
                                           **windows.get(sig, {})},
                                "anomaly": anomaly.get(sig, {})}
            news2 = self.reader.news2(patient, start, end)
        else:
            news2 = []
        return {"patient": patient, "start_ns": start, "end_ns": end, "signals": signals,
                "news2": news2, "annotations": self.annotations(patient, start, end)}

    def annotations(self, patient: str, start: int, end: int) -> list[dict]:
        """The alarm notices of the patient in the range (the outreach stream's ids are its
        arrival times in ms, so the range is read, not the whole stream)."""
        out = []
        got = self.alarms.r.xrange(self.alarms.outreach, min=str(start // 10**6),
                                   max=str(end // 10**6 + 1), count=50_000)
        for _, f in got:
            if f.get(b"patient", b"").decode() != patient:
                continue
            msg = json.loads(f[b"message"])
            if msg.get("reason") in ANNOTATED:
                out.append({"event_ns": int(msg["event_ns"]), "alert_id": msg["alert_id"],
                            "rule": msg["rule"], "reason": msg["reason"],
                            "priority": msg["priority"], "signal": msg.get("signal", "")})
        return out
