"""Nudge engine on the patient's own clock: caps by local day / ISO week, quiet hours
across DST changes and in zones far from UTC.

Expected local times are checked with zoneinfo directly and the expected UTC instants
are worked out by hand from the published offsets, not taken from the engine.
"""

from __future__ import annotations

import calendar
from collections import Counter
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vitalstream.care import CareEvent, Nudge, NudgeSuppressed, TagChange
from vitalstream.clock import FakeClock
from vitalstream.model import Reading
from vitalstream.operators.check import Clocked
from vitalstream.operators.nudge import NudgePolicy
from vitalstream.signals import Signal

NS = 1_000_000_000
H = 3600 * NS
DAY = 86_400 * NS


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, 0)) * NS


def local(ns: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ns // NS, tz=timezone.utc).astimezone(ZoneInfo(tz))


def drive(pol: NudgePolicy, items: list, end: int, key: str = "p1") -> list:
    clock = FakeClock(0)
    c = Clocked(pol.build(key=key), clock)
    out: list = []

    def until(t: int) -> None:
        while (due := c.notify_at()) is not None and due <= t:
            clock.set(max(due, clock.now_ns()))
            out.extend(c.on_notify())
        clock.set(max(t, clock.now_ns()))

    for x in items:
        until(x.at_ns if isinstance(x, TagChange) else x.event_ns)
        out.extend(c.on_item(x))
    until(end)
    return out


def welcome_policy(tz: str, **top) -> NudgePolicy:
    return NudgePolicy.from_dict({
        "timezone": tz, "quiet_hours": {"start": "21:00", "end": "08:00"}, **top,
        "strategies": [{"name": "welcome", "when": {"tag_set": "hypertension"},
                        "send": {"kind": "patient-reminder", "channel": "sms"}}]})


def tagged(t: int) -> TagChange:
    return TagChange("p1", "hypertension", "set", "r", t, None, 1.0, t)


# -- 2. caps: exactly one reminder per cap period --

@pytest.mark.parametrize("tz", ["Europe/London", "Pacific/Auckland", "America/New_York"])
def test_three_silent_weeks_with_a_daily_strategy_and_a_weekly_cap_give_one_per_iso_week(tz) -> None:
    pol = NudgePolicy.from_dict({
        "timezone": tz, "caps": [{"channel": "sms", "per": "week", "max": 1}],
        "strategies": [{"name": "bp-missing", "repeat_s": 86400,
                        "when": {"no_reading": {"signal": "bp_systolic", "for_s": 86400},
                                 "programme": "hypertension"},
                        "send": {"kind": "patient-reminder", "channel": "sms"}}]})
    t0 = utc(2026, 5, 6, 12, 0)  # a Wednesday (UTC); its last reading
    items = [CareEvent("p1", "enrol", t0 - H, "hypertension"),
             Reading("p1", "cuff", Signal.BP_SYSTOLIC, 125.0, "mm[Hg]", t0, t0)]
    end = t0 + 21 * DAY + H
    out = drive(pol, items, end)
    nudges = [x for x in out if isinstance(x, Nudge)]
    capped = [x for x in out if isinstance(x, NudgeSuppressed)]
    # triggers: one per day from day 1 to day 21 after the reading (no quiet hours and no
    # digest window: a capped one is suppressed at its trigger time)
    dues = [t0 + k * DAY for k in range(1, 22)]
    assert sorted([n.due_ns for n in nudges] + [s.at_ns for s in capped]) == dues
    assert all(n.at_ns == n.due_ns for n in nudges)
    # the ISO weeks of those trigger instants in the patient's zone, by zoneinfo
    weeks = Counter(local(t, tz).isocalendar()[:2] for t in dues)
    sent_weeks = Counter(local(n.at_ns, tz).isocalendar()[:2] for n in nudges)
    assert sent_weeks == Counter({w: 1 for w in weeks})  # exactly one per ISO week
    assert len(weeks) in (4, 3) and len(nudges) == len(weeks)
    # the first trigger of each week is the one sent
    first = {}
    for t in dues:
        first.setdefault(local(t, tz).isocalendar()[:2], t)
    assert sorted(n.due_ns for n in nudges) == sorted(first.values())
    assert {(s.reason, s.detail) for s in capped} == {("cap", "sms/week")}
    assert len(capped) == 21 - len(weeks)


def test_a_day_cap_counts_the_patients_calendar_day_not_utcs() -> None:
    caps = [{"channel": "sms", "per": "day", "max": 1}]
    two = [{"name": n, "when": {"tag_set": n},
            "send": {"kind": "patient-reminder", "channel": "sms"}} for n in ("a", "b")]
    # 10:00 and 13:00 UTC on 2026-05-04: the same day in London (11:00, 14:00 BST) but
    # 22:00 on the 4th and 01:00 on the 5th in Auckland (NZST, UTC+12)
    items = [TagChange("p1", "a", "set", "r", utc(2026, 5, 4, 10), None, 1.0, utc(2026, 5, 4, 10)),
             TagChange("p1", "b", "set", "r", utc(2026, 5, 4, 13), None, 1.0, utc(2026, 5, 4, 13))]
    for tz, sent in (("Europe/London", ["a"]), ("Pacific/Auckland", ["a", "b"])):
        pol = NudgePolicy.from_dict({"timezone": tz, "caps": caps, "strategies": two})
        out = drive(pol, items, utc(2026, 5, 6))
        assert [n.strategy for n in out if isinstance(n, Nudge)] == sent, tz
    assert local(utc(2026, 5, 4, 13), "Pacific/Auckland").day == 5  # the premise


# -- 3. quiet hours in the patient's zone --

@pytest.mark.parametrize("tz,trigger,want_utc,offset_h", [
    # London springs forward 2026-03-29 01:00 UTC: 22:30 GMT on the 28th is held to
    # 08:00 BST (UTC+1) on the 29th = 07:00 UTC
    ("Europe/London", utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 7, 0), 1.0),
    # New York falls back 2026-11-01 06:00 UTC: 23:00 EDT on 10-31 (03:00 UTC) is held
    # to 08:00 EST (UTC-5) = 13:00 UTC
    ("America/New_York", utc(2026, 11, 1, 3, 0), utc(2026, 11, 1, 13, 0), -5.0),
    # Kolkata (UTC+5:30, no DST): 16:00 UTC = 21:30 IST -> 08:00 IST next day = 02:30 UTC
    ("Asia/Kolkata", utc(2026, 5, 1, 16, 0), utc(2026, 5, 2, 2, 30), 5.5),
    # ... and 02:00 UTC = 07:30 IST (early morning, same night) -> 08:00 IST = 02:30 UTC
    ("Asia/Kolkata", utc(2026, 5, 2, 2, 0), utc(2026, 5, 2, 2, 30), 5.5),
    # Auckland leaves DST 2026-04-05 (03:00 NZDT -> 02:00 NZST): 21:30 NZDT on 04-04
    # (08:30 UTC) is held to 08:00 NZST (UTC+12) on the 5th = 20:00 UTC on the 4th
    ("Pacific/Auckland", utc(2026, 4, 4, 8, 30), utc(2026, 4, 4, 20, 0), 12.0),
])
def test_quiet_hours_hold_to_the_local_morning_across_dst(tz, trigger, want_utc, offset_h) -> None:
    out = drive(welcome_policy(tz), [tagged(trigger)], trigger + 2 * DAY)
    [n] = [x for x in out if isinstance(x, Nudge)]
    assert n.due_ns == trigger and n.at_ns == want_utc
    sent = local(n.at_ns, tz)
    assert sent.time() == time(8, 0) and sent.utcoffset() == timedelta(hours=offset_h)
    assert local(trigger, tz).time() >= time(21, 0) or local(trigger, tz).time() < time(8, 0)


def test_outside_quiet_hours_nothing_is_held_and_a_channel_list_limits_them() -> None:
    t = utc(2026, 5, 1, 3, 0)  # 08:30 IST
    out = drive(welcome_policy("Asia/Kolkata"), [tagged(t)], t + DAY)
    assert [n.at_ns for n in out if isinstance(n, Nudge)] == [t]
    night = utc(2026, 5, 1, 23, 0)  # 00:00 BST: quiet hours hold only the app channel, so the sms goes
    pol = welcome_policy("Europe/London",
                         quiet_hours={"start": "21:00", "end": "08:00", "channels": ["app"]})
    out = drive(pol, [tagged(night)], night + DAY)
    assert [n.at_ns for n in out if isinstance(n, Nudge)] == [night]


def test_the_patients_timezone_event_moves_their_quiet_hours() -> None:
    t = utc(2026, 5, 1, 22, 0)  # 23:00 in London (quiet), 18:00 in New York (not)
    out = drive(welcome_policy("Europe/London"),
                [CareEvent("p1", "timezone", t - H, "America/New_York"), tagged(t)], t + DAY)
    assert [n.at_ns for n in out if isinstance(n, Nudge)] == [t]
    out = drive(welcome_policy("Europe/London"),
                [CareEvent("p1", "timezone", t - H, "Mars/Olympus"), tagged(t)], t + DAY)
    assert [n.at_ns for n in out if isinstance(n, Nudge)] == [utc(2026, 5, 2, 7, 0)]


def test_quiet_hours_ending_inside_the_spring_forward_gap_end_just_after_it() -> None:
    # 01:30 does not exist in London on 2026-03-29 (01:00 GMT -> 02:00 BST): the wall
    # clock shows 02:30 BST at 01:30 UTC
    pol = welcome_policy("Europe/London", quiet_hours={"start": "23:00", "end": "01:30"})
    t = utc(2026, 3, 28, 23, 30)
    [n] = [x for x in drive(pol, [tagged(t)], t + DAY) if isinstance(x, Nudge)]
    assert n.at_ns == utc(2026, 3, 29, 1, 30)
    assert local(n.at_ns, "Europe/London").strftime("%H:%M %Z") == "02:30 BST"


def test_a_patient_in_new_york_with_a_weekly_cap_counts_the_local_iso_week() -> None:
    # Sunday 2026-05-10 23:30 EDT is Monday 03:30 UTC: still the week of May 4 in New York
    caps = [{"channel": "sms", "per": "week", "max": 1}]
    two = [{"name": n, "when": {"tag_set": n},
            "send": {"kind": "patient-reminder", "channel": "sms"}} for n in ("a", "b")]
    a, b = utc(2026, 5, 8, 16, 0), utc(2026, 5, 11, 3, 30)
    items = [TagChange("p1", x, "set", "r", t, None, 1.0, t) for x, t in (("a", a), ("b", b))]
    out = drive(NudgePolicy.from_dict({"timezone": "America/New_York", "caps": caps,
                                       "strategies": two}), items, b + DAY)
    assert [x.strategy for x in out if isinstance(x, Nudge)] == ["a"]
    assert local(a, "America/New_York").isocalendar()[1] == local(b, "America/New_York").isocalendar()[1]
    out = drive(NudgePolicy.from_dict({"timezone": "UTC", "caps": caps, "strategies": two}),
                items, b + DAY)
    assert [x.strategy for x in out if isinstance(x, Nudge)] == ["a", "b"]
