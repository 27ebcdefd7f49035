"""Device battery and sensor-contact flags raise technical alarms where the source gives them:
BLE Battery Level (0x2A19, Bluetooth SIG Battery Service: uint8 percent) and the Heart Rate
Measurement's sensor-contact bits (0x2A37 flags bit 2 "supported", bit 1 "detected"), from
gateway envelopes through ingest and the packaged rules file, as the pipeline runs them."""

from __future__ import annotations

import pytest

from vitalstream.errors import DecodeError
from vitalstream.connectors.ble.gatt import decode_characteristic
from vitalstream.model import Alert, Message, Reading
from vitalstream.simulators.ble_gateway import envelope, heart_rate_value
from vitalstream.stream import assembly
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.settings import Settings

NS = 1_000_000_000
T0 = 1_790_000_000 * NS
MAC = "02:00:01:00:00:01"


def _ingest(uuid: str, value: bytes, t_ns: int) -> list[Reading]:
    out: list = []
    Ingest(assembly.normaliser(Settings())).process(
        Message("vitalstream/gw-1/ble", envelope("gw-1", MAC, uuid, value, t_ns, "UTC"), t_ns), out)
    return [o for o in out if type(o) is Reading]


def _flow_alerts(readings: list[Reading]) -> list[Alert]:
    logic = assembly.patient_flow(Settings()).build(key=MAC)
    out = []
    for r in readings:
        out += logic.on_item(r)[0]
    out += logic.on_eof()[0]
    return [a for a in out if type(a) is Alert]


@pytest.mark.parametrize("raw,expected", [(b"\x00", 0), (b"\x0f", 15), (b"\x64", 100)])
def test_battery_level_decodes_as_percent(raw, expected):
    assert decode_characteristic("2A19", raw) == {"battery_pct": expected}


@pytest.mark.parametrize("raw", [b"\x65", b"\xff", b""])
def test_reserved_or_missing_battery_levels_are_decode_errors(raw):
    with pytest.raises(DecodeError):
        decode_characteristic("2A19", raw)


def test_a_low_battery_raises_battery_low_and_a_charge_ends_it():
    levels = [40, 30, 20, 16, 15, 12, 20, 26]  # <= 15 fires; > 25 (clear) ends
    readings = [r for i, v in enumerate(levels)
                for r in _ingest("2A19", bytes([v]), T0 + i * 600 * NS)]
    assert [(r.signal.value, r.value, r.unit) for r in readings][:2] == [
        ("battery", 40.0, "%"), ("battery", 30.0, "%")]
    alerts = [(a.rule, a.state, a.value) for a in _flow_alerts(readings)]
    assert alerts == [("battery_low", "firing", 15.0), ("battery_low", "resolved", 26.0)]


def test_a_strap_without_skin_contact_for_two_minutes_raises_contact_lost_once():
    # 60 s of contact, 180 s of "not detected" (motion), then contact again: flagged from
    # 60 s, 120 s of flags reached at 180 s; the clean reading at 240 s ends it
    hr = []
    for s in range(0, 300, 5):
        lost = 60 <= s < 240
        hr += _ingest("2A37", heart_rate_value(70, lost), T0 + s * NS)
    alerts = [a for a in _flow_alerts(hr) if a.rule == "contact_lost"]
    assert [(a.state, a.signal, (a.event_ns - T0) // NS, (a.episode_start_ns - T0) // NS)
            for a in alerts] == [("firing", "heart_rate", 180, 60), ("resolved", "heart_rate", 240, 60)]
    assert all(a.group == "" for a in alerts)  # a technical alarm joins no clinical concern
