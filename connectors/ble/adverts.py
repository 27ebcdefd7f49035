"""BLE advertisement devices (no GATT connection) via Theengs Decoder.

Many consumer health devices (Xiaomi scales, Polar/XOSS heart-rate straps, Mi
Band) broadcast their values in advertisements. Their formats are vendor-specific
and change with firmware, so they are decoded by the ``theengsdecoder`` package
(PyPI, the decoder behind Theengs Gateway and OpenMQTTGateway; GPL-3.0, used as a
separate installed library) instead of hand-written parsers here. It is optional:
without it only advertisements a gateway already decoded (Theengs Gateway and
OpenMQTTGateway publish ``model_id``/``bpm``/``weight``... themselves) are used.

Only fields that are unambiguously a vital sign of the wearer are mapped:

- ``type`` ``BODY`` with ``bpm`` (heart-rate straps) or ``act_bpm`` (Mi Band
  activity heart rate) -> ``heart_rate``;
- ``type`` ``SCALE`` with ``weighing_mode`` ``person`` -> ``body_weight``
  (``unit`` kg or lb). ``weighing_mode`` ``object`` (a suitcase, a child in
  arms...) is reported in ``omitted`` with reason ``not_a_person``; a scale
  without ``weighing_mode`` (kitchen and coffee scales) gives nothing.

Ambient ``tempc``/``hum`` of thermometers is *not* body temperature and is ignored.
Advertisements carry no device time: readings use the gateway time and carry
``Quality.GATEWAY_TIME``. Readings are ``RawReading``s with the advertised unit
as a UCUM code (``lb`` becomes ``[lb_av]``; a unit Theengs names that the
catalogue does not know is passed on, and the normaliser dead-letters it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vitalstream.connectors.ble.readings import BleReadings, OmittedValue
from vitalstream.model import Quality, RawReading
from vitalstream.signals import Signal

try:  # optional dependency: pip install theengsdecoder
    from TheengsDecoder import decodeBLE as _theengs_decode
except ImportError:  # pragma: no cover - depends on the environment
    _theengs_decode = None

THEENGS_AVAILABLE = _theengs_decode is not None

# Keys Theengs Decoder reads from an advertisement report.
_ADVERT_KEYS = ("id", "mac", "name", "rssi", "servicedata", "servicedatauuid",
                "manufacturerdata", "uuid")
# Theengs unit names -> UCUM codes
THEENGS_UNITS: dict[str, str] = {"kg": "kg", "lb": "[lb_av]"}


def is_decoded(obj: Mapping[str, Any]) -> bool:
    """True when a gateway (Theengs/OpenMQTTGateway) already decoded the advertisement."""
    return "model_id" in obj


def decode_advertisement(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """Theengs-decoded fields of an advertisement report, or None when the device
    is unknown to Theengs Decoder or the package is not installed."""
    if is_decoded(obj):
        return dict(obj)
    if _theengs_decode is None:
        return None
    report = {k: obj[k] for k in _ADVERT_KEYS if k in obj}
    text = _theengs_decode(json.dumps(report))
    if text is None:
        return None
    decoded = json.loads(text)
    return decoded if isinstance(decoded, dict) and is_decoded(decoded) else None


def _number(value: Any) -> float | None:
    # bool is an int subclass but never a measurement
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def advert_to_readings(decoded: Mapping[str, Any], *, device: str, patient: str | None = None,
                       gateway_ns: int, gateway: str | None = None) -> BleReadings:
    """Raw readings of one Theengs-decoded advertisement (see the module docstring)."""
    out = BleReadings()
    source = f"theengs:{decoded.get('model_id', '?')}"

    def add(signal: Signal, value: float, unit: str) -> None:
        out.readings.append(RawReading(
            device=device, patient=patient, signal=signal.value, value=value,
            unit=THEENGS_UNITS.get(unit, unit), event_ns=gateway_ns,
            quality=Quality.GATEWAY_TIME, source=source, gateway=gateway))

    kind = decoded.get("type")
    if kind == "BODY":
        for key in ("bpm", "act_bpm"):
            bpm = _number(decoded.get(key))
            if bpm is not None:
                add(Signal.HEART_RATE, bpm, "/min")
                break  # one heart rate per advertisement
    elif kind == "SCALE":
        weight = _number(decoded.get("weight"))
        mode = decoded.get("weighing_mode")
        if weight is not None and mode == "person":
            add(Signal.BODY_WEIGHT, weight, str(decoded.get("unit", "kg")))
        elif weight is not None and mode == "object":
            out.omitted.append(OmittedValue(Signal.BODY_WEIGHT, "weight", None, "not_a_person"))
    return out
