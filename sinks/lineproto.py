r"""InfluxDB line protocol for readings, window aggregates and anomaly scores.

Layout (see README "InfluxDB layout"):

- ``vitals``: tags ``device``, ``patient``, ``signal``; field ``value`` (float,
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

Escaping follows influxdb-client exactly, and the lines are the ones its
``Point.to_line_protocol`` would give for the same point (tags and fields in key
order, a whole float without its ``.0``, a tag with an empty value left out), so
the client is the oracle in the tests. A name can never split a line: newline,
CR and tab are written as the two characters ``\n``, ``\r``, ``\t``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vitalstream.model import Reading, WindowAggregate

if TYPE_CHECKING:
    from vitalstream.operators.burden import BurdenPoint

# The escape tables of influxdb-client 1.50 (influxdb_client.client.write.point:
# _ESCAPE_MEASUREMENT, _ESCAPE_KEY, _ESCAPE_STRING), copied rather than imported
# because they are private names. tests/test_store_safety.py proves the functions
# below equal Point.to_line_protocol for every code point, so an upgrade that
# changes them fails there. A backslash is not escaped in names (InfluxDB keeps
# "\\" as two backslashes in a tag), which is why ids may not hold one
# (vitalstream.ids).
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                             "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def measurement(name: str) -> str:
    r"""Escape a measurement name.

    >>> print(measurement("my vitals,v2"))
    my\ vitals\,v2
    """
    return name.translate(_ESCAPE_MEASUREMENT)


def tag_key(key: str) -> str:
    """Escape a tag key or a field key (the same rules)."""
    return key.translate(_ESCAPE_KEY)


field_key = tag_key


def tag(value: str) -> str:
    r"""Escape a tag value.

    A trailing backslash would escape the separator after it, so influxdb-client
    appends a space (read back as an escaped space), and so does this.

    >>> print(tag("a b,c=d"), tag("p\nvitals"), tag("x\\") + ",")
    a\ b\,c\=d p\nvitals x\ ,
    """
    out = value.translate(_ESCAPE_KEY)
    return out + " " if out.endswith("\\") else out


tag_value = tag


def string_field(value: str) -> str:
    r"""A string field value, quoted and escaped.

    >>> print(string_field('say "hi" \\ bye'))
    "say \"hi\" \\ bye"
    """
    return '"' + value.translate(_ESCAPE_STRING) + '"'


def line_measurement(line: str) -> str:
    r"""The measurement of a line, as written (escapes kept).

    >>> print(line_measurement("vitals,patient=p value=1 5"), line_measurement(r"a\ b\,c x=1"))
    vitals a\ b\,c
    """
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2  # an escaped character never ends the name
            continue
        if c == "," or c == " ":
            break
        i += 1
    return line[:i]


def _float(v: float) -> str:
    # influxdb-client's format: str(), and a whole number without ".0" (still a float
    # in line protocol: only an "i" suffix makes an integer).
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def _tags(**tags: str) -> str:
    # key order (what InfluxDB stores and recommends sending); an empty tag value is
    # invalid line protocol, so it is left out as the client does.
    return "".join(f",{k}={tag(v)}" for k, v in sorted(tags.items()) if v)


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


_SERIES: dict[tuple[str, str, str], str] = {}  # (device, patient, signal) -> escaped prefix


def reading_line(r: Reading) -> str:
    key = (r.device, r.patient, r.signal.value)
    prefix = _SERIES.get(key)
    if prefix is None:
        # Escaping costs more than the rest of the line; a fleet has few series.
        if len(_SERIES) >= 200_000:
            _SERIES.clear()
        prefix = _SERIES[key] = f"vitals{_tags(device=key[0], patient=key[1], signal=key[2])} "
    q = f"quality={int(r.quality)}i," if r.quality else ""
    return f"{prefix}{q}value={_float(r.value)} {r.event_ns}"


def aggregate_line(a: WindowAggregate, measurement_name: str) -> str:
    """Every aggregate the window was configured with, one field each (``count`` an
    integer); ``partial=true`` when the window was closed before its time (a stop
    without durable state)."""
    fields = []
    for name, v in sorted(a.values.items()):
        if name == "count":
            fields.append(f"count={int(v)}i")
        elif v is not None and math.isfinite(v):
            fields.append(f"{field_key(name)}={_float(v)}")
    if a.partial:
        fields.append("partial=true")
    return (f"{measurement(measurement_name)}"
            f"{_tags(device=a.device, patient=a.patient, signal=a.signal.value)} "
            f"{','.join(sorted(fields))} {a.start_ns}")


def score_line(patient: str, signal: str, score: float, event_ns: int,
               low: float | None = None, high: float | None = None,
               observed: float | None = None) -> str:
    fields = {"score": score, "expected_low": low, "expected_high": high, "observed": observed}
    body = ",".join(f"{k}={_float(v)}" for k, v in sorted(fields.items())
                    if v is not None and math.isfinite(v))
    return f"anomaly{_tags(patient=patient, signal=signal)} {body} {event_ns}"


def news2_line(patient: str, event_ns: int, score: int, band_rank: int, complete: bool,
               parameter_scores: Iterable[tuple[str, int | None]]) -> str:
    """A NEWS2 result: the total, the band as a rank (0 low, 1 low-medium, 2 medium,
    3 high: numbers, since a string field is not a series every store keeps), whether all
    seven parameters were present, and each scored parameter (missing ones are absent).

    >>> news2_line("p1", 5, 7, 3, True, [("resp_rate", 2), ("spo2", None)])
    'news2,patient=p1 band=3i,complete=1i,resp_rate=2i,score=7i 5'
    """
    fields = {"score": score, "band": band_rank, "complete": int(complete)}
    fields.update({k: v for k, v in parameter_scores if v is not None})
    body = ",".join(f"{k}={int(v)}i" for k, v in sorted(fields.items()))
    return f"news2{_tags(patient=patient)} {body} {event_ns}"


def bp_class_line(patient: str, event_ns: int, guideline: str, category: str, rank: int,
                  sbp_mean: float, dbp_mean: float, n: int) -> str:
    """A blood pressure class (by guideline) and the means it rests on.

    >>> bp_class_line("p1", 5, "acc-aha-2017", "stage-2", 3, 140.0, 84.0, 4)
    'bp_class,category=stage-2,guideline=acc-aha-2017,patient=p1 dbp_mean=84,n=4i,rank=3i,sbp_mean=140 5'
    """
    return (f"bp_class{_tags(category=category, guideline=guideline, patient=patient)} "
            f"dbp_mean={_float(dbp_mean)},n={int(n)}i,rank={int(rank)}i,sbp_mean={_float(sbp_mean)} "
            f"{event_ns}")


_measurement = measurement  # burden_line's parameter has the name
_BURDEN_COUNTS = ("raised", "acknowledged", "renotified", "escalated", "flapping", "suppressed",
                  "resolved")
_BURDEN_FIGURES = ("per_patient_day", "ack_share", "ack_p50_s", "ack_max_s")


def burden_line(p: BurdenPoint, measurement: str = "alarm_burden") -> str:
    """An interval's alarm burden (``vitalstream.operators.burden``): tags ``rule`` and
    ``priority`` (``*`` for the totals), the counts as integers, the figures as floats
    (left out when None), the other notice reasons as integers under their own names
    (``reason_<name>`` if one is a field name above); time = the interval's start.

    >>> from vitalstream.operators.burden import BurdenPoint
    >>> print(burden_line(BurdenPoint(0, 3600 * 10**9, "bradycardia", "high", raised=3,
    ...       per_patient_day=36.0, acknowledged=2, ack_share=2 / 3, ack_p50_s=120.0,
    ...       ack_max_s=180.0, other=(("stable", 1),))))
    alarm_burden,priority=high,rule=bradycardia ack_max_s=180,ack_p50_s=120,ack_share=0.6666666666666666,acknowledged=2i,escalated=0i,flapping=0i,per_patient_day=36,raised=3i,renotified=0i,resolved=0i,stable=1i,suppressed=0i 0
    """
    fields = {k: f"{int(getattr(p, k))}i" for k in _BURDEN_COUNTS}
    for k in _BURDEN_FIGURES:
        v = getattr(p, k)
        if v is not None and math.isfinite(v):
            fields[k] = _float(v)
    for reason, n in p.other:
        clash = reason in fields or reason in _BURDEN_FIGURES
        fields[f"reason_{reason}" if clash else reason] = f"{int(n)}i"
    body = ",".join(f"{field_key(k)}={v}" for k, v in sorted(fields.items()))
    tags = _tags(priority=p.priority, rule=p.rule)
    return f"{_measurement(measurement)}{tags} {body} {p.start_ns}"


def profile_line(patient: str, tag_name: str, change: str, source: str, confidence: float,
                 title: str, text: str, at_ns: int) -> str:
    """A profile change as an annotation (Grafana reads ``title``/``text``; tags filter it).

    >>> print(profile_line("p1", "hypertension", "set", "derived", 0.5, "hypertension set",
    ...                    'mean "146/92"', 7))
    profile_event,change=set,patient=p1,source=derived,tag=hypertension confidence=0.5,text="mean \\"146/92\\"",title="hypertension set" 7
    """
    return (f"profile_event{_tags(change=change, patient=patient, source=source, tag=tag_name)} "
            f"confidence={_float(confidence)},text={string_field(text)},title={string_field(title)} "
            f"{at_ns}")
