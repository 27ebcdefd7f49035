"""BLE-gateway MQTT envelopes -> ``GatewayFrame``, and frames -> readings.

Two envelope styles are accepted (payload bytes are UTF-8 JSON objects):

(a) The generic GATT envelope, for gateways that connect to a device and
    forward characteristic notifications::

        {"gateway": "gw-1",                  # optional; else taken from the topic
         "device": "AA:BB:CC:DD:EE:FF",       # required: MAC or any device id
         "uuid": "2A37",                      # required: characteristic, 16-bit or
                                              #   Bluetooth-base 128-bit form
         "hex": "1E 55 32 00 21 00",          # the value, exactly one of hex / b64
         "b64": "HlUyACEA",
         "t": "2026-11-25T10:00:00Z",         # optional gateway receive time, RFC 3339
                                              #   with a zone (naive is refused);
         "t_ns": 1795600800000000000,         #   or integer UTC ns; not both
         "rssi": -61,                         # optional, dBm
         "tz": "Europe/Berlin"}               # optional IANA zone of the device clocks

(b) Theengs Gateway / OpenMQTTGateway advertisement JSON (topic
    ``<base>/<gateway>/BTtoMQTT/<MAC>``): ``{"id": "AA:..", "rssi": -70,
    "servicedata": "..", "servicedatauuid": "0x181d", "manufacturerdata": "..",
    "name": ..}``, raw or already decoded by the gateway (``model_id``, ``bpm``,
    ``weight``...). Raw ones are decoded with ``theengsdecoder`` when installed
    (see ``adverts``).

Anything else is a ``DecodeError(step="ble_gateway")`` with reason ``bad_json``,
``not_an_object``, ``missing_field``, ``bad_field``, ``naive_time``, ``bad_tz`` or
``bad_payload_text``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone, tzinfo
from typing import Any

from vitalstream.connectors.ble import adverts, gatt
from vitalstream.connectors.limits import load_json
from vitalstream.connectors.ble.readings import BleReadings, resolve_tz, to_readings
from vitalstream.errors import DecodeError, VitalstreamError
from vitalstream.timeutil import parse_iso8601_ns

STEP = "ble_gateway"
KIND_GATT = "gatt"
KIND_ADVERT = "advert"

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:\-]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")


@dataclass(frozen=True, slots=True)
class GatewayFrame:
    """One BLE value as relayed by a gateway, whatever the envelope style."""

    kind: str  # KIND_GATT (characteristic value) or KIND_ADVERT (advertisement)
    gateway_id: str | None
    device: str  # MAC as AA:BB:CC:DD:EE:FF when it is one, else the id as given
    uuid: str | None  # 16-bit characteristic UUID ("2A37") for GATT frames
    value: bytes  # characteristic value, or advertisement service/manufacturer data
    recv_ns: int | None  # gateway receive time, None when the envelope has none
    rssi: int | None = None
    tz_name: str | None = None
    service_uuid: str | None = None  # advertisement service-data UUID ("0x181d")
    decoded: Mapping[str, Any] | None = None  # Theengs fields of an advertisement


def _error(reason: str, detail: str, device: str | None = None) -> DecodeError:
    return DecodeError(STEP, device, reason, detail)


def normalise_device(device: str) -> str:
    """``AA:BB:CC:DD:EE:FF`` for a MAC in any common spelling; other ids unchanged.

    >>> normalise_device("aabbccddeeff"), normalise_device("aa-bb-cc-dd-ee-ff"), normalise_device("cuff-7")
    ('AA:BB:CC:DD:EE:FF', 'AA:BB:CC:DD:EE:FF', 'cuff-7')
    """
    text = device.strip()
    if _MAC.match(text):
        digits = re.sub(r"[:\-]", "", text).upper()
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    return text


def gateway_from_topic(topic: str | None) -> str | None:
    """Gateway name from a Theengs/OpenMQTTGateway topic ``<base>/<gw>/BTtoMQTT/<mac>``."""
    if not topic:
        return None
    parts = topic.split("/")
    if "BTtoMQTT" in parts:
        i = parts.index("BTtoMQTT")
        return parts[i - 1] if i > 0 and parts[i - 1] else None
    return None


def _load(payload: bytes | str) -> dict[str, Any]:
    obj = load_json(payload, step=STEP, device=None)  # the limits of connectors.limits
    if not isinstance(obj, dict):
        raise _error("not_an_object", f"envelope is a JSON {type(obj).__name__}, not an object")
    return obj


def _opt_str(obj: Mapping[str, Any], key: str, device: str | None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _error("bad_field", f"{key} must be a non-empty string, got {value!r}", device)
    return value.strip()


def _rssi(obj: Mapping[str, Any], device: str | None) -> int | None:
    value = obj.get("rssi")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error("bad_field", f"rssi must be an integer (dBm), got {value!r}", device)
    return value


def _recv_ns(obj: Mapping[str, Any], device: str | None) -> int | None:
    if "t" in obj and "t_ns" in obj:
        raise _error("bad_field", "give t or t_ns, not both", device)
    if obj.get("t_ns") is not None:
        value = obj["t_ns"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _error("bad_field", f"t_ns must be integer nanoseconds, got {value!r}", device)
        return value
    text = _opt_str(obj, "t", device)
    if text is None:
        return None
    try:
        return parse_iso8601_ns(text)
    except ValueError as exc:
        error = str(exc)
    try:  # valid but for its missing zone: say so, it is the common gateway mistake
        parse_iso8601_ns(text, naive_tz=timezone.utc)
    except ValueError:
        raise _error("bad_field", f"t: {error}", device) from None
    raise _error("naive_time", f"t has no zone (add Z or an offset): {text!r}", device)


def _tz_name(obj: Mapping[str, Any], device: str | None) -> str | None:
    name = _opt_str(obj, "tz", device)
    if name is not None:
        try:
            resolve_tz(name)
        except DecodeError as exc:
            raise _error("bad_tz", exc.detail, device) from None
    return name


def _gatt_frame(obj: Mapping[str, Any], topic: str | None) -> GatewayFrame:
    raw_device = _opt_str(obj, "device", None)
    if raw_device is None:
        raise _error("missing_field", "envelope has no device")
    device = normalise_device(raw_device)
    uuid_text = _opt_str(obj, "uuid", device)
    if uuid_text is None:
        raise _error("missing_field", "envelope has no uuid", device)
    try:
        uuid = gatt.normalise_uuid(uuid_text)
    except DecodeError as exc:
        raise _error("bad_field", exc.detail, device) from None
    hex_text, b64_text = _opt_str(obj, "hex", device), _opt_str(obj, "b64", device)
    if (hex_text is None) == (b64_text is None):
        raise _error("missing_field" if hex_text is None else "bad_field",
                     "envelope needs exactly one of hex / b64", device)
    try:
        value = gatt.value_from_text(hex_text if hex_text is not None else "b64:" + b64_text)
    except DecodeError as exc:
        raise _error("bad_payload_text", exc.detail, device) from None
    return GatewayFrame(
        kind=KIND_GATT, gateway_id=_opt_str(obj, "gateway", device) or gateway_from_topic(topic),
        device=device, uuid=uuid, value=value, recv_ns=_recv_ns(obj, device),
        rssi=_rssi(obj, device), tz_name=_tz_name(obj, device))


def _advert_frame(obj: Mapping[str, Any], topic: str | None) -> GatewayFrame:
    raw_device = _opt_str(obj, "id", None) or _opt_str(obj, "mac", None)
    if raw_device is None:
        raise _error("missing_field", "advertisement has no id")
    device = normalise_device(raw_device)
    data: dict[str, bytes] = {}
    for key in ("servicedata", "manufacturerdata"):
        text = _opt_str(obj, key, device)
        if text is not None:
            try:
                data[key] = bytes.fromhex(text)
            except ValueError:
                raise _error("bad_payload_text", f"{key} is not hex: {text[:40]!r}",
                             device) from None
    value = data.get("servicedata", data.get("manufacturerdata", b""))
    return GatewayFrame(
        kind=KIND_ADVERT, gateway_id=gateway_from_topic(topic), device=device, uuid=None,
        value=value, recv_ns=_recv_ns(obj, device), rssi=_rssi(obj, device),
        tz_name=_tz_name(obj, device), service_uuid=_opt_str(obj, "servicedatauuid", device),
        decoded=adverts.decode_advertisement(obj))


def parse_envelope(payload: bytes | str, *, topic: str | None = None) -> GatewayFrame:
    """One gateway MQTT payload -> ``GatewayFrame`` (raises only ``DecodeError``)."""
    obj = _load(payload)
    if "uuid" in obj and ("hex" in obj or "b64" in obj or "device" in obj):
        return _gatt_frame(obj, topic)
    if "id" in obj or "mac" in obj:
        return _advert_frame(obj, topic)
    if "device" in obj:
        return _gatt_frame(obj, topic)  # reports which GATT field is missing
    raise _error("missing_field", "neither a GATT envelope (device, uuid, hex|b64) "
                                  "nor an advertisement (id)")


def frame_to_readings(frame: GatewayFrame, *, patient: str | None = None, recv_ns: int,
                      default_tz: tzinfo | str,
                      patient_by_user: Mapping[int, str] | None = None,
                      gateway: str | None = None) -> BleReadings:
    """Decode a frame and map it to raw readings.

    ``recv_ns`` is the caller's receive time, used when the envelope has none;
    ``default_tz`` is the gateway's configured zone, used when it sends no ``tz``.
    ``gateway`` (default: the frame's own gateway id) is kept on each reading.
    Errors carry the frame's device.
    """
    gateway = gateway if gateway is not None else frame.gateway_id
    gateway_ns = frame.recv_ns if frame.recv_ns is not None else recv_ns
    try:
        if frame.kind == KIND_ADVERT:
            if frame.decoded is None:
                return BleReadings()  # a device Theengs does not know: nothing to say
            return adverts.advert_to_readings(frame.decoded, device=frame.device,
                                              patient=patient, gateway_ns=gateway_ns,
                                              gateway=gateway)
        decoded = gatt.decode_characteristic(frame.uuid or "", frame.value)
        return to_readings(frame.uuid or "", decoded, device=frame.device, patient=patient,
                           gateway_ns=gateway_ns, tz=frame.tz_name or default_tz,
                           patient_by_user=patient_by_user, gateway=gateway)
    except VitalstreamError as exc:
        if exc.device is None:
            exc.device = frame.device
            exc.args = (exc._message(),)
        raise
