"""Payload encoders: native JSON and SenML (RFC 8428) packs, as devices send them.

Wire values are what a device puts on the wire; ``canonical`` turns them back
into the canonical unit with the signal catalogue, i.e. exactly what the
pipeline must store (the SenML ratio and pascal round trips included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from vitalstream.signals import Signal, spec

NS = 1_000_000_000
PA_PER_MMHG = 133.322387415  # conventional mm of mercury (BIPM SI brochure, NIST SP 811)

# RFC 8428 section 12.1 units; glucose has none registered, so the UCUM one is used.
SENML_UNITS = {
    "heart_rate": "beat/min",
    "spo2": "/",
    "resp_rate": "1/min",
    "body_temp": "Cel",
    "bp_systolic": "Pa",
    "bp_diastolic": "Pa",
    "bp_mean": "Pa",
    "glucose": "mg/dL",
    "steps": "count",
}
# Native devices speak the canonical unit; "alt" devices are a US thermometer and
# a CGM in mmol/L, so the decoder's unit conversion is exercised too.
_ALT_UNITS = {"body_temp": ("[degF]", 1), "glucose": ("mmol/L", 1)}
_MMOL_PER_MG_DL = 1.0 / 18.0156


@dataclass(frozen=True, slots=True)
class WireReading:
    signal: str
    value: float | int
    unit: str
    event_ns: int
    motion: bool = False


def wire_value(signal: str, value: float, codec: str, alt_units: bool = False) -> tuple[float | int, str]:
    """(value, unit) a device sends for a canonical ``value``."""
    if signal == "steps":
        return int(value), "count"
    if codec == "senml":
        unit = SENML_UNITS[signal]
        if unit == "/":
            return value / 100.0, unit
        if unit == "Pa":
            return value * PA_PER_MMHG, unit
        return float(value), unit
    if alt_units and signal in _ALT_UNITS:
        unit, decimals = _ALT_UNITS[signal]
        if signal == "body_temp":
            return round(value * 9.0 / 5.0 + 32.0, decimals), unit
        return round(value * _MMOL_PER_MG_DL, decimals), unit
    return float(value), spec(signal).unit


_SPECS = {s.value: spec(s) for s in Signal}


def canonical(signal: str, value: float, unit: str) -> float:
    """The value the pipeline stores: the wire value converted with the signal catalogue.

    JSON numbers round-trip exactly (``json`` writes floats with ``repr``), so
    the wire value is what the decoder reads.
    """
    return float(_SPECS[signal].to_canonical(value, unit))


_PLUS_ONE = timezone(timedelta(hours=1))


def iso_time(event_ns: int, style: str = "iso_z") -> str:
    """ISO-8601 with a zone, to the millisecond (device stamps are whole ms)."""
    if event_ns % 1_000_000:
        raise ValueError("device stamps are whole milliseconds")
    sec, ms = divmod(event_ns // 1_000_000, 1000)
    dt = datetime.fromtimestamp(sec, tz=UTC)
    if style == "iso_offset":
        dt = dt.astimezone(_PLUS_ONE)
        return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms:03d}+01:00"
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def native_reading(r: WireReading, time_style: str) -> dict:
    item: dict = {"signal": r.signal, "value": r.value, "unit": r.unit}
    if time_style == "t_ns":
        item["t_ns"] = r.event_ns
    else:
        item["t"] = iso_time(r.event_ns, time_style)
    if r.motion:
        item["flags"] = ["motion"]
    return item


def encode_native(device: str | None, patient: str | None, readings: list[WireReading],
                  time_style: str = "iso_z") -> bytes:
    """``{"v": 1, "device", "patient", "readings": [...]}``; None leaves a field out."""
    doc: dict = {"v": 1}
    if device is not None:
        doc["device"] = device
    if patient is not None:
        doc["patient"] = patient
    doc["readings"] = [native_reading(r, time_style) for r in readings]
    return json.dumps(doc, separators=(",", ":")).encode()


def senml_records(device: str, readings: list[WireReading]) -> list[dict]:
    """A pack: base name/time/unit on the first record, later times relative to ``bt``.

    Times are seconds; a stamp in whole ms survives ``bt + t`` to well under a
    microsecond, which is the resolution decoders keep.
    """
    if not readings:
        return []
    first = readings[0]
    bt_ns = first.event_ns
    bu = first.unit
    recs: list[dict] = [{"bn": f"{device}:", "bt": bt_ns / NS, "bu": bu,
                         "n": first.signal, "v": first.value}]
    for r in readings[1:]:
        rec: dict = {"n": r.signal}
        if r.unit != bu:
            rec["u"] = r.unit
        rec["v"] = r.value
        if r.event_ns != bt_ns:
            rec["t"] = (r.event_ns - bt_ns) / NS
        recs.append(rec)
    return recs


def encode_senml(device: str, readings: list[WireReading]) -> bytes:
    return json.dumps(senml_records(device, readings), separators=(",", ":")).encode()
