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
``bu``, ``bv``, ``bs``, ``bver``) apply to the record they appear in and every
later one until redefined (RFC 8428 section 4.1). The resolved name ``bn + n``
is ``<device_id>:<signal>`` (``/`` is accepted as separator too); a pack with no
base name names only the signal and takes its device from the topic. Times are
seconds, kept to the microsecond (a double near 1.7e9 s cannot hold more);
values of ``t`` below 2**28 are relative to now (section 4.5.3), which here
means ``recv_ns``, the receive time the caller passes (a command-line decode
passes the current time, ``time.time_ns()``).

What the RFC makes an error of the whole pack (one dead letter, no reading):

- a field whose label ends in ``_`` ("must understand", section 4.4; this
  decoder understands none): reason ``unsupported_field``;
- ``bver`` above 10, the version RFC 8428 defines (sections 4.1 and 4.4: the
  receiver MUST NOT use such a pack): ``unsupported_version``; a ``bver`` that
  is not a positive integer, or records of different versions (4.4: all
  records of a pack have the same version): ``bad_version``.

Per record (the other records of the pack still count):

- a record whose value is ``vs``, ``vb`` or ``vd`` (string, boolean, data) is
  ``unsupported_field`` naming the field: vital signs are numbers;
- a record with a sum only (``s``, or a ``bs`` in force) and no ``v`` is
  ``unsupported_field`` naming ``s``: RFC 8428 4.2 defines the sum as the
  integral of the value over time, in the unit times seconds, so reading it as
  a value would be wrong (a step count sum is in count*s, not steps). A record
  with both ``v`` and ``s`` is the reading ``v``; its sum is not used;
- more than one of ``v``/``vs``/``vb``/``vd`` is ``bad_value`` (4.2: exactly one
  value field).

Decoders return one entry per record: a ``RawReading`` or the error that record
raised, so one bad record in a pack does not take the valid ones down with it.
Units are passed on as sent; the normaliser converts them (or dead-letters them
as ``unknown_unit``).

Registry: a decoder is ``Decoder(payload, topic_device, recv_ns)``. Nothing is
registered at import; the caller builds the topic-codec table it wants with
``default_codecs()`` (``json``, ``senml``, ``ble``, ``omh``) and may add or
replace entries in its own copy.
"""

from __future__ import annotations

import math
from datetime import tzinfo
from typing import TYPE_CHECKING, Callable, Union

from vitalstream.connectors.limits import load_json
from vitalstream.errors import DecodeError, IdentityError, VitalstreamError
from vitalstream.model import Quality, RawReading
from vitalstream.timeutil import parse_iso8601_ns

if TYPE_CHECKING:
    from vitalstream.connectors.omh_schemas import OmhSchemas

NS = 1_000_000_000
_SENML_RELATIVE_LIMIT_S = 2**28  # RFC 8428 4.5.3
SENML_VERSION = 10  # RFC 8428 4.1: the Base Version this decoder implements (and the default)
_SENML_OTHER_VALUES = ("vs", "vb", "vd")  # 4.2: string, boolean and data values


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


def _iso_to_ns(text: object, device: str) -> int:
    try:
        return parse_iso8601_ns(text)  # type: ignore[arg-type]  # a non-string is a ValueError
    except ValueError as exc:
        raise DecodeError("decode", device, "bad_time", str(exc)) from None


def _number(v: object, device: str, what: str) -> float:
    # bool is an int subclass: true/false are not measurements.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DecodeError("decode", device, "bad_value", f"{what}={v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise DecodeError("decode", device, "bad_value", f"{what}={v!r}")
    return f


def _load(payload: bytes, device: str) -> object:
    return load_json(payload, step="decode", device=device)  # the limits of connectors.limits


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
    flags = item.get("flags")
    if flags is not None:
        # a list of strings; unknown names are ignored (a newer sender's flags), other
        # shapes are the sender's bug (found by benchmarks/fuzz_decoders.py: "flags": 7)
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise DecodeError("decode", device, "bad_value", f"flags={flags!r:.80} is not a "
                              "list of strings")
        for flag in flags:
            quality |= _FLAG_BITS.get(flag, Quality.OK)
    unit = item.get("unit")
    return RawReading(device, patient, signal, value, unit, event_ns, quality, "json")


_SENML_LABELS = frozenset(("bn", "bt", "bu", "bv", "bs", "n", "u", "v", "vs", "vb", "vd", "s",
                           "t", "ut"))


def _senml_pack_check(doc: list, device: str) -> None:
    """Errors of the whole pack (RFC 8428 4.4), raised before any record is used."""
    version = None
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict):
            continue  # that record's own error, reported with it
        if rec.keys() <= _SENML_LABELS:
            continue  # the common case: only the labels of RFC 8428 4.2 (a C-level check)
        for label in rec:
            if isinstance(label, str) and label.endswith("_"):
                raise DecodeError("decode", device, "unsupported_field",
                                  f"record {i}: {label!r} is a must-understand field this "
                                  "receiver does not understand (RFC 8428 4.4)")
        if "bver" in rec:
            v = rec["bver"]
            # JSON has one number type: 10 and 10.0 are the same integer.
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 1:
                raise DecodeError("decode", device, "bad_version",
                                  f"record {i}: bver={v!r} is not a positive integer (RFC 8428 4.1)")
            if v > SENML_VERSION:
                raise DecodeError("decode", device, "unsupported_version",
                                  f"record {i}: bver={v!r}, this receiver implements "
                                  f"{SENML_VERSION} (RFC 8428 4.4)")
            version = int(v) if version is None else version
            if int(v) != version:
                raise DecodeError("decode", device, "bad_version",
                                  f"record {i}: bver={v!r} after bver={version}: all records of "
                                  "a pack have the same version (RFC 8428 4.4)")
    # A pack that sets bver only after its first record mixes the default (10) with it.
    if version is not None and version != SENML_VERSION and "bver" not in _first_record(doc):
        raise DecodeError("decode", device, "bad_version",
                          f"bver={version} set after records of the default version "
                          f"{SENML_VERSION} (RFC 8428 4.4)")


def _first_record(doc: list) -> dict:
    return next((r for r in doc if isinstance(r, dict)), {})


def decode_senml(payload: bytes, topic_device: str, recv_ns: int) -> list[Decoded]:
    """Records of a SenML JSON pack; ``recv_ns`` resolves relative times (RFC 8428 4.5.3)."""
    doc = _load(payload, topic_device)
    if not isinstance(doc, list):
        raise DecodeError("decode", topic_device, "missing_field", "SenML pack is not an array")
    _senml_pack_check(doc, topic_device)
    out: list[Decoded] = []
    bn, bt, bu, bv, bs = "", 0.0, None, 0.0, None
    for rec in doc:
        try:
            if not isinstance(rec, dict):
                raise DecodeError("decode", topic_device, "missing_field", "record is not an object")
            # Base fields take effect for this record and the ones after it.
            bn = _text(rec["bn"], topic_device, "bn") if "bn" in rec else bn
            bt = _number(rec["bt"], topic_device, "bt") if "bt" in rec else bt
            bu = _text(rec["bu"], topic_device, "bu") if "bu" in rec else bu
            bv = _number(rec["bv"], topic_device, "bv") if "bv" in rec else bv
            bs = _number(rec["bs"], topic_device, "bs") if "bs" in rec else bs
            out.append(_senml_record(rec, topic_device, recv_ns, bn, bt, bu, bv, bs))
        except VitalstreamError as err:
            out.append(err)
    return out


def _text(v: object, device: str, what: str) -> str:
    if not isinstance(v, str):
        raise DecodeError("decode", device, "bad_value", f"{what}={v!r} is not a string")
    return v


def _senml_record(rec: dict, topic_device: str, recv_ns: int, bn: str, bt: float,
                  bu: str | None, bv: float, bs: float | None) -> RawReading:
    n = rec.get("n", "")
    name = bn + (n if type(n) is str else _text(n, topic_device, "n"))
    if not name:
        raise DecodeError("decode", topic_device, "missing_field", "record has no name")
    cut = max(name.rfind(":"), name.rfind("/"))
    device, signal = (name[:cut], name[cut + 1:]) if cut >= 0 else (None, name)
    _check_device(device, topic_device)
    if "v" in rec and "s" not in rec and rec.keys().isdisjoint(_SENML_OTHER_VALUES):
        value = bv + _number(rec["v"], topic_device, name)  # the common record, checked once
    else:
        value = _senml_other(rec, topic_device, name, bv, bs)
    t = bt + _number(rec["t"], topic_device, "t") if "t" in rec else bt
    if t < _SENML_RELATIVE_LIMIT_S:  # 4.5.3: every value below 2**28, negatives too
        event_ns = recv_ns + round(t * NS)
    else:
        # A float of ~1.7e9 s resolves ~0.24 us, so sub-microsecond digits are
        # noise: round to whole microseconds, which survive the round trip exactly.
        whole = math.floor(t)
        event_ns = whole * NS + round((t - whole) * 1e6) * 1000
    u = rec.get("u", bu)
    unit = u if u is None or type(u) is str else _text(u, topic_device, "u")
    return RawReading(topic_device, None, signal, value, unit, event_ns, Quality.OK, "senml")


def _senml_other(rec: dict, topic_device: str, name: str, bv: float, bs: float | None) -> float:
    """The value of a record that is not a plain ``v`` (or the error it raises)."""
    values = [k for k in ("v", *_SENML_OTHER_VALUES) if k in rec]
    if len(values) > 1:
        raise DecodeError("decode", topic_device, "bad_value",
                          f"{name}: {', '.join(values)}: exactly one value field (RFC 8428 4.2)")
    if values and values[0] != "v":
        raise DecodeError("decode", topic_device, "unsupported_field",
                          f"{name}: {values[0]} (a {_VALUE_KIND[values[0]]} value): "
                          "vital signs are numeric 'v' values")
    if "s" in rec:
        _number(rec["s"], topic_device, "s")  # a malformed sum is malformed even if unused
    if not values and "bv" not in rec:
        if "s" in rec or bs is not None:
            raise DecodeError("decode", topic_device, "unsupported_field",
                              f"{name}: s (sum, the integral of the value over time, RFC 8428 "
                              "4.2) without a value 'v': a sum is not a reading")
        raise DecodeError("decode", topic_device, "missing_field", f"{name}: no numeric value 'v'")
    return bv + _number(rec.get("v", 0.0), topic_device, name)


_VALUE_KIND = {"vs": "string", "vb": "boolean", "vd": "data"}


def default_codecs(*, ble_tz: tzinfo | str = "UTC",
                   omh_schemas: OmhSchemas | None = None) -> dict[str, Decoder]:
    """A new topic-codec table: ``json``, ``senml``, ``ble`` and ``omh``.

    ``ble_tz`` is the zone of the BLE device clocks when an envelope names none
    (the gateway fleet's configured zone). ``omh_schemas`` defaults to the
    packaged Open mHealth schemas. The table is the caller's: add or replace
    entries in it, nothing else sees them.
    """
    # Imported here: ble_codec and omh import this module (Decoded, Decoder).
    from vitalstream.connectors.ble_codec import make_ble_decoder, make_omh_decoder

    return {"json": decode_json, "senml": decode_senml, "ble": make_ble_decoder(ble_tz),
            "omh": make_omh_decoder(omh_schemas)}
