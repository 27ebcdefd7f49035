"""A patient's recent days, summarised: what the profile's tag rules read.

Tags are statements about weeks ("blood pressure high on 3 days of the last 4
weeks"), so the profile keeps one small summary per *local* calendar day (in the
patient's own time zone: a night is a night where the patient sleeps) and drops
days older than its horizon. Summaries are sums and counts, so a reading's
contribution does not depend on when it arrived; the few things that need event
order (a heart-rate run, time below an SpO2 level) are tracked per signal with
the gap beyond which two readings are not taken to be continuous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

NS = 1_000_000_000
DAY_NS = 86_400 * NS


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(event_ns: int, tz: str) -> datetime:
    """The aware local time of an event.

    >>> local(0, "America/New_York").isoformat()
    '1969-12-31T19:00:00-05:00'
    """
    return datetime.fromtimestamp(event_ns / NS, tz=timezone.utc).astimezone(zone(tz))


def local_day(event_ns: int, tz: str) -> int:
    """The local calendar day of an event, as a proleptic Gregorian ordinal."""
    return local(event_ns, tz).date().toordinal()


def day_start_ns(day: int, tz: str) -> int:
    """When local day ``day`` begins, in UTC ns (a DST change makes days 23 or 25 h)."""
    d = datetime.fromordinal(day)
    return int(d.replace(tzinfo=zone(tz)).timestamp()) * NS


@dataclass
class Day:
    """One local day of one patient (mm[Hg], /min, %, mg/dL, steps)."""

    bp_n: int = 0
    sbp_sum_mm_hg: float = 0.0
    dbp_sum_mm_hg: float = 0.0
    bp_first: list = field(default_factory=list)  # up to 3 (event_ns, sbp, dbp): evidence
    tachy_episodes: int = 0
    tachy_first_ns: int | None = None
    spo2_night_n: int = 0
    spo2_below_s: float = 0.0  # time below the desaturation level, at night
    glucose_n: int = 0
    glucose_in_range: int = 0
    steps: float = 0.0
    steps_n: int = 0
    measured: set = field(default_factory=set)  # signals with at least one reading

    @property
    def sbp_mean_mm_hg(self) -> float:
        return self.sbp_sum_mm_hg / self.bp_n

    @property
    def dbp_mean_mm_hg(self) -> float:
        return self.dbp_sum_mm_hg / self.bp_n


@dataclass
class Run:
    """A signal's ongoing run above/below a level, for episode detection in event order."""

    last_ns: int | None = None
    last_value: float | None = None
    start_ns: int | None = None  # start of the current run beyond the level
    counted: bool = False  # this run already made an episode
