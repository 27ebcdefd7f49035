"""What the care stage costs per reading, against the clinical per-patient stage it runs beside.

    python3 benchmarks/care_stage.py [--patients 50] [--days 14]

The same seeded readings (home blood pressure twice a day, a wearable's heart rate each
minute, steps and glucose: a chronic-care patient's week, ``--patients`` of them) go
through (a) the clinical per-patient flow of the packaged rules (``assembly.patient_flow``:
windows, rules, NEWS2, BP class; no anomaly detectors, as for history), the baseline, and
(b) the care stage of the packaged policy (``assembly.care_flow``: profile tags, nudges with
their experiment, outcomes), each driven per patient with its timers, in one process.
Prints one JSON line: readings/s of each and the ratio care/clinical (above 1: the care
stage is cheaper per reading than the stage it sits beside). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from vitalstream.model import Reading
from vitalstream.operators.contract import drive
from vitalstream.signals import Signal
from vitalstream.stream import assembly
from vitalstream.stream.settings import Settings

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_790_000_000 * NS - (1_790_000_000 * NS) % DAY


def readings(patient: str, days: int, rng: np.random.Generator) -> list[Reading]:
    out = []
    for d in range(days):
        base = T0 + d * DAY
        for h in (7, 21):
            t = base + h * 3600 * NS
            out += [Reading(patient, "cuff", Signal.BP_SYSTOLIC, float(rng.normal(140, 8)), "mm[Hg]", t, t),
                    Reading(patient, "cuff", Signal.BP_DIASTOLIC, float(rng.normal(88, 5)), "mm[Hg]", t, t)]
        for m in range(0, 24 * 60, 1):
            t = base + m * 60 * NS
            out.append(Reading(patient, "watch", Signal.HEART_RATE, float(rng.normal(72, 6)), "/min", t, t))
            if m % 60 == 0:
                out.append(Reading(patient, "watch", Signal.STEPS, float(rng.integers(0, 600)), "{steps}", t, t))
            if m % 360 == 90:
                out.append(Reading(patient, "meter", Signal.GLUCOSE, float(rng.normal(150, 40)), "mg/dL", t, t))
    out.sort(key=lambda r: r.event_ns)
    return out


def _time(flow, streams: dict[str, list[Reading]]) -> tuple[float, int]:
    t0 = time.perf_counter()
    outputs = 0
    for p, rs in streams.items():
        outputs += len(drive(flow.build(key=p), rs))
    return time.perf_counter() - t0, outputs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    streams = {f"p{i:04d}": readings(f"p{i:04d}", a.days, rng) for i in range(a.patients)}
    n = sum(len(v) for v in streams.values())
    s = Settings()
    clinical = assembly.history_flow(s)
    care = assembly.care_flow(s)
    _time(clinical, dict(list(streams.items())[:2]))  # warm imports and caches
    _time(care, dict(list(streams.items())[:2]))
    t_clin, out_clin = _time(clinical, streams)
    t_care, out_care = _time(care, streams)
    print(json.dumps({
        "workload": {"patients": a.patients, "days": a.days, "readings": n, "seed": a.seed},
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "clinical": {"seconds": round(t_clin, 3), "readings_per_s": round(n / t_clin), "outputs": out_clin},
        "care": {"seconds": round(t_care, 3), "readings_per_s": round(n / t_care), "outputs": out_care},
        "ratio": {"care_vs_clinical_readings_per_s": round(t_clin / t_care, 3)},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
