"""Decoders for Bluetooth SIG GATT health-measurement characteristics.

``decode_characteristic(uuid, data)`` turns one characteristic value (octets as a
gateway receives them, multi-octet fields little-endian) into a plain dict whose
field names and conventions are those of ``shared/reference/ble/vectors.json``
(its ``notes`` field is the contract):

- every field the payload carries is present, an absent one is missing (no
  ``None`` placeholders), and ``flags`` is the raw flags octet;
- IEEE-11073 special values and Weight Scale's "unsuccessful" are
  ``ieee11073.Special`` members (``str`` subclasses), never floats;
- ``timestamp`` is the device Date Time as naive ISO-8601 text (the payload has
  no zone), ``None`` when year, month or day is 0 ("not known");
- status fields are raw integers; plausibility is judged later, not here.

Every failure is a ``DecodeError(step="ble_decode", reason=...)`` with reason
``truncated`` (a field the flags announce is missing or cut short, or no flags
octet at all: an empty payload is reported as ``truncated`` like the vectors
do), ``bad_datetime``, ``unknown_characteristic``, ``bad_uuid`` or
``bad_payload_text``. Octets after the last announced field are ignored, as a
receiver must for fields added by later spec versions.

Layouts: GATT Specification Supplement (HRS, BLS, HTS, PLXS, GLS, WSS).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta
from typing import Any, Callable

from vitalstream.connectors.ble.ieee11073 import Special, decode_float, decode_sfloat, exact_decimal
from vitalstream.errors import DecodeError

STEP = "ble_decode"

HEART_RATE_MEASUREMENT = "2A37"
BLOOD_PRESSURE_MEASUREMENT = "2A35"
TEMPERATURE_MEASUREMENT = "2A1C"
PLX_SPOT_CHECK = "2A5E"
PLX_CONTINUOUS = "2A5F"
GLUCOSE_MEASUREMENT = "2A18"
WEIGHT_MEASUREMENT = "2A9D"
BATTERY_LEVEL = "2A19"

_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"
_FULL_UUID = re.compile(r"^0000([0-9a-f]{4})" + re.escape(_BASE_UUID_TAIL) + "$")
_SHORT_UUID = re.compile(r"^(?:0x)?([0-9a-f]{4})$")


def _error(reason: str, detail: str) -> DecodeError:
    return DecodeError(STEP, None, reason, detail)


def normalise_uuid(uuid: str) -> str:
    """Upper-case 16-bit form of a characteristic UUID.

    >>> normalise_uuid("0x2a37"), normalise_uuid("00002a37-0000-1000-8000-00805f9b34fb")
    ('2A37', '2A37')
    """
    text = str(uuid).strip().lower()
    m = _SHORT_UUID.match(text) or _FULL_UUID.match(text)
    if m is None:
        raise _error("bad_uuid", f"not a 16-bit or Bluetooth-base 128-bit UUID: {uuid!r}")
    return m.group(1).upper()


class _Cursor:
    """Reads fields in order; running out of octets is a ``truncated`` DecodeError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int, field: str) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        if len(chunk) != n:
            raise _error("truncated", f"{self.what}: {field} needs {n} octets at offset "
                                      f"{self.pos}, {len(chunk)} left")
        self.pos += n
        return chunk

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little")

    def sint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little", signed=True)

    def sfloat(self, field: str) -> float | Special:
        return decode_sfloat(self.take(2, field))

    def float32(self, field: str) -> float | Special:
        return decode_float(self.take(4, field))

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def date_time(self, field: str = "timestamp") -> datetime | None:
        """Date Time 0x2A08: uint16 year, then month, day, hours, minutes, seconds."""
        year = self.uint(2, field)
        month, day, hour, minute, second = self.take(5, field)
        if year == 0 or month == 0 or day == 0:
            return None  # "not known": the caller falls back to gateway time
        if not 1582 <= year <= 9999:  # Date Time's valid range; others are RFU
            raise _error("bad_datetime", f"{self.what}: year {year} outside 1582..9999")
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise _error("bad_datetime", f"{self.what}: {year:04d}-{month:02d}-{day:02d} "
                                         f"{hour:02d}:{minute:02d}:{second:02d}: {exc}") from None


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def _flags(cur: _Cursor) -> int:
    if cur.remaining() == 0:
        raise _error("truncated", f"{cur.what}: empty payload, no flags octet")
    return cur.uint(1, "flags")


def decode_heart_rate(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "Heart Rate Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["hr_bpm"] = cur.uint(2 if flags & 0x01 else 1, "heart rate")
    supported = bool(flags & 0x04)
    out["sensor_contact_supported"] = supported
    # Bit 1 only means something when bit 2 says the feature is supported.
    out["sensor_contact_detected"] = supported and bool(flags & 0x02)
    if flags & 0x08:
        out["energy_expended_kj"] = cur.uint(2, "energy expended")
    if flags & 0x10:
        body = cur.data[cur.pos:]
        if len(body) == 0 or len(body) % 2:
            raise _error("truncated", f"Heart Rate Measurement: RR-interval field of "
                                      f"{len(body)} octets is not a whole number of uint16")
        raw = [int.from_bytes(body[i:i + 2], "little") for i in range(0, len(body), 2)]
        out["rr_intervals_raw"] = raw
        out["rr_intervals_s"] = [r / 1024 for r in raw]  # exact in binary
    return out


def decode_blood_pressure(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "Blood Pressure Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["systolic"] = cur.sfloat("systolic")
    out["diastolic"] = cur.sfloat("diastolic")
    out["map"] = cur.sfloat("mean arterial pressure")
    out["unit"] = "kPa" if flags & 0x01 else "mmHg"
    if flags & 0x02:
        out["timestamp"] = _iso(cur.date_time())
    if flags & 0x04:
        out["pulse_rate_bpm"] = cur.sfloat("pulse rate")
    if flags & 0x08:
        out["user_id"] = cur.uint(1, "user id")
    if flags & 0x10:
        out["measurement_status"] = cur.uint(2, "measurement status")
    return out


def decode_temperature(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "Temperature Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["temperature"] = cur.float32("temperature")
    out["temperature_unit"] = "degF" if flags & 0x01 else "Cel"
    if flags & 0x02:
        out["timestamp"] = _iso(cur.date_time())
    if flags & 0x04:
        out["temperature_type"] = cur.uint(1, "temperature type")
    return out


def _plx_tail(cur: _Cursor, out: dict[str, Any], status: bool, sensor: bool, pai: bool) -> None:
    if status:
        out["measurement_status"] = cur.uint(2, "measurement status")
    if sensor:
        out["device_sensor_status"] = cur.uint(3, "device and sensor status")
    if pai:
        out["pulse_amplitude_index_pct"] = cur.sfloat("pulse amplitude index")


def decode_plx_spot_check(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "PLX Spot-Check Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["spo2_pct"] = cur.sfloat("SpO2")
    out["pulse_rate_bpm"] = cur.sfloat("pulse rate")
    out["device_clock_not_set"] = bool(flags & 0x10)
    if flags & 0x01:
        out["timestamp"] = _iso(cur.date_time())
    _plx_tail(cur, out, bool(flags & 0x02), bool(flags & 0x04), bool(flags & 0x08))
    return out


def decode_plx_continuous(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "PLX Continuous Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["spo2_pct"] = cur.sfloat("SpO2 normal")
    out["pulse_rate_bpm"] = cur.sfloat("pulse rate normal")
    if flags & 0x01:
        out["spo2_fast_pct"] = cur.sfloat("SpO2 fast")
        out["pulse_rate_fast_bpm"] = cur.sfloat("pulse rate fast")
    if flags & 0x02:
        out["spo2_slow_pct"] = cur.sfloat("SpO2 slow")
        out["pulse_rate_slow_bpm"] = cur.sfloat("pulse rate slow")
    _plx_tail(cur, out, bool(flags & 0x04), bool(flags & 0x08), bool(flags & 0x10))
    return out


def decode_glucose(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "Glucose Measurement")
    flags = _flags(cur)
    out: dict[str, Any] = {"flags": flags}
    out["sequence_number"] = cur.uint(2, "sequence number")
    base = cur.date_time("base time")
    out["base_time"] = _iso(base)
    offset_min = 0
    if flags & 0x01:
        offset_min = cur.sint(2, "time offset")
        out["time_offset_min"] = offset_min
    out["timestamp"] = None if base is None else _iso(base + timedelta(minutes=offset_min))
    if flags & 0x02:
        key = "glucose_mol_per_l" if flags & 0x04 else "glucose_kg_per_l"
        out[key] = cur.sfloat("glucose concentration")
        type_location = cur.uint(1, "type-sample location")
        out["glucose_type"] = type_location & 0x0F
        out["sample_location"] = type_location >> 4
    if flags & 0x08:
        out["sensor_status_annunciation"] = cur.uint(2, "sensor status annunciation")
    out["context_info_follows"] = bool(flags & 0x10)
    return out


def decode_weight(data: bytes) -> dict[str, Any]:
    cur = _Cursor(data, "Weight Measurement")
    flags = _flags(cur)
    imperial = bool(flags & 0x01)
    out: dict[str, Any] = {"flags": flags}
    raw = cur.uint(2, "weight")
    key = "weight_lb" if imperial else "weight_kg"
    if raw == 0xFFFF:
        out[key] = Special.UNSUCCESSFUL
    else:
        # Default resolutions (no Weight Scale Feature read): 0.01 lb, 0.005 kg.
        out[key] = exact_decimal(raw, -2) if imperial else exact_decimal(raw * 5, -3)
    if flags & 0x02:
        out["timestamp"] = _iso(cur.date_time())
    if flags & 0x04:
        out["user_id"] = cur.uint(1, "user id")
    if flags & 0x08:
        out["bmi"] = exact_decimal(cur.uint(2, "BMI"), -1)
        height = cur.uint(2, "height")
        if imperial:
            out["height_in"] = exact_decimal(height, -1)
        else:
            out["height_m"] = exact_decimal(height, -3)
    return out


def decode_battery_level(data: bytes) -> dict[str, Any]:
    """Battery Level (Battery Service): uint8, percent of full; 101-255 are reserved.

    >>> decode_battery_level(bytes([0x4B]))
    {'battery_pct': 75}
    """
    level = _Cursor(data, "Battery Level").uint(1, "battery level")
    if level > 100:
        raise _error("out_of_range", f"battery level {level} %: 101-255 are reserved")
    return {"battery_pct": level}


DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    HEART_RATE_MEASUREMENT: decode_heart_rate,
    BLOOD_PRESSURE_MEASUREMENT: decode_blood_pressure,
    TEMPERATURE_MEASUREMENT: decode_temperature,
    PLX_SPOT_CHECK: decode_plx_spot_check,
    PLX_CONTINUOUS: decode_plx_continuous,
    GLUCOSE_MEASUREMENT: decode_glucose,
    WEIGHT_MEASUREMENT: decode_weight,
    BATTERY_LEVEL: decode_battery_level,
}


def decode_characteristic(uuid: str, data: bytes) -> dict[str, Any]:
    """Decode one characteristic value; raises only ``DecodeError``."""
    short = normalise_uuid(uuid)
    decoder = DECODERS.get(short)
    if decoder is None:
        raise _error("unknown_characteristic", f"no decoder for characteristic 0x{short}")
    return decoder(bytes(data))


_HEX_SEPARATORS = re.compile(r"[\s:\-]")
_HEX_ONLY = re.compile(r"^[0-9a-fA-F]*$")


def value_from_text(text: str) -> bytes:
    """Octets from hex (``"1E 55 32"``, ``"1e:55:32"``, ``"1E5532"``, optional ``0x``)
    or base64 (prefix ``b64:`` to force it; otherwise used when the text is not hex).

    >>> value_from_text("1E 55 32 00 21 00").hex(), value_from_text("b64:HlUyACEA").hex()
    ('1e5532002100', '1e5532002100')
    """
    stripped = text.strip()
    if stripped.lower().startswith("b64:"):
        return _b64(stripped[4:])
    compact = _HEX_SEPARATORS.sub("", stripped)
    if compact.lower().startswith("0x"):
        compact = compact[2:]
    if _HEX_ONLY.match(compact) and len(compact) % 2 == 0:
        return bytes.fromhex(compact)
    return _b64(stripped)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _error("bad_payload_text", f"neither hex nor base64: {text[:40]!r} ({exc})") from None


def decode_ble_hex(uuid: str, hex_or_b64: str) -> dict[str, Any]:
    """CLI entry: decode a characteristic value given as hex or base64 text.
    The result is JSON-serialisable as is (``Special`` members are strings)."""
    return decode_characteristic(uuid, value_from_text(hex_or_b64))
