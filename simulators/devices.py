"""Devices: clocks that drift, delivery faults, and malformed messages.

A device stamps readings with its own clock: ``true + offset + drift * elapsed``,
truncated to the millisecond (device clocks tick in ms). Those stamps are the
event times the pipeline must store.

Delivery faults (rates per valid message, see ``FaultRates``):

- late: sent after an extra delay of up to ``late_max_s`` seconds of event time
  (store-and-forward after a radio drop-out);
- duplicate: the exact same payload sent again 0.2-5 s later (QoS 1 redelivery
  after a lost PUBACK, or a gateway retry);
- reordered: two consecutive messages of a device swap their send times.

Malformed messages are *added* (they never replace valid data), one reading
each, so every one has a single, unambiguous reason class the pipeline must
report: ``bad_json``, ``unknown_unit``, ``implausible``, ``missing_field``,
``identity_mismatch``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from vitalstream.simulators.encode import (
    WireReading,
    encode_native,
    encode_senml,
    native_reading,
)

MALFORMED_REASONS = ("bad_json", "unknown_unit", "implausible", "missing_field", "identity_mismatch")
BOGUS_UNITS = ("furlong/fortnight", "bananas", "smoot")
# (signal, value, native unit, senml value, senml unit): each far outside the
# catalogue's plausible range (HR 20-300, SpO2 40-100 %, temp 25-45 Cel, SBP 40-300).
IMPLAUSIBLE = (
    ("heart_rate", 0.0, "/min", 0.0, "beat/min"),
    ("heart_rate", 400.0, "/min", 400.0, "beat/min"),
    ("spo2", 120.0, "%", 1.2, "/"),
    ("body_temp", 50.0, "Cel", 50.0, "Cel"),
    ("bp_systolic", 350.0, "mm[Hg]", 350.0 * 133.322387415, "Pa"),
)


@dataclass(frozen=True, slots=True)
class FaultRates:
    late: float = 0.02
    late_max_s: float = 20.0
    duplicate: float = 0.01
    reorder: float = 0.01
    malformed: float = 0.01  # malformed messages added per valid message


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    patient_id: str  # the patient key the pipeline derives (device id for SenML)
    codec: str  # json | senml
    offset_ns: int
    drift_ppm: float
    time_style: str = "iso_z"  # native only: iso_z | iso_offset | t_ns
    alt_units: bool = False  # native only: temperature in [degF], glucose in mmol/L
    names_itself: bool = True  # native only: payload carries "device"

    def stamp_ns(self, start_ns: int, true_s: np.ndarray) -> np.ndarray:
        """Device clock readings (int64 ns, whole ms) at true seconds since ``start_ns``."""
        true_ns = np.round(np.asarray(true_s, dtype=float) * 1e9).astype(np.int64)
        drift = np.round(true_ns * (self.drift_ppm * 1e-6)).astype(np.int64)
        ns = start_ns + true_ns + self.offset_ns + drift
        return (ns // 1_000_000) * 1_000_000

    def stamp_one(self, start_ns: int, true_s: float) -> int:
        return int(self.stamp_ns(start_ns, np.array([true_s]))[0])


def make_device(person: str, codec: str, rng: np.random.Generator) -> Device:
    device_id = f"dev-{person}"
    offset_ns = int(rng.integers(-2_000_000_000, 2_000_000_001))
    drift_ppm = float(rng.uniform(-50.0, 50.0))
    if codec == "senml":
        return Device(device_id, device_id, "senml", offset_ns, drift_ppm)
    style = str(rng.choice(["iso_z", "iso_z", "iso_offset", "t_ns"]))
    return Device(device_id, person, "json", offset_ns, drift_ppm, style,
                  alt_units=bool(rng.random() < 0.2), names_itself=bool(rng.random() < 0.8))


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str
    variant: str
    topic_device: str
    payload: bytes


def malformed(reason: str, dev: Device, other_device: str, event_ns: int,
              rng: np.random.Generator) -> Malformed:
    """One message of class ``reason`` sent on ``dev``'s topic."""
    senml = dev.codec == "senml"
    ok = WireReading("heart_rate", 72.0, "beat/min" if senml else "/min", event_ns)
    if reason == "bad_json":
        good = _encode(dev, [ok])
        if rng.random() < 0.5:
            # A proper prefix of an object or array never balances its brackets.
            return Malformed(reason, "truncated", dev.device_id, good[: int(rng.integers(1, len(good)))])
        # 0xff never occurs in UTF-8 (RFC 3629), and JSON text must be UTF-8 (RFC 8259).
        return Malformed(reason, "not_utf8", dev.device_id, good.replace(b'"', b'"\xff', 1))
    if reason == "unknown_unit":
        unit = str(rng.choice(BOGUS_UNITS))
        return Malformed(reason, unit, dev.device_id,
                         _encode(dev, [WireReading("heart_rate", 72.0, unit, event_ns)]))
    if reason == "implausible":
        signal, v, unit, sv, sunit = IMPLAUSIBLE[int(rng.integers(len(IMPLAUSIBLE)))]
        r = WireReading(signal, sv, sunit, event_ns) if senml else WireReading(signal, v, unit, event_ns)
        return Malformed(reason, f"{signal}={v}", dev.device_id, _encode(dev, [r]))
    if reason == "missing_field":
        if senml:
            recs = [{"bn": f"{dev.device_id}:", "bt": event_ns / 1e9, "n": "heart_rate", "u": "beat/min"}]
            return Malformed(reason, "no_v", dev.device_id, json.dumps(recs).encode())
        field = str(rng.choice(["value", "signal", "t", "readings"]))
        doc: dict = {"v": 1, "device": dev.device_id, "patient": dev.patient_id}
        if field != "readings":
            item = native_reading(ok, "iso_z")
            del item[field]
            doc["readings"] = [item]
        return Malformed(reason, f"no_{field}", dev.device_id, json.dumps(doc).encode())
    if reason == "identity_mismatch":
        if senml:
            return Malformed(reason, f"bn={other_device}", dev.device_id, encode_senml(other_device, [ok]))
        return Malformed(reason, f"device={other_device}", dev.device_id,
                         encode_native(other_device, dev.patient_id, [ok]))
    raise ValueError(f"unknown malformed reason {reason!r}")


def _encode(dev: Device, readings: list[WireReading]) -> bytes:
    if dev.codec == "senml":
        return encode_senml(dev.device_id, readings)
    return encode_native(dev.device_id, dev.patient_id, readings, dev.time_style)
