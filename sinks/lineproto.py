"""InfluxDB line protocol for readings, window aggregates and anomaly scores.

Layout (see README "InfluxDB layout"):

- ``vitals``: tags ``patient``, ``device``, ``signal``; field ``value`` (float,
  in the signal's canonical unit); time = event time in ns. Flags other than OK
  go to an integer field ``quality``.
- ``vitals_1m`` (``vitals_<size>`` for other window sizes): same tags; fields
  ``count`` (integer), ``min``, ``max``, ``mean``, ``last``; time = window start.
- ``anomaly``: tags ``patient``, ``signal``; fields ``score``, ``expected_low``,
  ``expected_high``, ``observed``.

Tag cardinality is patients x devices x signals: bounded by the fleet. Units,
sources and quality are fields or documentation, never tags, so they cannot
multiply series. Writing line protocol strings in batches is several times
cheaper than building client ``Point`` objects per reading.
"""

from __future__ import annotations

import math

from vitalstream.model import Reading, WindowAggregate

_TAG_ESC = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\\": "\\\\"})


def tag(value: str) -> str:
    """Escape a tag key or value.

    >>> tag("a b,c=d")
    'a\\\\ b\\\\,c\\\\=d'
    """
    return value.translate(_TAG_ESC)


def window_measurement(size_ns: int) -> str:
    """``vitals_1m`` for one minute, ``vitals_30s``, ``vitals_1h``...

    >>> window_measurement(60 * 10**9), window_measurement(30 * 10**9), window_measurement(3600 * 10**9)
    ('vitals_1m', 'vitals_30s', 'vitals_1h')
    """
    s = size_ns // 1_000_000_000
    if s % 3600 == 0:
        return f"vitals_{s // 3600}h"
    if s % 60 == 0:
        return f"vitals_{s // 60}m"
    return f"vitals_{s}s"


def reading_line(r: Reading) -> str:
    q = f",quality={int(r.quality)}i" if r.quality else ""
    return (f"vitals,patient={tag(r.patient)},device={tag(r.device)},signal={r.signal.value} "
            f"value={float(r.value)!r}{q} {r.event_ns}")


def aggregate_line(a: WindowAggregate, measurement: str) -> str:
    return (f"{measurement},patient={tag(a.patient)},device={tag(a.device)},signal={a.signal.value} "
            f"count={a.count}i,min={float(a.min)!r},max={float(a.max)!r},"
            f"mean={float(a.mean)!r},last={float(a.last)!r} {a.start_ns}")


def score_line(patient: str, signal: str, score: float, event_ns: int,
               low: float | None = None, high: float | None = None,
               observed: float | None = None) -> str:
    fields = [f"score={float(score)!r}"]
    for name, v in (("expected_low", low), ("expected_high", high), ("observed", observed)):
        if v is not None and math.isfinite(v):
            fields.append(f"{name}={float(v)!r}")
    return f"anomaly,patient={tag(patient)},signal={tag(signal)} {','.join(fields)} {event_ns}"
