"""``vitalstream replay FILE``: recorded readings through the live per-patient flow (shadow mode).

The flow is the one ``vitalstream run`` assembles from the same settings
(``assembly.ingest`` and ``assembly.patient_host``: same rules, detectors,
windows, dedup and identity), fed in event-time order as if live:

- Time follows the data. Each reading is "received" at its own event time, so
  an old file is not back-fill (no HISTORICAL flag, no clock-skew correction)
  and every timer (reorder buffer, window close, eviction) fires at the event
  time it would have fired live.
- After the last reading, time runs on for ``run_on_ns``: by default the window
  size plus allowed lateness plus the rule delay plus the idle grace, i.e.
  until every window and buffer would have closed on its own live. Then the
  input ends (EOF): conditions still pending are not completed by inventing
  readings, since a live run would not have fired them either.
- Nothing is written to a service (the registry is read when identity is
  ``registry``); ``--write`` stores the results as historical data.

``Replay.run`` returns a ``ReplayResult``; alert events come out as JSON objects
(``alert_json``) with ``alert_id``, ``patient``, ``rule``, ``priority``,
``state``, ``event_time`` (ISO-8601 UTC, ``Z``), ``signal``, ``value`` and
``explanation``, plus ``threshold``, ``episode_start``, ``seq`` and ``message``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vitalstream.model import Alert, DeadLetter, Message, RawReading, Reading, WindowAggregate
from vitalstream.operators.news2 import BANDS, band_score, chart_value
from vitalstream.stream import assembly
from vitalstream.stream.ingest import Ingest, Quarantined
from vitalstream.stream.settings import Settings
from vitalstream.timeutil import iso_z


def alert_json(a: Alert) -> dict[str, Any]:
    return {"alert_id": a.alert_id, "patient": a.patient, "rule": a.rule,
            "priority": a.severity, "state": a.state, "event_time": iso_z(a.event_ns),
            "event_ns": a.event_ns, "signal": a.signal,
            "value": a.value if math.isfinite(a.value) else None,
            "threshold": a.threshold if math.isfinite(a.threshold) else None,
            "explanation": a.explanation, "episode_start": iso_z(a.episode_start_ns),
            "seq": a.seq, "message": a.message}


@dataclass
class ReplayResult:
    readings: int = 0
    patients: set[str] = field(default_factory=set)
    first_ns: dict[str, int] = field(default_factory=dict)
    last_ns: dict[str, int] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    aggregates: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    duplicates: int = 0
    late_rules: int = 0

    def patient_days(self) -> dict[str, float]:
        return {p: (self.last_ns[p] - self.first_ns[p]) / 86_400e9 for p in self.first_ns}


def run_on_ns(settings: Settings) -> int:
    p = settings.pipeline
    return assembly.ns(p.window_size_s + p.allowed_lateness_s + p.rule_delay_s + p.idle_grace_s)


class Replay:
    """Readings (``RawReading``, event-time order) through ingest and the patient host."""

    def __init__(self, settings: Settings, *, ingest: Ingest | None = None,
                 on_results: Callable[[list], None] | None = None,
                 on_readings: Callable[[list[Reading]], None] | None = None) -> None:
        self.settings = settings
        self.ingest = ingest if ingest is not None else assembly.ingest(settings)
        self.host = assembly.patient_host(settings).build()
        self.on_results = on_results
        self.on_readings = on_readings
        self.result = ReplayResult()

    def _results(self, items: list) -> None:
        res = self.result
        for x in items:
            t = type(x)
            if t is Alert:
                res.alerts.append(x)
            elif t is WindowAggregate:
                res.aggregates += 1
        if self.on_results is not None and items:
            self.on_results(items)

    def _batch(self, raws: list[RawReading], t: int) -> None:
        host, res = self.host, self.result
        # every timer due before this reading fires at its own time, as it would live
        due = host.notify_at()
        while due is not None and due <= t:
            self._results(host.on_notify(due)[0])
            nxt = host.notify_at()
            if nxt is not None and nxt <= due:  # a timer that does not move on: catch up at t
                self._results(host.on_notify(t)[0])
                break
            due = nxt
        out: list = []
        msg = Message(f"replay/{raws[0].device}/replay", b"", t)
        for raw in raws:
            self.ingest.accept([raw], raw.device, msg, out)
        batch = []
        for o in out:
            k = type(o)
            if k is Reading:
                batch.append(o)
                p = o.patient
                if p not in res.first_ns:
                    res.first_ns[p] = o.event_ns
                    res.patients.add(p)
                res.last_ns[p] = max(res.last_ns[p], o.event_ns) if p in res.last_ns else o.event_ns
            elif k is DeadLetter:
                res.dead_letters[o.reason] = res.dead_letters.get(o.reason, 0) + 1
            elif k is Quarantined:
                res.quarantined += 1
        res.readings += len(batch)
        if batch:
            if self.on_readings is not None:
                self.on_readings(batch)
            self._results(host.on_batch(batch)[0])

    def run(self, readings: Iterable[RawReading]) -> ReplayResult:
        group: list[RawReading] = []
        t = None
        last = None
        for raw in readings:
            if raw.event_ns != t:
                if group:
                    self._batch(group, t)
                group, t = [], raw.event_ns
            group.append(raw)
            last = raw.event_ns
        if group:
            self._batch(group, t)
        if last is not None:
            self._results(self.host.on_notify(last + run_on_ns(self.settings))[0])
        self._results(self.host.on_eof()[0])
        self.result.duplicates = self.ingest.stats.duplicates
        return self.result


# Technical alarms (IEC 60601-1-8: about the equipment, not the patient) are reported apart
# from the physiological ones an evaluation against labelled episodes is about.
TECHNICAL_RULES = frozenset({"no_data", "contact_lost", "battery_low", "gateway_offline", "broker_lost"})


def physiological(events: Iterable[dict]) -> list[dict]:
    return [e for e in events if e["rule"] not in TECHNICAL_RULES]


# -- what counts as a valid alert outside a labelled episode --

_RED = {"heart_rate": "heart_rate", "resp_rate": "resp_rate", "bp_systolic": "bp_systolic",
        "body_temp": "body_temp", "spo2": "spo2_scale1"}


def red_band(alert: dict) -> bool:
    """True when the alert's value is in a band NEWS2 (RCP 2017) scores 3 (for ``news2``
    alerts: a total of 7 or more, the high band): a clinician would want that alert
    whether or not an episode was labelled there.

    >>> red_band({"signal": "heart_rate", "value": 135}), red_band({"signal": "heart_rate", "value": 125})
    (True, False)
    >>> red_band({"signal": "news2", "value": 7}), red_band({"signal": "spo2", "value": 91})
    (True, True)
    """
    value = alert.get("value")
    if value is None:
        return False
    sig = str(alert.get("signal", ""))
    if sig == "news2":
        return float(value) >= 7
    bands = _RED.get(sig)
    if bands is None:
        # "bp_diastolic+bp_systolic": the crisis rule, > 180 and/or > 120 mm[Hg] by definition
        return "+" in sig and "bp_systolic" in sig
    param = "spo2" if bands.startswith("spo2") else bands
    return band_score(BANDS[bands], chart_value(param, float(value))) == 3


# -- several processes: patients are independent, so they can be split --

def _key(raw: RawReading) -> str:
    return raw.patient if raw.patient is not None else raw.device


# The parts a forked worker reads: set before the fork, so children share the parent's
# pages instead of receiving a pickled copy of every reading.
_PARTS: list[list[RawReading]] = []


def _run_part(args: tuple[Settings, int]) -> ReplayResult:
    settings, i = args
    return Replay(settings).run(_PARTS[i])


def run_parallel(settings: Settings, readings: list[RawReading], workers: int) -> ReplayResult:
    """``Replay.run`` over ``workers`` processes, readings split by the identity that
    ``identity: payload`` resolves (the payload's patient, else the device): every patient
    stays in one process, so alerts equal a one-process run's. With a registry a device
    may move between patients, so the split would not follow patients: one process.

    Results are merged in event-time order (ties: patient, rule, sequence)."""
    import hashlib
    import multiprocessing

    if workers <= 1 or settings.pipeline.identity != "payload" or len(readings) < 10_000:
        return Replay(settings).run(readings)
    parts: list[list[RawReading]] = [[] for _ in range(workers)]
    slot: dict[str, int] = {}
    for raw in readings:
        k = _key(raw)
        i = slot.get(k)
        if i is None:
            i = slot[k] = int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(),
                                         "big") % workers
        parts[i].append(raw)
    ctx = multiprocessing.get_context("fork")
    _PARTS[:] = parts
    try:
        with ctx.Pool(workers) as pool:
            results = pool.map(_run_part, [(settings, i) for i, p in enumerate(parts) if p])
    finally:
        _PARTS.clear()
    out = ReplayResult()
    for r in results:
        out.readings += r.readings
        out.patients |= r.patients
        out.first_ns.update(r.first_ns)
        out.last_ns.update(r.last_ns)
        out.alerts += r.alerts
        out.aggregates += r.aggregates
        out.quarantined += r.quarantined
        out.duplicates += r.duplicates
        for k, v in r.dead_letters.items():
            out.dead_letters[k] = out.dead_letters.get(k, 0) + v
    out.alerts.sort(key=lambda a: (a.event_ns, a.patient, a.rule, a.seq, a.state))
    return out
