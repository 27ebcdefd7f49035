"""``simulate --via ble-gateway``: a scenario's readings as raw GATT values in gateway envelopes.

Each simulated person has a gateway (their phone, ``gw-<person>``) relaying four
BLE devices, each publishing on ``vitalstream/<gateway>/ble`` one generic
envelope per notification (``connectors.ble.gateway``)::

    heart rate  -> HR strap     0x2A37  uint8/uint16 bpm; sensor contact supported,
                                        "not detected" on motion artefacts
    spo2        -> oximeter     0x2A5F  PLX Continuous: SpO2 + pulse rate (SFLOAT);
                                        the pulse is the person's latest artefact-free
                                        heart rate, so it is a heart_rate reading too
    bp_*        -> BP cuff      0x2A35  systolic/diastolic/MAP (SFLOAT mmHg), device
                                        timestamp (local time of the gateway's zone,
                                        whole seconds) and user index
    body_temp   -> thermometer  0x2A1C  FLOAT Cel, no timestamp

Characteristics without a timestamp are stamped with the envelope's gateway
time ``t_ns`` (the device's own millisecond stamp): their readings carry
``GATEWAY_TIME``. The cuff's timestamp has a resolution of one second, so its
readings' event time is the stamp truncated to the second.

No BLE carrier here, sent natively instead (JSON on ``vitalstream/dev-<person>/json``,
naming the patient): resp_rate (no Bluetooth SIG characteristic exists), steps
(none in the health profiles) and glucose (a CGM speaks its own protocol).
SpO2 samples flagged as motion artefacts are withheld: PLX motion status is not
mapped to a quality flag, so sending them would put unflagged artefacts in the
aggregates.

MACs are locally administered: ``02:00:<kind>:<person index as 3 octets>``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from vitalstream.model import to_datetime
from vitalstream.simulators.encode import WireReading, encode_native
from vitalstream.simulators.scenario import ExpectedReading, OutMessage, Scenario

NS = 1_000_000_000
KINDS = {"hr_strap": (1, "2A37"), "oximeter": (2, "2A5F"), "bp_cuff": (3, "2A35"),
         "thermometer": (4, "2A1C")}
NATIVE_SIGNALS = ("resp_rate", "steps", "glucose")
_UNITS = {"heart_rate": "/min", "spo2": "%", "bp_systolic": "mm[Hg]", "bp_diastolic": "mm[Hg]",
          "bp_mean": "mm[Hg]", "body_temp": "Cel", "resp_rate": "/min", "steps": "count",
          "glucose": "mg/dL"}


def _medfloat(value: float, mant_bits: int, exp_bits: int) -> int:
    """Raw IEEE-11073 (S)FLOAT of a decimal value: exponent 0 if exact, else the
    smallest negative one, as devices with a fixed resolution send them."""
    d = Decimal(repr(float(value))).normalize()
    half = 1 << (mant_bits - 1)
    e_min, e_max = -(1 << (exp_bits - 1)), (1 << (exp_bits - 1)) - 1
    for e in [*range(0, e_min - 1, -1), *range(1, e_max + 1)]:
        m = d.scaleb(-e)
        # With exponent 0 the mantissas +-(half - 2) and beyond are the special values.
        lo, hi = (-half + 3, half - 3) if e == 0 else (-half, half - 1)
        if m == m.to_integral_value() and lo <= m <= hi:
            return ((e & ((1 << exp_bits) - 1)) << mant_bits) | (int(m) & ((1 << mant_bits) - 1))
    raise ValueError(f"{value!r} has no exact IEEE-11073 representation")


def sfloat(value: float) -> bytes:
    """
    >>> sfloat(120.0).hex(), sfloat(36.5).hex()
    ('7800', '6df1')
    """
    return _medfloat(value, 12, 4).to_bytes(2, "little")


def float32(value: float) -> bytes:
    return _medfloat(value, 24, 8).to_bytes(4, "little")


def date_time(event_ns: int, tz: ZoneInfo) -> bytes:
    """Date Time (0x2A08) of a UTC instant as the device's local wall clock shows it."""
    t = to_datetime(event_ns).astimezone(tz)
    return t.year.to_bytes(2, "little") + bytes([t.month, t.day, t.hour, t.minute, t.second])


def heart_rate_value(bpm: int, motion: bool) -> bytes:
    flags = 0x04 | (0x00 if motion else 0x02)  # contact supported; detected unless motion
    if bpm > 255:
        return bytes([flags | 0x01]) + bpm.to_bytes(2, "little")
    return bytes([flags, bpm])


def plx_continuous_value(spo2_pct: float, pulse_bpm: float) -> bytes:
    return bytes([0x00]) + sfloat(spo2_pct) + sfloat(pulse_bpm)


def blood_pressure_value(sys: float, dia: float, mean: float, event_ns: int, tz: ZoneInfo,
                         user: int, motion: bool = False) -> bytes:
    flags = 0x02 | 0x08 | (0x10 if motion else 0)  # mmHg, timestamp, user id[, status]
    out = bytes([flags]) + sfloat(sys) + sfloat(dia) + sfloat(mean) + date_time(event_ns, tz)
    out += bytes([user])
    if motion:
        out += (0x0001).to_bytes(2, "little")  # body movement detected
    return out


def temperature_value(celsius: float) -> bytes:
    return bytes([0x00]) + float32(celsius)


@dataclass(frozen=True, slots=True)
class BleDevice:
    mac: str
    kind: str
    uuid: str
    person: str
    gateway: str
    user: int | None = None


@dataclass
class BleRun:
    messages: list[OutMessage] = field(default_factory=list)
    expected: list[ExpectedReading] = field(default_factory=list)  # what must be stored
    devices: list[BleDevice] = field(default_factory=list)
    withheld: int = 0  # motion-flagged SpO2 samples not sent
    duplicates: int = 0


def mac_of(kind: str, index: int) -> str:
    code = KINDS[kind][0]
    return ":".join(f"{b:02X}" for b in (0x02, 0x00, code, index >> 16 & 255, index >> 8 & 255,
                                          index & 255))


def envelope(gateway: str, mac: str, uuid: str, value: bytes, t_ns: int, tz: str) -> bytes:
    return json.dumps({"gateway": gateway, "device": mac, "uuid": uuid, "hex": value.hex().upper(),
                       "t_ns": t_ns, "rssi": -60, "tz": tz}, separators=(",", ":")).encode()


def ble_gateway_run(scenario: Scenario, *, tz: str = "UTC", cuff_user: int = 1,
                    latency_s: float = 0.1) -> BleRun:
    """Messages and expected readings of ``scenario`` sent through BLE gateways."""
    scenario.messages()  # builds traces and devices
    zone = ZoneInfo(tz)
    run = BleRun()
    pending: list[tuple[float, int, str, bytes, list[ExpectedReading]]] = []
    for i, (dev, trace) in enumerate(zip(scenario.devices, scenario.traces), start=1):
        person, gw = trace.spec.patient_id, f"gw-{trace.spec.patient_id}"
        devs = {k: BleDevice(mac_of(k, i), k, KINDS[k][1], person, gw,
                             cuff_user if k == "bp_cuff" else None) for k in KINDS}
        run.devices.extend(devs.values())
        sig = trace.signals
        stamps = {s: dev.stamp_ns(scenario.start_ns, tr.t_s).tolist() for s, tr in sig.items()}

        def add(t_s: float, d: BleDevice, value: bytes, t_ns: int, exp: list[tuple]) -> None:
            msg = envelope(d.gateway, d.mac, d.uuid, value, t_ns, tz)
            pending.append((t_s + latency_s, len(pending), f"{scenario.topic_prefix}/{d.gateway}/ble",
                            msg, [ExpectedReading(d.person, d.mac, s, float(v), _UNITS[s], ev, m,
                                             f"ble:{d.uuid}", -1) for s, v, ev, m in exp]))

        hr_ok: list[tuple[int, float]] = []  # (stamp, bpm) of artefact-free HR, for the oximeter
        if "heart_rate" in sig:
            tr = sig["heart_rate"]
            for t, v, m, ns in zip(tr.t_s.tolist(), tr.values.tolist(), tr.motion.tolist(),
                                   stamps["heart_rate"]):
                add(t, devs["hr_strap"], heart_rate_value(int(v), m), ns,
                    [("heart_rate", int(v), ns, m)])
                if not m:
                    hr_ok.append((ns, float(int(v))))
        if "spo2" in sig:
            tr = sig["spo2"]
            hr_t = [s for s, _ in hr_ok]
            for t, v, m, ns in zip(tr.t_s.tolist(), tr.values.tolist(), tr.motion.tolist(),
                                   stamps["spo2"]):
                if m:
                    run.withheld += 1
                    continue
                j = max(0, int(np.searchsorted(hr_t, ns, side="right")) - 1)
                pulse = hr_ok[j][1] if hr_ok else 60.0
                add(t, devs["oximeter"], plx_continuous_value(v, pulse), ns,
                    [("spo2", v, ns, False), ("heart_rate", pulse, ns, False)])
        if "bp_systolic" in sig:
            s_tr, d_tr, m_tr = sig["bp_systolic"], sig["bp_diastolic"], sig["bp_mean"]
            for k, (t, ns) in enumerate(zip(s_tr.t_s.tolist(), stamps["bp_systolic"])):
                vals = (float(s_tr.values[k]), float(d_tr.values[k]), float(m_tr.values[k]))
                motion = bool(s_tr.motion[k] or d_tr.motion[k])
                ev = ns // NS * NS  # the cuff's clock shows whole seconds
                add(t, devs["bp_cuff"], blood_pressure_value(*vals, ns, zone, cuff_user, motion), ns,
                    [(s, v, ev, motion) for s, v in zip(("bp_systolic", "bp_diastolic", "bp_mean"), vals)])
        if "body_temp" in sig:
            tr = sig["body_temp"]
            for t, v, m, ns in zip(tr.t_s.tolist(), tr.values.tolist(), tr.motion.tolist(),
                                   stamps["body_temp"]):
                add(t, devs["thermometer"], temperature_value(v), ns, [("body_temp", v, ns, m)])
        rows = sorted((t, s, v, ns) for s in NATIVE_SIGNALS if s in sig
                      for t, v, ns in zip(sig[s].t_s.tolist(), sig[s].values.tolist(), stamps[s]))
        for j in range(0, len(rows), scenario.readings_per_message):
            chunk = rows[j:j + scenario.readings_per_message]
            wires = [WireReading(s, int(v) if s == "steps" else float(v), _UNITS[s], ns)
                     for _, s, v, ns in chunk]
            payload = encode_native(dev.device_id, person, wires, "t_ns")
            pending.append((chunk[-1][0] + latency_s, len(pending),
                            f"{scenario.topic_prefix}/{dev.device_id}/json", payload,
                            [ExpectedReading(person, dev.device_id, w.signal, float(w.value), w.unit,
                                             w.event_ns, False, "json", -1) for w in wires]))
    _duplicate(pending, scenario, run)
    pending.sort(key=lambda p: (p[0], p[1]))
    for idx, (t, _, topic, payload, exp) in enumerate(pending):
        run.messages.append(OutMessage(t / scenario.time_scale, topic, payload))
        for e in exp:
            run.expected.append(ExpectedReading(**{**asdict(e), "message": idx}))
    return run


def _duplicate(pending: list, scenario: Scenario, run: BleRun) -> None:
    """Resend a share of messages unchanged (gateway retries), as the scenario's faults say."""
    rng = np.random.default_rng([scenario.seed, 7])
    dup = rng.random(len(pending)) < scenario.faults.duplicate
    after = rng.uniform(0.2, 5.0, len(pending))
    for k in np.flatnonzero(dup).tolist():
        t, _, topic, payload, _ = pending[k]
        pending.append((t + float(after[k]), len(pending), topic, payload, []))
        run.duplicates += 1


def add_ble_arguments(parser: argparse.ArgumentParser) -> None:
    """``--via`` and ``--gateway-tz`` for ``vitalstream simulate``."""
    parser.add_argument("--via", choices=("direct", "ble-gateway"), default="direct",
                        help="ble-gateway: raw GATT characteristic values in gateway envelopes")
    parser.add_argument("--gateway-tz", dest="gateway_tz", default="UTC",
                        help="IANA zone of the simulated BLE device clocks (default UTC)")


def simulate_ble_main(args: argparse.Namespace, now_ns: int | None = None) -> int:
    """``simulate --via ble-gateway``: publish, print the stats as one JSON line.

    Device times are placed as for direct publishing (``publisher.place``): around
    ``now_ns`` (the command's start) unless ``--start`` fixes them.
    """
    import sys
    import time

    from vitalstream.simulators.publisher import PublishError, placement_for, publish

    now_ns = time.time_ns() if now_ns is None else now_ns
    start_ns = getattr(args, "start", None)
    realtime = getattr(args, "realtime", False)
    if realtime and start_ns is not None:
        raise PublishError("simulate", None, "bad_option", "--realtime starts now: drop --start")
    time_scale = 1.0 if realtime else args.time_scale
    rate = None if realtime else args.rate

    def build(start: int) -> tuple[Scenario, BleRun]:
        sc = Scenario(patients=args.patients, duration_s=args.duration, seed=args.seed,
                      time_scale=time_scale, readings_per_message=args.readings_per_message,
                      start_ns=start)
        return sc, ble_gateway_run(sc, tz=getattr(args, "gateway_tz", "UTC"))

    where = placement_for(args.duration, time_scale, rate, None, start_ns, now_ns)
    sc, run = build(where.start_ns)
    if start_ns is None and rate is not None and rate > 0 and rate != float("inf"):
        # Publishing time at a fixed rate depends on the message count: place again.
        where = placement_for(args.duration, time_scale, rate, len(run.messages), None, now_ns)
        sc, run = build(where.start_ns)
    note = where.warning(sc.faults.late_max_s / time_scale + 2.0)
    if note is not None:
        print(f"vitalstream simulate: warning: {note}", file=sys.stderr)
    if args.ground_truth:
        sc.write_ground_truth(args.ground_truth)
    stats = publish(run.messages, args.mqtt_url, rate=rate, progress=args.progress, qos=args.qos,
                    anchor_ns=where.anchor_ns)
    print(json.dumps({**asdict(stats), "via": "ble-gateway", "ble_devices": len(run.devices),
                      "expected_readings": len(run.expected), "withheld": run.withheld}))
    return 0
