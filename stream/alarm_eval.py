"""How well alerts find labelled episodes: recall, precision, delay, false alerts per day.

Used by ``vitalstream replay FILE --labels LABELS``: the replay writes one dict per
alert event, ``evaluate`` compares them with hand-made labels. Pure functions;
the only I/O is ``read_labels``.

Labels file: CSV (``#`` and blank lines skipped), header ``patient,kind,type,start,end``
in any order::

    patient,kind,type,start,end
    p-7,episode,tachycardia_relative,2026-11-25T10:00:00Z,2026-11-25T10:20:00Z
    p-7,artefact,spike,1795604400,1795604410.5

- ``patient``: the patient id as the alerts name it (with no registry, the device id);
- ``kind``: ``episode`` (something an alert should find) or ``artefact`` (a stretch
  of bad signal: an alert there that finds no episode is counted as an artefact alert);
- ``type``: a free name, recall and delay are also reported per type;
- ``start``, ``end``: each either RFC 3339 with a zone (``...Z``) or, if it is a
  plain number, seconds since the epoch (fraction allowed). ``end >= start``.

A malformed labels file is a user's mistake: ``ReplayFormatError`` naming the file
and line (one line from the CLI, exit 2), not a half-evaluated report.

Alert events: dicts with at least ``patient``, ``rule``, ``state`` and the event
time as ``event_ns`` (integer, or its decimal text as ``Alert.to_fields`` writes
it) or ``event_time`` (RFC 3339, ``...Z`` or ``+00:00``); ``event_ns`` wins when
both are there, being exact. Only ``state == "firing"`` (``AlertState.FIRING``,
the first event of an alert episode) counts as an alert; re-alerts and
resolutions are the same alert carrying on.

Matching, per patient:

- an alert *matches* an episode when its time is in
  ``[start - match_before_s, end + match_after_s]`` (after: a rule on a window
  or a trend fires once the episode has gone on a while, sometimes after the
  label's end); one alert may match several episodes, it is one matched alert;
- an episode is *detected* when an alert matches it; its delay is the first
  matching alert's time minus the episode's start (negative only if
  ``match_before_s`` lets an alert come early: reported as it is);
- an alert that matches no episode is *valid* if ``valid(alert)`` says so (the
  caller's judgement, e.g. "the value really was in the red band"), else *false*;
- an unmatched alert within ``[start, end + 300 s]`` of an artefact of the same
  patient is also an *artefact alert* (counted apart; still false unless valid).
  A patient with no label at all has no episode: its alerts are valid or false.

Report (None where the ratio has no denominator, never a made-up 0 or 1):
``recall`` = detected / episodes; ``precision`` = (matched + valid) / alerts;
``alerts_per_episode`` = matched alerts / detected episodes;
``false_alerts_per_patient_day`` = false alerts / patient-days;
``median_delay_s`` over detected episodes; per type and per rule breakdowns.

>>> labels = parse_labels(["patient,kind,type,start,end", "p1,episode,brady,0,600"])
>>> alerts = [{"patient": "p1", "rule": "hr_low", "state": "firing", "event_ns": 120 * 10**9},
...           {"patient": "p1", "rule": "hr_low", "state": "realert", "event_ns": 500 * 10**9},
...           {"patient": "p1", "rule": "hr_low", "state": "firing",
...            "event_time": "1970-01-01T10:00:00Z"}]
>>> rep = evaluate(alerts, labels, patient_days=0.5)
>>> rep.recall, rep.precision, rep.median_delay_s, rep.false_alerts_per_patient_day
(1.0, 0.5, 120.0, 2.0)
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation

from vitalstream.model import AlertState
from vitalstream.stream.replay_input import ReplayFormatError
from vitalstream.timeutil import parse_iso8601_ns

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
EPISODE, ARTEFACT = "episode", "artefact"
KINDS = (EPISODE, ARTEFACT)
LABEL_COLUMNS = ("patient", "kind", "type", "start", "end")
ARTEFACT_AFTER_S = 300  # an artefact's effect on a window outlasts the artefact itself


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled stretch of one patient's record: [start_ns, end_ns], both included."""

    patient: str
    kind: str  # "episode" or "artefact"
    type: str
    start_ns: int
    end_ns: int


@dataclass(slots=True)
class RuleCounts:
    alerts: int = 0
    matched: int = 0
    valid: int = 0
    false: int = 0
    artefact: int = 0


@dataclass(slots=True)
class Report:
    """What ``evaluate`` found (see the module docstring for each ratio)."""

    alerts: int
    matched: int
    valid: int
    false_alerts: int
    artefact_alerts: int
    episodes: int
    detected: int
    patient_days: float
    recall: float | None
    precision: float | None
    alerts_per_episode: float | None
    false_alerts_per_patient_day: float | None
    median_delay_s: float | None
    episodes_by_type: dict[str, int] = field(default_factory=dict)
    detected_by_type: dict[str, int] = field(default_factory=dict)
    recall_by_type: dict[str, float] = field(default_factory=dict)
    median_delay_s_by_type: dict[str, float | None] = field(default_factory=dict)
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    other_events: int = 0  # non-firing events (re-alerts, resolutions) seen and not counted

    def to_json(self) -> dict:
        """Plain JSON values (str, int, float, None, dict)."""
        return asdict(self)

    def lines(self) -> list[str]:
        """A human-readable summary, one fact per line."""
        out = [f"alerts: {self.alerts} firing ({self.matched} matched an episode, "
               f"{self.valid} valid, {self.false_alerts} false; "
               f"{self.artefact_alerts} at an artefact)",
               f"recall: {_f(self.recall)} ({self.detected} of {self.episodes} episodes)"]
        for t in sorted(self.episodes_by_type):
            out.append(f"  {t}: {_f(self.recall_by_type[t])} "
                       f"({self.detected_by_type[t]} of {self.episodes_by_type[t]})")
        out += [f"precision: {_f(self.precision)}",
                f"alerts per detected episode: {_f(self.alerts_per_episode, 2)}",
                f"false alerts per patient-day: {_f(self.false_alerts_per_patient_day, 2)} "
                f"(over {self.patient_days:.2f} patient-days)",
                f"median detection delay: {_s(self.median_delay_s)}"]
        for t in sorted(self.median_delay_s_by_type):
            out.append(f"  {t}: {_s(self.median_delay_s_by_type[t])}")
        if self.by_rule:
            out.append("by rule:")
        for rule in sorted(self.by_rule):
            c = self.by_rule[rule]
            out.append(f"  {rule}: {c['alerts']} alerts, {c['matched']} matched, "
                       f"{c['valid']} valid, {c['false']} false, {c['artefact']} at an artefact")
        return out


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f} s"


# --- labels ----------------------------------------------------------------------

def _label_time(text: str) -> int:
    """ns of a label time: a plain number is seconds since the epoch, else RFC 3339."""
    text = text.strip()
    if text[:1].isdigit() or text[:1] in "+-.":
        try:
            d = Decimal(text)
        except InvalidOperation:
            d = None
        if d is not None and d.is_finite():
            return int((d * NS_PER_S).to_integral_value())
    return parse_iso8601_ns(text)  # ValueError names what is wrong


def parse_labels(lines: Iterable[str], source: str = "labels") -> list[Label]:
    """Labels of CSV ``lines`` (see the module docstring); ``source`` names them in errors."""
    numbered = ((n, ln) for n, ln in enumerate(lines, 1)
                if ln.strip() and not ln.lstrip().startswith("#"))
    rows = ((n, row) for n, ln in numbered for row in csv.reader([ln], skipinitialspace=True))

    def fail(n: int, reason: str, detail: str) -> ReplayFormatError:
        return ReplayFormatError("labels", None, reason, f"{source}: line {n}: {detail}")

    head = next(rows, None)
    if head is None:
        return []
    n, names = head[0], [c.strip().lower() for c in head[1]]
    if sorted(names) != sorted(LABEL_COLUMNS):
        raise fail(n, "bad_header", f"header {','.join(head[1])!r}: expected "
                                    f"{','.join(LABEL_COLUMNS)}")
    index = {name: i for i, name in enumerate(names)}
    out = []
    for n, row in rows:
        if len(row) != len(names):
            raise fail(n, "bad_row", f"{len(row)} fields, the header has {len(names)}")
        patient, kind, type_, start, end = (row[index[c]].strip() for c in LABEL_COLUMNS)
        if not patient or not type_:
            raise fail(n, "bad_row", "empty patient" if not patient else "empty type")
        if kind not in KINDS:
            raise fail(n, "bad_row", f"kind {kind!r} is neither {' nor '.join(KINDS)}")
        try:
            start_ns, end_ns = _label_time(start), _label_time(end)
        except ValueError as exc:
            raise fail(n, "bad_time", str(exc)) from None
        if end_ns < start_ns:
            raise fail(n, "bad_time", f"end {end!r} is before start {start!r}")
        out.append(Label(patient, kind, type_, start_ns, end_ns))
    return out


def read_labels(path: str) -> list[Label]:
    """Labels of the CSV file at ``path``; ReplayFormatError if unreadable or malformed."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return parse_labels(list(f), source=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayFormatError("labels", None, "unreadable", f"{path}: {exc}") from None


# --- evaluation --------------------------------------------------------------------

def alert_time_ns(alert: dict) -> int:
    """Event time of an alert dict: ``event_ns`` (exact) if present, else ``event_time``."""
    try:
        if alert.get("event_ns") is not None:
            t = alert["event_ns"]
            if isinstance(t, bool) or not isinstance(t, (int, str)):
                raise ValueError(f"event_ns={t!r}")
            return int(t)
        return parse_iso8601_ns(alert["event_time"])
    except (KeyError, ValueError) as exc:
        raise ReplayFormatError("alarm_eval", None, "bad_alert",
                                f"no readable event time ({exc}) in {alert!r}"[:300]) from None


def patient_days_from(readings: Iterable[tuple[str, int]]) -> dict[str, float]:
    """Per patient, (last - first event time) in days, from (patient, event_ns) pairs.

    A patient seen at one instant only has 0.0 days.

    >>> patient_days_from([("a", 0), ("b", 5), ("a", 43_200 * 10**9)])
    {'a': 0.5, 'b': 0.0}
    """
    span: dict[str, list[int]] = {}
    for patient, t in readings:
        s = span.get(patient)
        if s is None:
            span[patient] = [t, t]
        elif t < s[0]:
            s[0] = t
        elif t > s[1]:
            s[1] = t
    return {p: (hi - lo) / NS_PER_DAY for p, (lo, hi) in span.items()}


def _ratio(num: int, den: int | float) -> float | None:
    return None if den == 0 else num / den


def _median_s(delays_ns: list[int]) -> float | None:
    return statistics.median(delays_ns) / NS_PER_S if delays_ns else None


def evaluate(alerts: Iterable[dict], labels: list[Label], *,
             patient_days: float | dict[str, float],
             valid: Callable[[dict], bool] | None = None,
             match_after_s: float = 1800, match_before_s: float = 0) -> Report:
    """Compare alert events with labels (see the module docstring).

    ``patient_days``: the observed time, a total or per patient (summed), the
    denominator of false alerts per patient-day (``patient_days_from`` gives it).
    """
    after_ns, before_ns = round(match_after_s * NS_PER_S), round(match_before_s * NS_PER_S)
    artefact_ns = ARTEFACT_AFTER_S * NS_PER_S
    episodes: dict[str, list[tuple[int, Label]]] = {}  # patient -> (index, label)
    artefacts: dict[str, list[Label]] = {}
    episode_list = [lb for lb in labels if lb.kind == EPISODE]
    for i, lb in enumerate(episode_list):
        episodes.setdefault(lb.patient, []).append((i, lb))
    for lb in labels:
        if lb.kind == ARTEFACT:
            artefacts.setdefault(lb.patient, []).append(lb)

    first_match: dict[int, int] = {}  # episode index -> earliest matching alert time
    by_rule: dict[str, RuleCounts] = {}
    n_alerts = matched = n_valid = false = at_artefact = other = 0
    for alert in alerts:
        if alert.get("state") != AlertState.FIRING:
            other += 1
            continue
        t = alert_time_ns(alert)
        patient = alert.get("patient")
        counts = by_rule.setdefault(str(alert.get("rule", "")), RuleCounts())
        n_alerts += 1
        counts.alerts += 1
        hits = [i for i, lb in episodes.get(patient, ())  # type: ignore[arg-type]
                if lb.start_ns - before_ns <= t <= lb.end_ns + after_ns]
        for i in hits:
            if i not in first_match or t < first_match[i]:
                first_match[i] = t
        if hits:
            matched += 1
            counts.matched += 1
            continue
        if any(a.start_ns <= t <= a.end_ns + artefact_ns
               for a in artefacts.get(patient, ())):  # type: ignore[arg-type]
            at_artefact += 1
            counts.artefact += 1
        if valid is not None and valid(alert):
            n_valid += 1
            counts.valid += 1
        else:
            false += 1
            counts.false += 1

    days = float(sum(patient_days.values()) if isinstance(patient_days, dict) else patient_days)
    types = sorted({lb.type for lb in episode_list})
    delays = {i: first_match[i] - episode_list[i].start_ns for i in first_match}
    ep_by_type = {t: sum(1 for lb in episode_list if lb.type == t) for t in types}
    det_by_type = {t: sum(1 for i in delays if episode_list[i].type == t) for t in types}
    return Report(
        alerts=n_alerts, matched=matched, valid=n_valid, false_alerts=false,
        artefact_alerts=at_artefact, episodes=len(episode_list), detected=len(delays),
        patient_days=days,
        recall=_ratio(len(delays), len(episode_list)),
        precision=_ratio(matched + n_valid, n_alerts),
        alerts_per_episode=_ratio(matched, len(delays)),
        false_alerts_per_patient_day=_ratio(false, days),
        median_delay_s=_median_s(list(delays.values())),
        episodes_by_type=ep_by_type, detected_by_type=det_by_type,
        recall_by_type={t: det_by_type[t] / ep_by_type[t] for t in types},
        median_delay_s_by_type={
            t: _median_s([d for i, d in delays.items() if episode_list[i].type == t])
            for t in types},
        by_rule={r: asdict(c) for r, c in sorted(by_rule.items())},
        other_events=other)
