"""A run: patients, devices, the messages to publish, and the ground truth.

Pure and deterministic given ``seed``: no MQTT, no wall clock. Tests and the
publisher use the same ``Scenario``, so a test checks exactly the bytes that a
live run publishes.

    sc = Scenario(patients=200, duration_s=600, seed=7, codec="mixed")
    for offset_s, topic, payload in sc.messages(): ...
    sc.valid_readings()   # what the pipeline must store
    sc.ground_truth()     # dicts, one per patient / episode / malformed message ...

Patient keys: a native JSON payload names its patient (``p0001``); a SenML pack
cannot, so the pipeline keys those readings by device id (``dev-p0002``), and
the ground truth does the same (``person`` keeps the simulated person's id).
All ground-truth times are device-stamped event times in ns, as the pipeline
sees them.

``start_ns`` defaults to a fixed date so that a ``Scenario`` is reproducible;
``vitalstream simulate`` places the period around now instead
(``publisher.place``), because a pipeline replaces device times further than
``max_clock_skew_s`` from the receive time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
from vitalstream.model import from_datetime, to_datetime
from vitalstream.signals import Signal, spec
from vitalstream.simulators.devices import (
    MALFORMED_REASONS,
    Device,
    FaultRates,
    make_device,
    malformed,
)
from vitalstream.simulators.encode import (
    WireReading,
    canonical,
    encode_native,
    encode_senml,
    wire_value,
)
from vitalstream.simulators.episodes import THRESHOLDS
from vitalstream.simulators.physiology import (
    DEFAULT_MIX,
    PatientTrace,
    SamplingRates,
    assign_profiles,
    make_patient,
    simulate,
)

DEFAULT_START_NS = from_datetime(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
CODECS = ("json", "senml", "mixed")
_UNITS = {s.value: spec(s).unit for s in Signal}
_ORDER = {s: i for i, s in enumerate(("heart_rate", "spo2", "resp_rate", "body_temp", "bp_systolic",
                                      "bp_diastolic", "bp_mean", "glucose", "steps"))}


class OutMessage(NamedTuple):
    publish_offset_s: float  # seconds after the run starts (already divided by time_scale)
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class ExpectedReading:
    """A reading the pipeline must store, in the canonical unit, at the device's stamp."""

    patient: str
    device: str
    signal: str
    value: float
    unit: str
    event_ns: int
    motion: bool
    codec: str
    message: int  # index in messages() of its first transmission


@dataclass(slots=True)
class _Pending:
    send_s: float
    seq: int
    topic: str
    payload: bytes
    kind: str  # data | duplicate | malformed
    readings: list[tuple[Device, WireReading]] = field(default_factory=list)
    info: dict | None = None


class Scenario:
    def __init__(self, patients: int = 10, duration_s: float = 600.0, seed: int = 0,
                 codec: str = "json", start_ns: int = DEFAULT_START_NS, time_scale: float = 1.0,
                 readings_per_message: int = 3, rates: SamplingRates | None = None,
                 profiles: Mapping[str, float] | Sequence[str] | None = None,
                 faults: FaultRates | None = None, topic_prefix: str = "vitalstream") -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, not {codec!r}")
        if time_scale <= 0 or duration_s <= 0 or readings_per_message < 1:
            raise ValueError("time_scale, duration_s and readings_per_message must be positive")
        self.duration_s = float(duration_s)
        self.seed = int(seed)
        self.codec = codec
        self.start_ns = int(start_ns)
        self.time_scale = float(time_scale)
        self.readings_per_message = int(readings_per_message)
        self.rates = rates or SamplingRates()
        self.faults = faults or FaultRates()
        self.topic_prefix = topic_prefix
        if profiles is not None and not isinstance(profiles, Mapping):
            self.profiles = [str(p) for p in profiles]
        else:
            self.profiles = assign_profiles(int(patients), dict(profiles or DEFAULT_MIX),
                                            np.random.default_rng([self.seed, 0]))
        self._built = False

    # -- public API -------------------------------------------------------------------
    def messages(self) -> list[OutMessage]:
        self._build()
        return self._messages

    def valid_readings(self) -> list[ExpectedReading]:
        self._build()
        return self._readings

    def ground_truth(self) -> list[dict]:
        self._build()
        return self._truth

    def write_ground_truth(self, path: str | Path) -> int:
        """Write the ground truth as JSON lines; returns the number of lines."""
        lines = [json.dumps(d, sort_keys=True) for d in self.ground_truth()]
        Path(path).write_text("\n".join(lines) + "\n")
        return len(lines)

    def topic(self, device: str, codec: str) -> str:
        return f"{self.topic_prefix}/{device}/{codec}"

    # -- generation -----------------------------------------------------------------------
    def _codec_of(self, i: int) -> str:
        if self.codec == "mixed":
            return "json" if i % 2 == 0 else "senml"
        return self.codec

    def _build(self) -> None:
        if self._built:
            return
        n = len(self.profiles)
        width = max(4, len(str(n)))
        pending: list[_Pending] = []
        self._truth: list[dict] = [self._header()]
        self.devices: list[Device] = []
        self.traces: list[PatientTrace] = []
        counts = {"late": 0, "duplicates": 0, "duplicate_readings": 0, "reordered": 0,
                  "motion_flagged": 0, "motion_withheld": 0}
        for i, profile in enumerate(self.profiles):
            person = f"p{i + 1:0{width}d}"
            prng = np.random.default_rng([self.seed, 1, i])
            pspec = make_patient(person, profile, self.duration_s, self.rates, prng)
            trace = simulate(pspec, self.rates, self.duration_s, self.start_ns, prng)
            dev = make_device(person, self._codec_of(i), np.random.default_rng([self.seed, 2, i]))
            self.devices.append(dev)
            self.traces.append(trace)
            msgs, flagged, withheld = self._device_messages(dev, trace, len(pending), i)
            counts["motion_flagged"] += flagged
            counts["motion_withheld"] += withheld
            self._faults(msgs, np.random.default_rng([self.seed, 3, i]), counts)
            pending.extend(msgs)
            self._truth.extend(self._patient_truth(dev, trace, flagged, withheld))
        n_data = sum(1 for p in pending if p.kind == "data")
        pending.extend(self._malformed(n_data, len(pending)))
        pending.sort(key=lambda p: (p.send_s, p.seq))
        self._finish(pending, counts, n_data)
        self._built = True

    def _device_messages(self, dev: Device, trace: PatientTrace, seq0: int,
                         i: int) -> tuple[list[_Pending], int, int]:
        rows: list[tuple[float, int, WireReading]] = []
        flagged = withheld = 0
        for sig, s in trace.signals.items():
            stamps = dev.stamp_ns(self.start_ns, s.t_s).tolist()
            for t, v, m, ns in zip(s.t_s.tolist(), s.values.tolist(), s.motion.tolist(), stamps):
                if m and dev.codec == "senml":
                    withheld += 1  # SenML has no flag field: the device holds the artefact back
                    continue
                flagged += m
                wv, unit = wire_value(sig, v, dev.codec, dev.alt_units)
                rows.append((t, _ORDER[sig], WireReading(sig, wv, unit, ns, m)))
        rows.sort(key=lambda r: (r[0], r[1]))
        lat_rng = np.random.default_rng([self.seed, 4, i])
        k = self.readings_per_message
        chunks = [rows[j:j + k] for j in range(0, len(rows), k)]
        latency = lat_rng.uniform(0.05, 0.5, len(chunks))
        topic = self.topic(dev.device_id, dev.codec)
        out = []
        for j, chunk in enumerate(chunks):
            wires = [r[2] for r in chunk]
            if dev.codec == "senml":
                payload = encode_senml(dev.device_id, wires)
            else:
                payload = encode_native(dev.device_id if dev.names_itself else None,
                                        dev.patient_id, wires, dev.time_style)
            out.append(_Pending(chunk[-1][0] + float(latency[j]), seq0 + j, topic, payload, "data",
                                [(dev, w) for w in wires]))
        return out, flagged, withheld

    def _faults(self, msgs: list[_Pending], rng: np.random.Generator, counts: dict) -> None:
        f = self.faults
        swap = rng.random(len(msgs)) < f.reorder
        j = 0
        while j < len(msgs) - 1:
            if swap[j]:
                msgs[j].send_s, msgs[j + 1].send_s = msgs[j + 1].send_s, msgs[j].send_s
                counts["reordered"] += 1
                j += 2
            else:
                j += 1
        late = rng.random(len(msgs)) < f.late
        delay = rng.uniform(min(2.0, f.late_max_s), f.late_max_s, len(msgs))
        for m, is_late, d in zip(msgs, late.tolist(), delay.tolist()):
            if is_late:
                m.send_s += d
                counts["late"] += 1
        dup = rng.random(len(msgs)) < f.duplicate
        after = rng.uniform(0.2, 5.0, len(msgs))
        copies = [_Pending(m.send_s + a, 0, m.topic, m.payload, "duplicate")
                  for m, d, a in zip(msgs, dup.tolist(), after.tolist()) if d]
        base = msgs[-1].seq + 1 if msgs else 0
        for k, c in enumerate(copies):
            c.seq = base + k
        # What a pipeline's dedup counts: readings, not messages.
        counts["duplicate_readings"] += sum(len(m.readings) for m, d in zip(msgs, dup.tolist()) if d)
        msgs.extend(copies)
        counts["duplicates"] += len(copies)

    def _malformed(self, n_data: int, seq0: int) -> list[_Pending]:
        rng = np.random.default_rng([self.seed, 5])
        count = round(self.faults.malformed * n_data)
        if not self.devices:
            return []
        first = int(rng.integers(len(MALFORMED_REASONS)))
        out = []
        for j in range(count):
            reason = MALFORMED_REASONS[(first + j) % len(MALFORMED_REASONS)]
            idx = int(rng.integers(len(self.devices)))
            dev = self.devices[idx]
            other = (self.devices[(idx + 1) % len(self.devices)].device_id
                     if len(self.devices) > 1 else f"{dev.device_id}-clone")
            t = float(rng.uniform(0.0, self.duration_s))
            bad = malformed(reason, dev, other, dev.stamp_one(self.start_ns, t), rng)
            out.append(_Pending(t + float(rng.uniform(0.05, 0.5)), seq0 + j,
                                self.topic(bad.topic_device, dev.codec), bad.payload, "malformed",
                                info={"type": "malformed", "reason": reason, "variant": bad.variant,
                                      "device": dev.device_id, "topic": self.topic(bad.topic_device, dev.codec)}))
        return out

    def _finish(self, pending: list[_Pending], counts: dict, n_data: int) -> None:
        self._messages = []
        self._readings = []
        by_reason = {r: 0 for r in MALFORMED_REASONS}
        for idx, p in enumerate(pending):
            self._messages.append(OutMessage(p.send_s / self.time_scale, p.topic, p.payload))
            if p.kind == "data":
                for dev, w in p.readings:
                    self._readings.append(ExpectedReading(
                        dev.patient_id, dev.device_id, w.signal, canonical(w.signal, w.value, w.unit),
                        _UNITS[w.signal], w.event_ns, w.motion, dev.codec, idx))
            elif p.kind == "malformed":
                assert p.info is not None
                by_reason[p.info["reason"]] += 1
                self._truth.append({**p.info, "index": idx})
        self._truth.append({"type": "counts", "messages": len(pending), "valid_messages": n_data,
                            "valid_readings": len(self._readings), "malformed": by_reason, **counts})

    # -- ground truth ---------------------------------------------------------------------
    def _header(self) -> dict:
        return {"type": "scenario", "seed": self.seed, "patients": len(self.profiles),
                "duration_s": self.duration_s, "codec": self.codec, "start_ns": self.start_ns,
                "start": to_datetime(self.start_ns).isoformat(), "time_scale": self.time_scale,
                "readings_per_message": self.readings_per_message, "rates": asdict(self.rates),
                "topic_prefix": self.topic_prefix,
                "faults": asdict(self.faults), "thresholds": {k: list(v) for k, v in THRESHOLDS.items()},
                "time_base": "device-stamped event time, ns since the Unix epoch (UTC)"}

    def _patient_truth(self, dev: Device, trace: PatientTrace, flagged: int, withheld: int) -> list[dict]:
        ps = trace.spec
        ns = lambda s: dev.stamp_one(self.start_ns, s)
        who = {"patient": dev.patient_id, "person": ps.patient_id, "device": dev.device_id}
        out = [{"type": "patient", **who, "profile": ps.profile, "codec": dev.codec,
                "clock_offset_ns": dev.offset_ns, "clock_drift_ppm": dev.drift_ppm,
                "time_style": dev.time_style if dev.codec == "json" else None,
                "alt_units": dev.alt_units, "bp_interval_s": ps.bp_interval_s,
                "baseline": {"heart_rate": ps.hr_base, "spo2": ps.spo2_base, "resp_rate": ps.rr_base,
                             "body_temp": ps.temp_base, "bp_systolic": ps.sbp_base,
                             "bp_diastolic": ps.dbp_base, "glucose": ps.glucose_base},
                "motion_flagged": flagged, "motion_withheld": withheld}]
        ep = ps.episode
        if ep is not None:
            out.append({"type": "episode", **who, "kind": ep.kind, "signal": ep.signal, "rule": ep.rule,
                        "rules": list(ep.rules), "onset_ns": ns(ep.onset_s), "start_ns": ns(ep.start_s),
                        "end_ns": ns(ep.end_s), "recovered_ns": ns(ep.recovered_s),
                        "target": ep.target, "unit": spec(ep.signal).unit})
        for b in ps.bouts:
            out.append({"type": "activity", "episode": False, **who, "signal": "heart_rate",
                        "start_ns": ns(b.start_s), "end_ns": ns(b.end_s), "hr_rise": b.hr_rise,
                        "cadence_per_min": b.cadence_per_min})
        if ps.gap is not None:
            out.append({"type": "gap", **who, "start_ns": ns(ps.gap.start_s), "end_ns": ns(ps.gap.end_s)})
        return out
