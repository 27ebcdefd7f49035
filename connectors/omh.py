"""Open mHealth (IEEE 1752.1 predecessor) data points: decode, encode, file import.

A data point is ``{"header": {...}, "body": {...}}``. Decoding validates the
whole point against ``data-point-1.0.json``, then the body against the type
schema named by ``header.schema_id`` (see ``omh_schemas`` for the offline
registry and the IEEE 1752.1 version fallback), then maps the body onto
``RawReading``s: the value as sent, and its OMH unit translated to the UCUM
code it means. Converting to the canonical unit and judging plausibility is the
normaliser's job, as for every other source.

Mapping (OMH unit -> UCUM code of the raw reading; canonical unit after normalising)::

    heart-rate         heart_rate   beats/min   -> {beats}/min       (/min)
    blood-pressure     bp_systolic + bp_diastolic (two readings) mmHg -> mm[Hg]
    oxygen-saturation  spo2         %           -> %
    body-temperature   body_temp    K, C, F     -> K, Cel, [degF]    (Cel)
    respiratory-rate   resp_rate    breaths/min -> {breaths}/min     (/min)
    blood-glucose      glucose      mg/dL, mmol/L -> the same        (mg/dL)
    step-count         steps        steps       -> {steps}           (count)
    physical-activity  no catalogue signal: an ``ActivityEpisode`` context record

OMH's temperature units are "common synonyms (non-UCUM)" (temperature-unit-value
1.0): its ``C`` and ``F`` are degrees, where in UCUM and SenML they are the
coulomb and the farad. That is why the translation happens here, where the
vocabulary is known, and not in the catalogue.

Event time: ``effective_time_frame.date_time``; for a ``time_interval`` the end
(``end_date_time``, or ``start_date_time + duration``), because a value over an
interval (a step count, a daily minimum) is known only once the interval is
over, and stamping it at the start would put it before the data it summarises.
An interval given only as ``date`` + ``part_of_day`` has no instant and is
rejected (``imprecise_time``); so is an interval ending before it starts
(``bad_interval``). Durations: see ``omh_schemas.duration_to_ns``.

A body with ``descriptive_statistic`` (e.g. a daily minimum) is not a single
measurement: the statistic is kept in ``RawReading.source`` as ``omh:<statistic>``
(``omh:<statistic>/<denominator>`` for step counts), plain measurements have
source ``omh``; ``encode_omh`` writes it back.

Identity: ``header.user_id`` (header 1.2) is the payload patient when present,
else None (the device -> patient resolver decides; by default the device id
stands in). The device is the caller's ``device`` (the MQTT topic's), else
``header.acquisition_provenance.source_name``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from vitalstream.connectors.omh_schemas import (
    DATA_POINT_SCHEMA,
    LENGTH_M,
    OmhSchemas,
    default_schemas,
    duration_to_ns,
    duration_unit_value,
)
from vitalstream.connectors.limits import load_json
from vitalstream.errors import DecodeError, VitalstreamError
from vitalstream.model import Quality, RawReading, Reading
from vitalstream.signals import Signal, spec
from vitalstream.timeutil import format_iso8601_ns, parse_iso8601_ns

STEP = "omh_decode"
SOURCE = "omh"

# schema name -> (body property, signal) for every reading the body carries
_BODY_FIELDS: dict[str, tuple[tuple[str, Signal], ...]] = {
    "heart-rate": (("heart_rate", Signal.HEART_RATE),),
    "blood-pressure": (("systolic_blood_pressure", Signal.BP_SYSTOLIC),
                       ("diastolic_blood_pressure", Signal.BP_DIASTOLIC)),
    "oxygen-saturation": (("oxygen_saturation", Signal.SPO2),),
    "body-temperature": (("body_temperature", Signal.BODY_TEMP),),
    "respiratory-rate": (("respiratory_rate", Signal.RESP_RATE),),
    "blood-glucose": (("blood_glucose", Signal.GLUCOSE),),
    "step-count": (("step_count", Signal.STEPS),),
}
ACTIVITY = "physical-activity"
SUPPORTED = frozenset(_BODY_FIELDS) | {ACTIVITY}

# OMH unit (the schemas' enums) -> the UCUM code it means
OMH_UNITS: dict[str, str] = {
    "beats/min": "{beats}/min", "breaths/min": "{breaths}/min", "mmHg": "mm[Hg]", "%": "%",
    "K": "K", "C": "Cel", "F": "[degF]", "mg/dL": "mg/dL", "mmol/L": "mmol/L", "steps": "{steps}",
}

# signal -> (schema name, body property, OMH unit of the catalogue's canonical unit)
_ENCODE: dict[Signal, tuple[str, str, str]] = {
    Signal.HEART_RATE: ("heart-rate", "heart_rate", "beats/min"),
    Signal.SPO2: ("oxygen-saturation", "oxygen_saturation", "%"),
    Signal.BODY_TEMP: ("body-temperature", "body_temperature", "C"),
    Signal.RESP_RATE: ("respiratory-rate", "respiratory_rate", "breaths/min"),
    Signal.GLUCOSE: ("blood-glucose", "blood_glucose", "mg/dL"),
    Signal.STEPS: ("step-count", "step_count", "steps"),
}

# datetime's range (years 1..9999): a time outside it cannot be written back out
_MIN_NS, _MAX_NS = -62_135_596_800 * 10**9, 253_402_300_800 * 10**9


@dataclass(frozen=True, slots=True)
class ActivityEpisode:
    """A physical-activity data point: context for readings, not a catalogue signal.

    Times are None when the point gives none (or only a date and part of day).
    """

    patient: str
    device: str
    activity_name: str
    start_ns: int | None
    end_ns: int | None
    recv_ns: int
    distance_m: float | None = None
    kcal_burned: float | None = None
    met_value: float | None = None
    reported_intensity: str | None = None  # light / moderate / vigorous
    date: str | None = None  # YYYY-MM-DD when only date + part of day are known
    part_of_day: str | None = None
    source: str = SOURCE


class OmhEncodeError(VitalstreamError):
    """A reading cannot be written as an Open mHealth data point."""


def _fail(device: str | None, reason: str, detail: str = "") -> DecodeError:
    return DecodeError(STEP, device, reason, detail)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(payload: bytes | str, device: str | None) -> object:
    return load_json(payload, step=STEP, device=device)  # the limits of connectors.limits


def _number(v: object, device: str | None, path: str) -> float:
    f = float(v)  # type: ignore[arg-type]  # the schema made it a JSON number
    if not math.isfinite(f):
        raise _fail(device, "bad_value", f"{path}: {v!r}")
    return f


def _time_ns(text: str, device: str | None, path: str) -> int:
    try:
        return parse_iso8601_ns(text)
    except ValueError as exc:
        raise _fail(device, "schema_invalid", f"{path}: {exc}") from None


def _duration_ns(d: dict, device: str | None, path: str) -> int:
    value = _number(d["value"], device, path + ".value")
    if value < 0:
        raise _fail(device, "bad_interval", f"{path}: negative duration {value!r}")
    return duration_to_ns(value, d["unit"])


def _interval(ti: dict, device: str | None, path: str) -> tuple[int | None, int | None]:
    """(start_ns, end_ns) of a time_interval; (None, None) for date + part_of_day."""
    start = _time_ns(ti["start_date_time"], device, path + ".start_date_time") \
        if "start_date_time" in ti else None
    end = _time_ns(ti["end_date_time"], device, path + ".end_date_time") \
        if "end_date_time" in ti else None
    if "duration" in ti:
        dur = _duration_ns(ti["duration"], device, path + ".duration")
        if end is None and start is not None:
            end = start + dur
        elif start is None and end is not None:
            start = end - dur
    if start is not None and end is not None:
        if end < start:
            raise _fail(device, "bad_interval", f"{path}: ends before it starts")
        if not (_MIN_NS <= start and end < _MAX_NS):
            raise _fail(device, "bad_interval", f"{path}: outside years 1..9999")
    return start, end


def _time_frame(tf: dict, device: str | None) -> tuple[int | None, int | None]:
    path = "$.body.effective_time_frame"
    if "date_time" in tf:
        t = _time_ns(tf["date_time"], device, path + ".date_time")
        return t, t
    return _interval(tf["time_interval"], device, path + ".time_interval")


def _identity(header: dict, device: str | None) -> tuple[str | None, str]:
    """(payload patient or None, device)."""
    # An empty id names nobody: fall through to the next source rather than key on "".
    device = device or (header.get("acquisition_provenance") or {}).get("source_name")
    if not device:
        raise _fail(None, "no_device", "no device given and no acquisition_provenance.source_name")
    return header.get("user_id") or None, device


def _validated(point: object, device: str | None, schemas: OmhSchemas) -> tuple[dict, str, str]:
    """(point, schema name, schema file) after validating header and body."""
    problem = schemas.problem(DATA_POINT_SCHEMA, point)
    if problem is not None:
        raise _fail(device, "schema_invalid", str(problem))
    sid = point["header"]["schema_id"]  # type: ignore[index]
    name, version = sid["name"], sid["version"]
    if sid["namespace"] != "omh" or name not in SUPPORTED:
        raise _fail(device, "unsupported_schema", f"{sid['namespace']}:{name}:{version}")
    filename = schemas.resolve(name, version)
    if filename is None:
        raise _fail(device, "unsupported_schema", f"omh:{name}:{version} has no local schema")
    problem = schemas.problem(filename, point["body"], "$.body")  # type: ignore[index]
    if problem is not None:
        raise _fail(device, "schema_invalid", f"{problem} (against {filename})")
    return point, name, filename  # type: ignore[return-value]


def _statistic_source(body: dict) -> str:
    stat = body.get("descriptive_statistic")
    if stat is None:
        return SOURCE
    denominator = body.get("descriptive_statistic_denominator")
    return f"{SOURCE}:{stat}" + (f"/{denominator}" if isinstance(denominator, str) else "")


def _activity(body: dict, patient: str, device: str, recv_ns: int) -> ActivityEpisode:
    start = end = None
    date = part = None
    tf = body.get("effective_time_frame")
    if tf is not None:
        ti = tf.get("time_interval", {})
        if "part_of_day" in ti:
            date, part = ti["date"], ti["part_of_day"]
        else:
            start, end = _time_frame(tf, device)
    dist = body.get("distance")
    kcal = body.get("kcal_burned")
    met = body.get("met_value")
    return ActivityEpisode(
        patient=patient, device=device, activity_name=body["activity_name"],
        start_ns=start, end_ns=end, recv_ns=recv_ns,
        distance_m=None if dist is None else
        _number(dist["value"], device, "$.body.distance.value") * LENGTH_M[dist["unit"]],
        kcal_burned=None if kcal is None else _number(kcal["value"], device, "$.body.kcal_burned.value"),
        met_value=None if met is None else _number(met, device, "$.body.met_value"),
        reported_intensity=body.get("reported_activity_intensity"),
        date=date, part_of_day=part)


def decode_omh_records(payload: bytes | str | dict, *, device: str | None, recv_ns: int,
                       quality: Quality = Quality.OK,
                       schemas: OmhSchemas | None = None) -> list[RawReading | ActivityEpisode]:
    """Raw readings of one data point, or ``[ActivityEpisode]`` for physical-activity.

    ``recv_ns`` is only kept on an ``ActivityEpisode``; a raw reading gets its
    receive time when it is normalised. Raises ``DecodeError(step="omh_decode")``
    with reason ``bad_json``, ``schema_invalid``, ``unsupported_schema``,
    ``unknown_unit``, ``bad_value``, ``bad_interval``, ``imprecise_time`` or
    ``no_device``.
    """
    schemas = schemas or default_schemas()
    point = payload if isinstance(payload, dict) else _parse_json(payload, device)
    point, name, _ = _validated(point, device, schemas)
    header, body = point["header"], point["body"]
    patient, device = _identity(header, device)
    if name == ACTIVITY:
        # context, not a reading: the device stands in for an unknown wearer
        return [_activity(body, patient or device, device, recv_ns)]
    tf = body["effective_time_frame"]
    if "part_of_day" in tf.get("time_interval", {}):
        raise _fail(device, "imprecise_time", "date + part_of_day gives no instant for a reading")
    _, event_ns = _time_frame(tf, device)
    assert event_ns is not None  # every branch but part_of_day yields an end
    source = _statistic_source(body)
    out: list[RawReading | ActivityEpisode] = []
    for prop, signal in _BODY_FIELDS[name]:
        uv = body[prop]
        unit = OMH_UNITS.get(uv["unit"])
        if unit is None:  # outside OMH's vocabulary: reading it as UCUM could mean anything
            raise _fail(device, "unknown_unit", f"$.body.{prop}.unit: {uv['unit']!r}")
        out.append(RawReading(device=device, patient=patient, signal=signal.value,
                              value=_number(uv["value"], device, f"$.body.{prop}.value"),
                              unit=unit, event_ns=event_ns, quality=quality, source=source))
    return out


def decode_omh(payload: bytes | str | dict, *, device: str | None, recv_ns: int,
               quality: Quality = Quality.OK,
               schemas: OmhSchemas | None = None) -> list[RawReading]:
    """Raw readings of one data point (see ``decode_omh_records``).

    A valid physical-activity point gives no reading (``[]``): use
    ``decode_omh_records`` to get its ``ActivityEpisode``.
    """
    return [r for r in decode_omh_records(payload, device=device, recv_ns=recv_ns,
                                          quality=quality, schemas=schemas)
            if isinstance(r, RawReading)]


# --- encoding ----------------------------------------------------------------

def _new_id() -> str:
    return str(uuid.uuid4())


def _time_frame_out(event_ns: int, duration_ns: int | None) -> dict:
    if duration_ns is None:
        return {"date_time": format_iso8601_ns(event_ns)}
    if duration_ns < 0:
        raise OmhEncodeError("omh_encode", None, "bad_interval", f"duration_ns={duration_ns}")
    return {"time_interval": {"end_date_time": format_iso8601_ns(event_ns),
                              "duration": duration_unit_value(duration_ns)}}


def _header(name: str, r: Reading, id_factory: Callable[[], str], schemas: OmhSchemas) -> dict:
    filename = schemas.newest_local(name)
    assert filename is not None, name
    version = filename.removeprefix(name + "-").removesuffix(".json")
    return {"id": id_factory(),
            # receive time, not the wall clock: re-exporting the same readings gives the same points
            "creation_date_time": format_iso8601_ns(r.recv_ns),
            "schema_id": {"namespace": "omh", "name": name, "version": version},
            "acquisition_provenance": {"source_name": r.device, "modality": "sensed"},
            "user_id": r.patient}


def _add_statistic(body: dict, source: str) -> None:
    if not source.startswith(SOURCE + ":"):
        return
    stat, _, denominator = source[len(SOURCE) + 1:].partition("/")
    body["descriptive_statistic"] = stat
    if denominator:
        body["descriptive_statistic_denominator"] = denominator


def _checked(point: dict, device: str, schemas: OmhSchemas, validate: bool) -> dict:
    if validate:
        try:
            _validated(point, device, schemas)
        except DecodeError as exc:
            raise OmhEncodeError("omh_encode", device, exc.reason, exc.detail) from None
    return point


def _value_out(r: Reading) -> float | int:
    try:
        v = spec(r.signal).to_canonical(r.value, r.unit)
    except KeyError:
        raise OmhEncodeError("omh_encode", r.device, "unknown_unit",
                             f"{r.signal}: {r.unit!r}") from None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else v


def encode_omh(reading: Reading, *, id_factory: Callable[[], str] = _new_id,
               duration_ns: int | None = None, validate: bool = True,
               schemas: OmhSchemas | None = None) -> dict:
    """One Open mHealth data point holding ``reading`` (newest offline-valid schema version).

    ``duration_ns`` makes the time frame an interval ending at ``event_ns``;
    step-count requires one. Blood pressure needs both values: use
    ``encode_omh_blood_pressure``. Raises ``OmhEncodeError`` (reasons
    ``unsupported_signal``, ``needs_pair``, ``needs_interval``, ``bad_interval``,
    ``unknown_unit``, ``schema_invalid``).
    """
    schemas = schemas or default_schemas()
    signal = Signal(reading.signal)
    if signal in (Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC):
        raise OmhEncodeError("omh_encode", reading.device, "needs_pair",
                             "use encode_omh_blood_pressure(systolic, diastolic)")
    if signal not in _ENCODE:
        raise OmhEncodeError("omh_encode", reading.device, "unsupported_signal", signal.value)
    if signal is Signal.STEPS and duration_ns is None:
        raise OmhEncodeError("omh_encode", reading.device, "needs_interval",
                             "step-count requires a time interval: pass duration_ns")
    name, prop, unit = _ENCODE[signal]
    body = {prop: {"value": _value_out(reading), "unit": unit},
            "effective_time_frame": _time_frame_out(reading.event_ns, duration_ns)}
    _add_statistic(body, reading.source)
    point = {"header": _header(name, reading, id_factory, schemas), "body": body}
    return _checked(point, reading.device, schemas, validate)


def encode_omh_blood_pressure(systolic: Reading, diastolic: Reading, *,
                              id_factory: Callable[[], str] = _new_id,
                              duration_ns: int | None = None, validate: bool = True,
                              schemas: OmhSchemas | None = None) -> dict:
    """One blood-pressure data point from a systolic and a diastolic reading of the same instant."""
    schemas = schemas or default_schemas()
    if (Signal(systolic.signal), Signal(diastolic.signal)) != (Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC):
        raise OmhEncodeError("omh_encode", systolic.device, "needs_pair",
                             f"got {systolic.signal} and {diastolic.signal}")
    key = lambda r: (r.patient, r.device, r.event_ns, r.source)
    if key(systolic) != key(diastolic):
        raise OmhEncodeError("omh_encode", systolic.device, "needs_pair",
                             "systolic and diastolic differ in patient, device, time or source")
    body = {
        prop: {"value": _value_out(r), "unit": "mmHg"}
        for prop, r in (("systolic_blood_pressure", systolic), ("diastolic_blood_pressure", diastolic))
    }
    body["effective_time_frame"] = _time_frame_out(systolic.event_ns, duration_ns)
    _add_statistic(body, systolic.source)
    point = {"header": _header("blood-pressure", systolic, id_factory, schemas), "body": body}
    return _checked(point, systolic.device, schemas, validate)


# --- file import ---------------------------------------------------------------
