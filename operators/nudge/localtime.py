"""The patient's own clock: quiet hours and cap periods in the patient's IANA zone.

Times stay integer UTC nanoseconds; only these two questions go through local time,
with zoneinfo, so daylight saving is the zone database's business, not ours.

>>> from datetime import time
>>> NS = 1_000_000_000
>>> t = 1_774_818_000 * NS  # 2026-03-29 21:00 UTC = 22:00 BST (London sprang forward that day)
>>> out = quiet_end(t, "Europe/London", time(21, 0), time(8, 0))
>>> local(out, "Europe/London").isoformat()
'2026-03-30T08:00:00+01:00'
>>> period_key(t, "Europe/London", "week")
(2026, 13)
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from vitalstream.timeutil import from_datetime, to_datetime


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(ns: int, tz: str) -> datetime:
    """The aware local datetime of a UTC nanosecond time."""
    return to_datetime(ns).astimezone(zone(tz))


def in_quiet(t: time, start: time, end: time) -> bool:
    """Is local time of day ``t`` inside [start, end) (which may span midnight)?"""
    return start <= t < end if start < end else (t >= start or t < end)


def quiet_end(ns: int, tz: str, start: time, end: time) -> int:
    """``ns`` itself when outside quiet hours, else the instant quiet hours end that night.

    The end is the first ``end`` wall-clock time after ``ns`` on the patient's calendar;
    in a spring-forward gap it is the instant that wall-clock time maps to with fold=0
    (zoneinfo: the offset before the change), i.e. just after the gap."""
    lt = local(ns, tz)
    if not in_quiet(lt.time().replace(tzinfo=None), start, end):
        return ns
    day = lt.date()
    if start > end and lt.time().replace(tzinfo=None) >= start:
        day += timedelta(days=1)  # quiet from the evening: it ends tomorrow morning
    return max(ns, from_datetime(datetime.combine(day, end, tzinfo=zone(tz))))


def period_key(ns: int, tz: str, per: str) -> tuple[int, ...]:
    """The local calendar day (y, m, d) or ISO week (y, w) holding ``ns``."""
    d = local(ns, tz).date()
    if per == "day":
        return (d.year, d.month, d.day)
    iso = d.isocalendar()
    return (iso[0], iso[1])
