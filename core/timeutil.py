"""Time in vitalstream: integer nanoseconds since the Unix epoch, UTC, and the one
ISO-8601 parser every connector uses.

Why one parser: each codec used to read times its own way (``datetime.fromisoformat``
here, a hand-written RFC 3339 regex there), so the same text could be a reading
on one topic and a dead letter on another, and only one of them kept nanoseconds.

Grammar (``parse_iso8601_ns``): the RFC 3339 section 5.6 ``date-time`` profile of
ISO 8601, which is also what JSON Schema's ``"format": "date-time"`` means::

    YYYY-MM-DD "T" hh:mm:ss [ "." fraction ] ( "Z" | ("+" | "-") hh:mm )

- ``T`` and ``Z`` may be lower case (RFC 3339 5.6, NOTE). Nothing else is
  accepted: no space separator, no basic format (``20261125T100000Z``), no
  week or ordinal dates, no missing seconds, no ``+0100`` or ``+01`` offsets.
- The zone is mandatory: a naive time is a ``ValueError``, because guessing the
  zone of a clinical time is worse than rejecting it. The one exception is a
  device clock that is naive by specification (a Bluetooth GATT Date Time):
  its caller passes ``naive_tz``, the zone the device clock is known to run in
  (a time that does carry an offset is still read at that offset).
- The fraction is kept to the nanosecond, exactly (``datetime`` stops at the
  microsecond, so it is parsed by hand); digits beyond the ninth must be zeros.
- ``-00:00`` (RFC 3339 4.3, "UTC, local offset unknown") is UTC.
- Leap seconds (``:60``) are refused: UTC nanoseconds since the epoch cannot
  hold them (POSIX time, which InfluxDB also uses, has no leap seconds).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_DATE_TIME = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt](?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d+))?"
    r"(?P<zone>[Zz]|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))?")


def parse_iso8601_ns(text: str, *, naive_tz: tzinfo | None = None) -> int:
    """Integer UTC nanoseconds of an RFC 3339 date-time (see the module docstring).

    Raises ``ValueError`` for anything else: wrong grammar, an impossible date or
    time (2026-02-30, 24:00:00), a leap second, a fraction finer than a
    nanosecond, or a missing zone (unless ``naive_tz`` is given).

    >>> parse_iso8601_ns("1970-01-01T01:00:00.000000001+01:00")
    1
    >>> parse_iso8601_ns("2026-11-25T10:00:00Z") == 1_795_600_800 * NS_PER_S
    True
    """
    m = _DATE_TIME.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    zone = m["zone"]
    if zone is None and naive_tz is None:
        raise ValueError(f"no time zone (add Z or an offset such as +01:00): {text!r}")
    frac = m["frac"] or ""
    if len(frac) > 9 and frac[9:].strip("0"):
        raise ValueError(f"date-time finer than a nanosecond: {text!r}")
    if m["s"] == "60":
        raise ValueError(f"leap second cannot be represented in UTC nanoseconds: {text!r}")
    if zone is None:
        tz: tzinfo = naive_tz  # type: ignore[assignment]  # checked above
    elif zone in "Zz":
        tz = timezone.utc
    else:
        oh, om = int(m["oh"]), int(m["om"])
        if oh > 23 or om > 59:
            raise ValueError(f"offset out of range in {text!r}")
        offset = timedelta(hours=oh, minutes=om)
        tz = timezone(-offset if m["sign"] == "-" else offset)
    try:
        # fold=0: in a DST fold the first (summer-time) instant is taken; a time in a
        # spring-forward gap is shifted by the zone rules (zoneinfo's behaviour).
        dt = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]),
                      int(m["s"]), tzinfo=tz)
    except ValueError as exc:  # month 13, day 30 in February, hour 24...
        raise ValueError(f"{exc}: {text!r}") from None
    whole = dt - _EPOCH
    return (whole.days * 86_400 + whole.seconds) * NS_PER_S + int(frac[:9].ljust(9, "0"))


def format_iso8601_ns(ns: int) -> str:
    """RFC 3339 UTC text of integer nanoseconds, exact, trailing zeros trimmed.

    ``parse_iso8601_ns(format_iso8601_ns(n)) == n`` for every n in years 1..9999.

    >>> format_iso8601_ns(1_500_000_000)
    '1970-01-01T00:00:01.5Z'
    """
    secs, frac = divmod(ns, NS_PER_S)
    dt = _EPOCH + timedelta(seconds=secs)
    # by hand, not strftime: glibc writes year 1 as "1", which is not RFC 3339
    text = (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
            f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def to_datetime(ns: int) -> datetime:
    """Aware UTC datetime of an integer-nanosecond timestamp, truncated to the microsecond.

    Integer arithmetic: going through a float of seconds (``fromtimestamp``) can
    land one microsecond off for present-day times.
    """
    return _EPOCH + timedelta(microseconds=ns // NS_PER_US)


def from_datetime(dt: datetime) -> int:
    """Integer nanoseconds of an aware datetime; naive datetimes are refused."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: attach a time zone before converting")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def iso_z(event_ns: int) -> str:
    """ISO-8601 UTC with ``Z``, to the millisecond when there is one.

    >>> iso_z(1_790_000_000_250_000_000), iso_z(0)
    ('2026-09-21T14:13:20.250Z', '1970-01-01T00:00:00Z')
    """
    s, rest = divmod(event_ns, 1_000_000_000)
    text = datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    ms = rest // 1_000_000
    return f"{text}.{ms:03d}Z" if ms else f"{text}Z"
