"""Payload codecs: native JSON and SenML (RFC 8428) JSON packs.

Topic layout: ``vitalstream/<device_id>/<codec>`` (codec ``json``, ``senml``,
later ``ble``, ``omh``). The topic names the device; a payload may repeat the
device id but may not name another one (a device cannot speak for another).

Native JSON (codec ``json``)::

    {"v": 1, "device": "dev-7", "patient": "p-7",
     "readings": [{"signal": "heart_rate", "value": 71.0, "unit": "/min",
                   "t": "2026-11-25T10:00:00.250Z", "flags": ["motion"]}]}

``t`` is ISO-8601 with a zone (``Z`` or an offset); ``t_ns`` (integer ns since
the epoch) may stand instead. ``device`` and ``patient`` are optional; ``unit``
is optional (canonical unit assumed). A single reading object without the
``readings`` array is accepted too.

SenML (codec ``senml``): a JSON array of records. Base fields (``bn``, ``bt``,
``bu``, ``bv``) apply to the record they appear in and every later one until
redefined (RFC 8428 section 4.1). The resolved name ``bn + n`` is
``<device_id>:<signal>`` (``/`` is accepted as separator too); a pack with no
base name names only the signal and takes its device from the topic. Times are
seconds, kept to the microsecond (a double near 1.7e9 s cannot hold more);
values of ``t`` below 2**28 are relative to now (section 4.5.3), which here
means the receive time.

Decoders return one entry per record: a ``RawReading`` or the error that record
raised, so one bad record in a pack does not take the valid ones down with it.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Callable, Union

from vitalstream.errors import DecodeError, IdentityError, VitalstreamError
from vitalstream.model import Quality, RawReading, from_datetime

NS = 1_000_000_000
_SENML_RELATIVE_LIMIT_S = 2**28  # RFC 8428 4.5.3


Decoded = Union[RawReading, VitalstreamError]
Decoder = Callable[[bytes, str, int], list[Decoded]]

_FLAG_BITS = {"motion": Quality.MOTION_ARTEFACT, "special": Quality.SPECIAL_VALUE,
              "historical": Quality.HISTORICAL}


def parse_topic(topic: str) -> tuple[str, str]:
    """``vitalstream/<device>/<codec>`` -> (device, codec); any prefix depth is allowed.

    >>> parse_topic("vitalstream/dev-7/senml")
    ('dev-7', 'senml')
    >>> parse_topic("site-a/vitalstream/dev-7/json")
    ('dev-7', 'json')
    """
    parts = topic.rsplit("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise DecodeError("topic", None, "bad_topic", topic)
    return parts[1], parts[2]


def _iso_to_ns(text: str, device: str) -> int:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise DecodeError("decode", device, "bad_time", repr(text)) from exc
    if dt.tzinfo is None:
        raise DecodeError("decode", device, "bad_time", f"no time zone in {text!r}")
    return from_datetime(dt)


def _number(v: object, device: str, what: str) -> float:
    # bool is an int subclass: true/false are not measurements.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DecodeError("decode", device, "bad_value", f"{what}={v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise DecodeError("decode", device, "bad_value", f"{what}={v!r}")
    return f


def _load(payload: bytes, device: str) -> object:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError("decode", device, "bad_json", str(exc)[:200]) from exc


def _check_device(claimed: object, topic_device: str) -> None:
    if claimed is not None and claimed != topic_device:
        raise IdentityError("identity", topic_device, "identity_mismatch",
                            f"payload device {claimed!r} on topic of {topic_device!r}")


def decode_json(payload: bytes, topic_device: str, recv_ns: int) -> list[Decoded]:
    doc = _load(payload, topic_device)
    if not isinstance(doc, dict):
        raise DecodeError("decode", topic_device, "missing_field", "payload is not an object")
    _check_device(doc.get("device"), topic_device)
    patient = doc.get("patient")
    if patient is not None and not isinstance(patient, str):
        raise DecodeError("decode", topic_device, "bad_value", f"patient={patient!r}")
    items = doc["readings"] if "readings" in doc else [doc]
    if not isinstance(items, list):
        raise DecodeError("decode", topic_device, "missing_field", "readings is not a list")
    out: list[Decoded] = []
    for item in items:
        try:
            out.append(_json_reading(item, topic_device, patient))
        except VitalstreamError as err:
            out.append(err)
    return out


def _json_reading(item: object, device: str, patient: str | None) -> RawReading:
    if not isinstance(item, dict):
        raise DecodeError("decode", device, "missing_field", "reading is not an object")
    try:
        signal = item["signal"]
        raw_value = item["value"]
    except KeyError as exc:
        raise DecodeError("decode", device, "missing_field", str(exc)) from None
    if not isinstance(signal, str):
        raise DecodeError("decode", device, "bad_value", f"signal={signal!r}")
    value = _number(raw_value, device, signal)
    if "t_ns" in item:
        t = item["t_ns"]
        if isinstance(t, bool) or not isinstance(t, int):
            raise DecodeError("decode", device, "bad_time", f"t_ns={t!r}")
        event_ns = t
    elif "t" in item:
        event_ns = _iso_to_ns(item["t"], device)
    else:
        raise DecodeError("decode", device, "missing_field", "'t' or 't_ns'")
    quality = Quality.OK
    for flag in item.get("flags") or ():
        quality |= _FLAG_BITS.get(flag, Quality.OK)
    unit = item.get("unit")
    return RawReading(device, patient, signal, value, unit, event_ns, quality, "json")


def decode_senml(payload: bytes, topic_device: str, recv_ns: int) -> list[Decoded]:
    doc = _load(payload, topic_device)
    if not isinstance(doc, list):
        raise DecodeError("decode", topic_device, "missing_field", "SenML pack is not an array")
    out: list[Decoded] = []
    bn, bt, bu, bv = "", 0.0, None, 0.0
    for rec in doc:
        try:
            if not isinstance(rec, dict):
                raise DecodeError("decode", topic_device, "missing_field", "record is not an object")
            # Base fields take effect for this record and the ones after it.
            bn = rec.get("bn", bn)
            bt = _number(rec["bt"], topic_device, "bt") if "bt" in rec else bt
            bu = rec.get("bu", bu)
            bv = _number(rec["bv"], topic_device, "bv") if "bv" in rec else bv
            out.append(_senml_record(rec, topic_device, recv_ns, bn, bt, bu, bv))
        except VitalstreamError as err:
            out.append(err)
    return out


def _senml_record(rec: dict, topic_device: str, recv_ns: int, bn: str, bt: float,
                  bu: str | None, bv: float) -> RawReading:
    name = f"{bn}{rec.get('n', '')}"
    if not name:
        raise DecodeError("decode", topic_device, "missing_field", "record has no name")
    cut = max(name.rfind(":"), name.rfind("/"))
    device, signal = (name[:cut], name[cut + 1:]) if cut >= 0 else (None, name)
    _check_device(device, topic_device)
    if "v" not in rec and "bv" not in rec:
        raise DecodeError("decode", topic_device, "missing_field", f"{name}: no numeric value 'v'")
    value = bv + _number(rec.get("v", 0.0), topic_device, name)
    t = bt + _number(rec.get("t", 0.0), topic_device, "t")
    if t < _SENML_RELATIVE_LIMIT_S:  # 4.5.3: every value below 2**28, negatives too
        event_ns = recv_ns + round(t * NS)
    else:
        # A float of ~1.7e9 s resolves ~0.24 us, so sub-microsecond digits are
        # noise: round to whole microseconds, which survive the round trip exactly.
        whole = math.floor(t)
        event_ns = whole * NS + round((t - whole) * 1e6) * 1000
    return RawReading(topic_device, None, signal, value, rec.get("u", bu), event_ns,
                      Quality.OK, "senml")


CODECS: dict[str, Decoder] = {"json": decode_json, "senml": decode_senml}


def register_codec(name: str, decoder: Decoder) -> None:
    """Plug in a decoder for topic suffix ``name`` (BLE gateways, Open mHealth...)."""
    CODECS[name] = decoder
