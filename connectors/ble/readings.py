"""Map a decoded GATT characteristic (``gatt.decode_characteristic``) onto ``RawReading``s.

``to_readings`` returns a ``BleReadings``:

- ``readings``: one ``RawReading`` per measured signal, with the value as the
  characteristic gives it and the unit the characteristic's flags name, as a
  UCUM code (``kPa`` or ``mm[Hg]``, ``Cel`` or ``[degF]``, ``kg/L`` or ``mol/L``,
  ``kg`` or ``[lb_av]``). The normaliser converts it to the catalogue's
  canonical unit and judges plausibility, as for every other source. Pulse
  rate from a cuff or an oximeter is a ``heart_rate`` reading.
- ``omitted``: values that must not become numbers, each an ``OmittedValue``
  (signal, field, special, reason) so the caller can dead-letter it or log it:
  IEEE-11073 special values (reason ``special_value``, e.g. a MAP of NaN; the
  other values of the same notification still become readings) and glucose
  control-solution tests (reason ``control_solution``: the meter measured a
  calibration liquid, not the patient).
- ``user_id``: the cuff's or scale's User ID when the payload carries one
  (0xFF = unknown user). With ``patient_by_user`` the reading goes to the
  patient of that user index, and a user not in the map is an ``IdentityError``:
  guessing would file one family member's blood pressure under another.

Time: a device ``timestamp`` is naive device-clock time; it is read in the
gateway's configured zone ``tz`` and converted to UTC ns
(``timeutil.parse_iso8601_ns(..., naive_tz=tz)``). In a DST fold the first
(summer-time) instant is taken (``fold=0``); a time in a spring-forward gap is
shifted by the zone rules (zoneinfo's behaviour). Without a usable device
time (field absent, year/month/day unknown, or a PLX "device clock not set") the
gateway receive time ``gateway_ns`` is used and ``Quality.GATEWAY_TIME`` set.
Plausibility is not judged here; the validation step downstream does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from vitalstream.connectors.ble import gatt
from vitalstream.connectors.ble.ieee11073 import Special
from vitalstream.errors import DecodeError, IdentityError
from vitalstream.model import Quality, RawReading
from vitalstream.signals import Signal
from vitalstream.timeutil import parse_iso8601_ns

STEP = "ble_readings"

# Unit names of the decoded characteristic (gatt.py keeps the specification's
# words) -> UCUM codes; any other name is passed on and is the normaliser's
# unknown_unit.
GATT_UNITS: dict[str, str] = {"mmHg": "mm[Hg]", "kPa": "kPa", "Cel": "Cel", "degF": "[degF]"}

# Glucose Measurement Type-Sample Location codes that denote a control solution.
GLUCOSE_TYPE_CONTROL_SOLUTION = 10
SAMPLE_LOCATION_CONTROL_SOLUTION = 4

# (field in the decoded dict, signal, unit or "@key" naming the field that holds the unit)
_FIELDS: dict[str, tuple[tuple[str, Signal, str], ...]] = {
    gatt.HEART_RATE_MEASUREMENT: (("hr_bpm", Signal.HEART_RATE, "/min"),),
    gatt.BLOOD_PRESSURE_MEASUREMENT: (
        ("systolic", Signal.BP_SYSTOLIC, "@unit"),
        ("diastolic", Signal.BP_DIASTOLIC, "@unit"),
        ("map", Signal.BP_MEAN, "@unit"),
        ("pulse_rate_bpm", Signal.HEART_RATE, "/min"),
    ),
    gatt.TEMPERATURE_MEASUREMENT: (("temperature", Signal.BODY_TEMP, "@temperature_unit"),),
    gatt.PLX_SPOT_CHECK: (("spo2_pct", Signal.SPO2, "%"), ("pulse_rate_bpm", Signal.HEART_RATE, "/min")),
    gatt.PLX_CONTINUOUS: (("spo2_pct", Signal.SPO2, "%"), ("pulse_rate_bpm", Signal.HEART_RATE, "/min")),
    gatt.GLUCOSE_MEASUREMENT: (
        ("glucose_kg_per_l", Signal.GLUCOSE, "kg/L"),
        ("glucose_mol_per_l", Signal.GLUCOSE, "mol/L"),
    ),
    gatt.WEIGHT_MEASUREMENT: (
        ("weight_kg", Signal.BODY_WEIGHT, "kg"),
        ("weight_lb", Signal.BODY_WEIGHT, "[lb_av]"),
    ),
    gatt.BATTERY_LEVEL: (("battery_pct", Signal.BATTERY, "%"),),
}


@dataclass(frozen=True, slots=True)
class OmittedValue:
    """A value of the payload that was deliberately not turned into a reading."""

    signal: Signal
    field: str
    special: Special | None  # the marker for IEEE-11073 specials, else None
    reason: str  # "special_value" | "control_solution"

    @property
    def detail(self) -> str:
        what = self.special.value if self.special is not None else self.reason
        return f"{self.field}={what}"


@dataclass(slots=True)
class BleReadings:
    readings: list[RawReading] = field(default_factory=list)
    omitted: list[OmittedValue] = field(default_factory=list)
    user_id: int | None = None


def resolve_tz(tz: tzinfo | str) -> tzinfo:
    """A tzinfo from an IANA name or a tzinfo; unknown names are a DecodeError."""
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(str(tz))
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise DecodeError(STEP, None, "bad_tz", f"unknown time zone {tz!r}: {exc}") from None


def device_time_ns(timestamp: str, tz: tzinfo | str) -> int:
    """UTC ns of a naive device ``timestamp`` (ISO-8601) read in zone ``tz``.

    A timestamp that carries an offset (not from a GATT payload) is read at it.
    """
    try:
        return parse_iso8601_ns(timestamp, naive_tz=resolve_tz(tz))
    except ValueError as exc:
        raise DecodeError(STEP, None, "bad_time", str(exc)) from None


def event_time(decoded: Mapping[str, Any], gateway_ns: int, tz: tzinfo | str) -> tuple[int, Quality]:
    ts = decoded.get("timestamp")
    if ts is None or decoded.get("device_clock_not_set") is True:
        return gateway_ns, Quality.GATEWAY_TIME
    return device_time_ns(ts, tz), Quality.OK


def _quality(short: str, decoded: Mapping[str, Any]) -> Quality:
    q = Quality.OK
    if short == gatt.HEART_RATE_MEASUREMENT:
        if decoded.get("sensor_contact_supported") and not decoded.get("sensor_contact_detected"):
            q |= Quality.MOTION_ARTEFACT  # strap reports no skin contact
    elif short == gatt.BLOOD_PRESSURE_MEASUREMENT:
        if decoded.get("measurement_status", 0) & 0x0001:  # body movement during measurement
            q |= Quality.MOTION_ARTEFACT
    return q


def _is_control_solution(short: str, decoded: Mapping[str, Any]) -> bool:
    return short == gatt.GLUCOSE_MEASUREMENT and (
        decoded.get("glucose_type") == GLUCOSE_TYPE_CONTROL_SOLUTION
        or decoded.get("sample_location") == SAMPLE_LOCATION_CONTROL_SOLUTION)


def _special(value: str, key: str, device: str) -> Special:
    try:
        return Special(value)
    except ValueError:
        raise DecodeError(STEP, device, "bad_value", f"{key}={value!r} is neither a number "
                                                     "nor a special value") from None


def patient_for(user_id: int | None, *, device: str, patient: str | None,
                patient_by_user: Mapping[int, str] | None) -> str | None:
    if patient_by_user is None or user_id is None:
        return patient
    mapped = patient_by_user.get(user_id)
    if mapped is None:
        raise IdentityError(STEP, device, "unknown_user",
                            f"user index {user_id} of a multi-user device has no patient mapping")
    return mapped


def to_readings(uuid: str, decoded: Mapping[str, Any], *, device: str, patient: str | None = None,
                gateway_ns: int, tz: tzinfo | str,
                patient_by_user: Mapping[int, str] | None = None,
                gateway: str | None = None) -> BleReadings:
    """Raw readings of one decoded characteristic value (see the module docstring).

    ``patient`` is the payload patient (None: the registry decides); ``gateway``
    is the gateway that relayed the value, kept on each reading.
    """
    short = gatt.normalise_uuid(uuid)
    fields = _FIELDS.get(short)
    if fields is None:
        raise DecodeError(STEP, device, "unknown_characteristic", f"no reading mapping for 0x{short}")
    user_id = decoded.get("user_id")
    who = patient_for(user_id, device=device, patient=patient, patient_by_user=patient_by_user)
    event_ns, quality = event_time(decoded, gateway_ns, tz)
    quality |= _quality(short, decoded)
    control = _is_control_solution(short, decoded)
    out = BleReadings(user_id=user_id)
    for key, signal, unit in fields:
        if key not in decoded:
            continue
        value = decoded[key]
        if isinstance(value, str):  # a Special, or its name after a JSON round trip
            out.omitted.append(OmittedValue(signal, key, _special(value, key, device), "special_value"))
            continue
        if control:
            out.omitted.append(OmittedValue(signal, key, None, "control_solution"))
            continue
        unit_name = decoded[unit[1:]] if unit.startswith("@") else unit
        out.readings.append(RawReading(
            device=device, patient=who, signal=signal.value, value=float(value),
            unit=GATT_UNITS.get(unit_name, unit_name), event_ns=event_ns, quality=quality,
            source=f"ble:{short}", user=user_id, gateway=gateway))
    return out
