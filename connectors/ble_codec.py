"""Topic codecs ``ble`` and ``omh``: BLE-gateway envelopes and Open mHealth points over MQTT.

Topics::

    vitalstream/<gateway_id>/ble    one gateway envelope (see connectors.ble.gateway)
    vitalstream/<device_id>/omh     one Open mHealth data point (see connectors.omh)

BLE: the topic names the *gateway*, not the device. An envelope whose
``gateway`` field names another gateway is an ``identity_mismatch`` (a gateway
cannot speak for another). Each reading gets ``device`` = the BLE device id
(MAC normalised to ``AA:BB:CC:DD:EE:FF``), ``gateway`` = the topic's gateway
and ``user`` = the cuff's or scale's user index when the characteristic
carries one, so the identity registry can map per user. ``patient`` stays
None: a gateway cannot know whose arm the cuff is on; the registry does.

Values that must not become numbers (IEEE-11073 NaN/NRes/INF/reserved, Weight
Scale "unsuccessful", glucose control-solution tests) are dead letters with
step ``ble_readings``, reason ``special_value`` or ``control_solution`` and the
field in ``detail``; the other values of the same notification still become
readings. A truncated or inconsistent characteristic is a dead letter of the
whole message (reason ``truncated`` etc.). Time flags (``GATEWAY_TIME`` when
the characteristic has no usable device time) and motion flags are kept in
``RawReading.quality``.

Device clocks carry no zone: the envelope's ``tz`` is used, else the zone
given to ``make_ble_decoder`` (the gateway fleet's configured zone; UTC by
default).

OMH: ``header.user_id`` becomes the payload patient when present (else None,
and the registry decides); a physical-activity point gives no reading.
Readings over MQTT are live (``Quality.OK``); the file import flags HISTORICAL.

Both decoders emit ``RawReading``s with the unit as a standard code (UCUM or
SenML); the normaliser converts it and judges plausibility. Nothing is
registered at import: ``connectors.codecs.default_codecs`` builds the table.
"""

from __future__ import annotations

from datetime import tzinfo

from vitalstream.connectors.ble.gateway import frame_to_readings, parse_envelope
from vitalstream.connectors.codecs import Decoded, Decoder
from vitalstream.connectors.omh import decode_omh
from vitalstream.connectors.omh_schemas import OmhSchemas
from vitalstream.errors import DecodeError, IdentityError

STEP_OMITTED = "ble_readings"
DEFAULT_TZ = "UTC"


def make_ble_decoder(default_tz: tzinfo | str = DEFAULT_TZ) -> Decoder:
    """A ``ble`` topic decoder whose device clocks default to ``default_tz``."""

    def decode_ble(payload: bytes, topic_device: str, recv_ns: int) -> list[Decoded]:
        frame = parse_envelope(payload)
        if frame.gateway_id is not None and frame.gateway_id != topic_device:
            raise IdentityError("identity", topic_device, "identity_mismatch",
                                f"envelope gateway {frame.gateway_id!r} on topic of {topic_device!r}")
        ble = frame_to_readings(frame, patient=None, recv_ns=recv_ns, default_tz=default_tz,
                                gateway=topic_device)
        out: list[Decoded] = list(ble.readings)
        for o in ble.omitted:
            out.append(DecodeError(STEP_OMITTED, frame.device, o.reason,
                                   f"{o.signal.value}: {o.detail}"))
        return out

    return decode_ble


decode_ble = make_ble_decoder()


def make_omh_decoder(schemas: OmhSchemas | None = None) -> Decoder:
    """An ``omh`` topic decoder validating against ``schemas`` (default: the packaged ones)."""

    def decode_omh_topic(payload: bytes, topic_device: str, recv_ns: int) -> list[Decoded]:
        """One data point -> its raw readings (raises DecodeError)."""
        return list(decode_omh(payload, device=topic_device, recv_ns=recv_ns, schemas=schemas))

    return decode_omh_topic


decode_omh_topic = make_omh_decoder()
