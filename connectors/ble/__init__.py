"""Bluetooth LE health devices: GATT characteristic decoders, IEEE-11073 floats,
mapping to readings, and BLE-gateway envelopes (see each module's docstring)."""

from vitalstream.connectors.ble.gateway import GatewayFrame, frame_to_readings, parse_envelope
from vitalstream.connectors.ble.gatt import decode_ble_hex, decode_characteristic
from vitalstream.connectors.ble.ieee11073 import Special
from vitalstream.connectors.ble.readings import BleReadings, OmittedValue, to_readings

__all__ = [
    "BleReadings",
    "GatewayFrame",
    "OmittedValue",
    "Special",
    "decode_ble_hex",
    "decode_characteristic",
    "frame_to_readings",
    "parse_envelope",
    "to_readings",
]
