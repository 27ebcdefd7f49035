"""The care stage on a fake clock into a real Redis: caps as the patient sees them, and
clinical alerts that nothing in the care stage can hold back.

Caps: a patient tagged hypertensive by their readings stops measuring for 4 weeks
(across the spring-forward of Europe/London on 2026-03-29). The strategy asks again and
again (every 6 h, or every day); what lands in Redis (the outreach stream
``vitalstream:nudges`` and the patient's log) must be exactly one reminder per local
day (or ISO week), each at the first moment the strategy asked outside quiet hours.
The expected times come from calendar arithmetic with zoneinfo in this file.

Clinical alerts: the clinical flow (``assembly.patient_flow(Settings())``) alone, and
the clinical flow beside the care stage on the same readings, in quiet hours with the
day's sms cap spent: the same alerts, at the same event times, in the alerts stream.
"""

from __future__ import annotations

import json

import calendar
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vitalstream.model import Alert, Reading
from vitalstream.operators.care import CareFlow
from vitalstream.operators.nudge import NudgePolicy
from vitalstream.operators.profile import ProfileRules
from vitalstream.operators.shard import PatientHost
from vitalstream.signals import Signal
from vitalstream.sinks.profiles import ProfileStore
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.care import CareService, CareWriter
from vitalstream.stream.settings import Settings
from vitalstream.testing import FakeClock

NS = 1_000_000_000
HOUR = 3600 * NS
DAY = 24 * HOUR
LON = ZoneInfo("Europe/London")
T0 = calendar.timegm((2026, 3, 9, 0, 0, 0)) * NS  # a Monday; London on GMT until 03-29


def _policy(per: str, repeat_s: int) -> NudgePolicy:
    return NudgePolicy.from_yaml(f"""
timezone: Europe/London
quiet_hours: {{start: "21:00", end: "08:00", channels: [sms]}}
caps: [{{channel: sms, per: {per}, max: 1}}]
strategies:
  - name: bp-missing
    when: {{no_reading: {{signal: bp_systolic, for_s: 86400}}, programme: hypertension}}
    send: {{kind: patient-reminder, channel: sms, message: "Please take a blood pressure reading."}}
    repeat_s: {repeat_s}
""")


def _bp(patient: str, days: int, start: int = T0) -> list[Reading]:
    """Stage-2 home readings at 07:30 and 20:10 UTC each day (tagged after 3 days)."""
    out = []
    for d in range(days):
        for h, m in ((7, 30), (20, 10)):
            t = start + d * DAY + h * HOUR + m * 60 * NS
            out += [Reading(patient, "cuff", Signal.BP_SYSTOLIC, 152.0, "mm[Hg]", t, t),
                    Reading(patient, "cuff", Signal.BP_DIASTOLIC, 96.0, "mm[Hg]", t, t)]
    return out


def _local(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, tz=LON)


def _at_local(day, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=LON).timestamp()) * NS


def _sendable(ns: int) -> int:
    """The first instant at or after ``ns`` outside 21:00-08:00 London time."""
    lt = _local(ns)
    if 8 <= lt.hour < 21:
        return ns
    day = lt.date() if lt.hour < 8 else lt.date() + timedelta(days=1)
    return _at_local(day, 8)


def _period(ns: int, per: str) -> tuple:
    d = _local(ns).date()
    return (d.year, d.month, d.day) if per == "day" else tuple(d.isocalendar())[:2]


def _feed(svc: CareService, readings: list[Reading]) -> None:
    by_t: dict[int, list[Reading]] = {}
    for r in readings:
        by_t.setdefault(r.event_ns, []).append(r)
    for t in sorted(by_t):
        svc.run_until(t)
        svc.feed(by_t[t])


@pytest.mark.parametrize("per, repeat_s", [("day", 6 * 3600), ("week", 86_400)])
def test_a_silent_patient_gets_exactly_one_reminder_per_cap_period(redis_client, per, repeat_s):
    store = ProfileStore(redis_client)
    flow = CareFlow(ProfileRules(timezone="Europe/London"), _policy(per, repeat_s), None)
    svc = CareService(flow, CareWriter(store), FakeClock(T0))
    readings = _bp("p-silent", 7)
    _feed(svc, readings)
    assert store.tags("p-silent")["hypertension"]["effective"] is not None
    last = readings[-1].event_ns  # 2026-03-15 20:10 UTC
    end = last + 28 * DAY
    svc.run_until(end)

    # independent: the strategy asks every repeat_s from one day after the last reading;
    # each ask can go out at once or when quiet hours end; the first of each period goes
    asks = range(last + DAY, end + 1, repeat_s * NS)
    first: dict[tuple, int] = {}
    for t in asks:
        c = _sendable(t)
        if c <= end:
            first.setdefault(_period(c, per), c)
    expected = sorted(first.values())
    assert len(expected) == (28 if per == "day" else 4)  # 03-16..04-12 local; ISO weeks 12..15

    queued = [json.loads(f[b"message"]) for _, f in redis_client.xrange("vitalstream:nudges")]
    assert [int(q["at_ns"]) for q in queued if q["patient"] == "p-silent"] == expected
    log = store.nudges("p-silent", count=1000)
    sent = [n["at_ns"] for n in log if n["status"] == "sent"]
    assert sent == expected
    periods = [_period(t, per) for t in sent]
    assert len(set(periods)) == len(periods)  # exactly one per period...
    assert set(periods) == set(first)  # ...in every period the patient was asked in
    # the rest were refused by the cap (never silently dropped)
    assert store.suppressed("p-silent").get("bp-missing|cap", 0) > 0
    # the DST change is inside: quiet hours end at 08:00 local, 08:00 UTC before it and
    # 07:00 UTC after (the weekly sends go at 20:10 GMT, then at 08:00 BST)
    utc_hours = {datetime.fromtimestamp(t // NS, tz=timezone.utc).hour
                 for t in sent if _local(t).hour == 8}
    assert utc_hours == ({7, 8} if per == "day" else {7})


def _episode(patient: str, start: int, minutes: int, value: float) -> list[Reading]:
    return [Reading(patient, "oximeter", Signal.SPO2, value, "%", t, t)
            for t in range(start, start + minutes * 60 * NS, 15 * NS)]


def _run_clinical(readings: list[Reading], care: CareService | None, outreach: RedisOutreach | None):
    """Readings in receive order through the clinical host (timers first, as the reference
    runner does) and, when given, the care stage; alerts with the time they came out."""
    host = PatientHost(patient_flow(Settings())).build()
    alerts: list[tuple[Alert, int]] = []

    def emit(items, at: int) -> None:
        got = [x for x in items if type(x) is Alert]
        alerts.extend((a, at) for a in got)
        if got and outreach is not None:
            outreach.write_alerts(got)

    by_t: dict[int, list[Reading]] = {}
    for r in readings:
        by_t.setdefault(r.recv_ns, []).append(r)
    for t in sorted(by_t):
        due = host.notify_at()
        if due is not None and due <= t:
            emit(host.on_notify(t)[0], t)
        if care is not None:
            care.run_until(t)
            care.feed(by_t[t])
        emit(host.on_batch(by_t[t])[0], t)
    emit(host.on_eof()[0], max(by_t))
    return alerts


def test_clinical_alerts_are_not_held_by_caps_or_quiet_hours(redis_client):
    pid = "p-clin"
    bp = _bp(pid, 3)  # tagged hypertensive on 03-11; then no BP reading
    night = calendar.timegm((2026, 3, 13, 22, 30, 0)) * NS  # 22:30 London (GMT): quiet
    spo2 = _episode(pid, night, 20, 84.0) + _episode(pid, night + 20 * 60 * NS, 15, 97.0)
    readings = sorted(bp + spo2, key=lambda r: (r.event_ns, r.signal.value))

    alone = _run_clinical(readings, None, None)
    assert any(a.rule.startswith("desaturation") for a, _ in alone)

    store = ProfileStore(redis_client)
    flow = CareFlow(ProfileRules(timezone="Europe/London"), _policy("day", 6 * 3600), None)
    care = CareService(flow, CareWriter(store), FakeClock(T0))
    stream = "vitalstream:test:alerts-beside-care"
    outreach = RedisOutreach(RedisConfig(url="redis://unused", alerts_stream=stream),
                             client=redis_client)
    both = _run_clinical(readings, care, outreach)
    care.run_until(night + 12 * HOUR)

    key = lambda a: (a.event_id, a.event_ns, a.rule, a.state)  # noqa: E731
    assert [key(a) for a, _ in both] == [key(a) for a, _ in alone]
    landed = [{k.decode(): v.decode() for k, v in f.items()} for _, f in redis_client.xrange(stream)]
    assert [(x["event_id"], int(x["event_ns"])) for x in landed] == \
        [(a.event_id, a.event_ns) for a, _ in alone]

    # the desaturation alert came out in quiet hours, within seconds of its reading...
    fired = [(a, at) for a, at in both if a.rule.startswith("desaturation") and a.state == "firing"]
    assert fired
    for a, at in fired:
        assert at - a.event_ns <= 30 * NS
        assert _local(at).hour >= 21 or _local(at).hour < 8
    # ...while that day's sms cap was spent (sent at 08:00, the later asks refused)
    nudges = [n for n in store.nudges(pid, count=1000)]
    day = _local(night).date()
    today = [n for n in nudges if _local(n["at_ns"]).date() == day and n["at_ns"] < fired[0][1]]
    assert [n["status"] for n in today if n["status"] == "sent"] == ["sent"]
    assert any(n["status"] == "suppressed" and n["reason"] == "cap" for n in today)
    # ...and the reminder that fell due in the same night waited for 08:00
    deferred = [n for n in nudges if n["status"] == "sent" and night < int(n["due_ns"]) < _at_local(
        day + timedelta(days=1), 8)]
    assert len(deferred) == 1
    assert deferred[0]["at_ns"] == _at_local(day + timedelta(days=1), 8) > int(deferred[0]["due_ns"])
    assert _local(int(deferred[0]["due_ns"])).hour < 8  # due in quiet hours
