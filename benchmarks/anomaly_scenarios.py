"""Labelled data for benchmarks/anomaly_eval.py: synthetic patients with ground truth,
and real ICU numerics (shared/reference/vitals) with injected, labelled episodes.

Every generator is seeded and returns its injection parameters so a run can be
reproduced and reported.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vitalstream.model import Quality, Reading
from vitalstream.signals import Signal

S = 10**9
MIN = 60 * S
DAY0 = 1_704_067_200 * S  # 2024-01-01T00:00:00Z, an arbitrary UTC origin


@dataclass(frozen=True)
class Episode:
    patient: str
    signal: str
    kind: str
    start_ns: int
    end_ns: int


@dataclass
class PatientStream:
    patient: str
    readings: list[Reading]
    episodes: list[Episode] = field(default_factory=list)
    days: float = 0.0


def _r(p: str, sig: Signal, v: float, t: int, q: Quality = Quality.OK) -> Reading:
    return Reading(p, "dev", sig, float(v), "", t, t, "synthetic", q)


def synthetic(n_patients: int = 12, days: int = 2, seed: int = 20240) -> tuple[list[PatientStream], dict]:
    """Wearable-like patients, HR/SpO2/RR/steps each minute, temperature every 10 min,
    systolic BP every 30 min; personal baselines, circadian HR, walks; one episode of
    each kind per patient at random times, plus artefacts that are not episodes."""
    rnd = random.Random(seed)
    kinds = ("tachycardia", "desaturation", "fever", "bp_rise")
    params = {"seed": seed, "patients": n_patients, "days": days,
              "tachycardia": "HR +35 /min for 30-60 min at rest",
              "desaturation": "SpO2 -6 % for 20-40 min",
              "fever": "temp +1.6 Cel, 30 min ramp, 4 h",
              "bp_rise": "SBP +45 mm[Hg] linear over 8 h, episode = last 4 h of the rise",
              "artefacts": "per day 6 HR spikes +80 for 2 readings flagged MOTION_ARTEFACT, "
                           "4 HR drops to 0-5 /min for 1-3 readings, 4 unflagged 1-reading "
                           "spikes HR +60"}
    out = []
    n_min = days * 1440
    for pi in range(n_patients):
        p = f"syn{pi:02d}"
        hr0, spo0, rr0 = rnd.uniform(55, 85), rnd.uniform(95, 98.5), rnd.uniform(12, 18)
        t0, sbp0 = rnd.uniform(36.3, 36.9), rnd.uniform(105, 135)
        walking = [False] * n_min
        for _ in range(4 * days):  # walks of 20-40 min in daytime
            d, start = rnd.randrange(days), rnd.randrange(8 * 60, 20 * 60)
            for m in range(d * 1440 + start, min(n_min, d * 1440 + start + rnd.randint(20, 40))):
                walking[m] = True
        add = defaultdict(float)  # (signal, minute) -> offset
        eps = []
        for kind in kinds:
            while True:  # an episode away from walks and the first 12 h (warm-up)
                m0 = rnd.randrange(720, n_min - 600)
                if not any(walking[m0 - 60:m0 + 120]):
                    break
            if kind == "tachycardia":
                dur = rnd.randint(30, 60)
                for m in range(m0, m0 + dur):
                    add[("heart_rate", m)] = 35.0
                eps.append(Episode(p, "heart_rate", kind, DAY0 + m0 * MIN, DAY0 + (m0 + dur) * MIN))
            elif kind == "desaturation":
                dur = rnd.randint(20, 40)
                for m in range(m0, m0 + dur):
                    add[("spo2", m)] = -6.0
                eps.append(Episode(p, "spo2", kind, DAY0 + m0 * MIN, DAY0 + (m0 + dur) * MIN))
            elif kind == "fever":
                for m in range(m0, m0 + 240):
                    add[("body_temp", m)] = 1.6 * min(1.0, (m - m0) / 30)
                eps.append(Episode(p, "body_temp", kind, DAY0 + m0 * MIN, DAY0 + (m0 + 240) * MIN))
            else:
                m0 = rnd.randrange(720, n_min - 480)
                for m in range(m0, min(n_min, m0 + 480)):
                    add[("bp_systolic", m)] = 45.0 * (m - m0) / 480
                eps.append(Episode(p, "bp_systolic", kind, DAY0 + (m0 + 240) * MIN,
                                   DAY0 + (m0 + 480) * MIN))
        spikes = {rnd.randrange(n_min): "flagged" for _ in range(6 * days)}
        spikes.update({rnd.randrange(n_min): "drop" for _ in range(4 * days)})
        spikes.update({rnd.randrange(n_min): "spike" for _ in range(4 * days)})
        art_left, art_kind = 0, ""
        rs: list[Reading] = []
        for m in range(n_min):
            t = DAY0 + m * MIN
            hour = (m % 1440) / 60.0
            circ = 5.0 * math.cos(2 * math.pi * (hour - 15.0) / 24.0)  # HR peaks mid-afternoon
            walk = walking[m]
            rs.append(_r(p, Signal.STEPS, rnd.randint(60, 110) if walk else 0, t))
            hr = hr0 + circ + (rnd.uniform(20, 30) if walk else 0.0) + rnd.gauss(0, 3) \
                + add[("heart_rate", m)]
            q = Quality.OK
            if m in spikes:
                art_kind, art_left = spikes[m], {"flagged": 2, "drop": rnd.randint(1, 3),
                                                 "spike": 1}[spikes[m]]
            if art_left > 0:
                art_left -= 1
                if art_kind == "flagged":
                    hr, q = hr + 80.0, Quality.MOTION_ARTEFACT
                elif art_kind == "drop":
                    hr = rnd.uniform(0.0, 5.0)
                else:
                    hr = hr + 60.0
            rs.append(_r(p, Signal.HEART_RATE, round(hr), t, q))
            rs.append(_r(p, Signal.SPO2, min(100.0, round(spo0 + rnd.gauss(0, 0.8)
                                                          + add[("spo2", m)])), t))
            rs.append(_r(p, Signal.RESP_RATE, round(rr0 + rnd.gauss(0, 1.2) + (6 if walk else 0)), t))
            if m % 10 == 0:
                rs.append(_r(p, Signal.BODY_TEMP, round(t0 + rnd.gauss(0, 0.1)
                                                        + add[("body_temp", m)], 1), t))
            if m % 30 == 0:
                rs.append(_r(p, Signal.BP_SYSTOLIC, round(sbp0 + rnd.gauss(0, 5)
                                                          + add[("bp_systolic", m)]), t))
        out.append(PatientStream(p, rs, eps, float(days)))
    return out, params


_MIMIC_COLS = {"hr_bpm": Signal.HEART_RATE, "spo2_pct": Signal.SPO2, "resp_rpm": Signal.RESP_RATE,
               "nbp_sys_mmhg": Signal.BP_SYSTOLIC}
# (signal, kind, offset, duration_min, start_min) injected into s00001 (32 h at 1/min)
MIMIC_INJECTIONS = [("heart_rate", "tachycardia", 30.0, 45, 300),
                    ("heart_rate", "tachycardia", 30.0, 45, 1300),
                    ("spo2", "desaturation", -7.0, 30, 800),
                    ("spo2", "desaturation", -7.0, 30, 1700),
                    ("resp_rate", "tachypnoea", 10.0, 30, 1050)]


def mimic(ref: Path) -> tuple[list[PatientStream], dict]:
    """s00001 (MIMIC-II numerics, 1/min) with the episodes of MIMIC_INJECTIONS added to
    the recorded values (zeros and empty cells, i.e. no reading, are left as they are)."""
    path = ref / "s00001-2896-10-10-00-31n.csv"
    start = DAY0 + (31 * 60 + 25) * S  # real time of day 00:31:25, surrogate date dropped
    offs = {(sig, m): off for sig, _, off, dur, m0 in MIMIC_INJECTIONS for m in range(m0, m0 + dur)}
    rs = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            m = int(row["time_s"]) // 60
            t = start + int(row["time_s"]) * S
            for col, sig in _MIMIC_COLS.items():
                if row[col] == "":
                    continue
                v = float(row[col])
                if v != 0.0:
                    v += offs.get((sig.value, m), 0.0)
                rs.append(Reading("s00001", "monitor", sig, v, "", t, t, "mimic"))
    eps = [Episode("s00001", sig, kind, start + m0 * MIN, start + (m0 + dur) * MIN)
           for sig, kind, _, dur, m0 in MIMIC_INJECTIONS]
    days = (rs[-1].event_ns - rs[0].event_ns) / (86400 * S)
    return [PatientStream("s00001", rs, eps, days)], {
        "record": path.name, "injections": [dict(zip(("signal", "kind", "offset", "minutes",
                                                       "start_min"), i)) for i in MIMIC_INJECTIONS]}


def challenge(ref: Path, n_records: int = 300, seed: int = 2012) -> tuple[list[PatientStream], dict]:
    """Challenge 2012 heart rate, temperature and resp rate (irregular, mostly hourly).
    Per record, seeded: a fever (temp +1.5 Cel for 6 h) and a HR rise (+30 /min for 4 h),
    each starting at a random time after hour 12 and not overlapping."""
    rows = defaultdict(list)
    keep = {"heart_rate": Signal.HEART_RATE, "body_temp": Signal.BODY_TEMP,
            "resp_rate": Signal.RESP_RATE}
    with open(ref / "challenge2012.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["signal"] in keep:
                rows[row["record"]].append((int(row["time_s"]), keep[row["signal"]],
                                            float(row["value"])))
    rnd = random.Random(seed)
    out = []
    for rec in sorted(rows, key=int)[:n_records]:
        data = rows[rec]
        last = max(t for t, _, _ in data)
        if last < 24 * 3600:
            continue
        f0 = rnd.randrange(12 * 3600, last - 6 * 3600, 60)
        h0 = rnd.randrange(12 * 3600, last - 4 * 3600, 60)
        if abs(f0 - h0) < 6 * 3600:
            h0 = None
        p = f"c{rec}"
        eps = [Episode(p, "body_temp", "fever", DAY0 + f0 * S, DAY0 + (f0 + 6 * 3600) * S)]
        if h0 is not None:
            eps.append(Episode(p, "heart_rate", "tachycardia", DAY0 + h0 * S,
                               DAY0 + (h0 + 4 * 3600) * S))
        rs = []
        for t, sig, v in data:
            if sig is Signal.BODY_TEMP and f0 <= t < f0 + 6 * 3600:
                v += 1.5
            if sig is Signal.HEART_RATE and h0 is not None and h0 <= t < h0 + 4 * 3600 and v > 0:
                v += 30.0
            rs.append(Reading(p, "icu", sig, v, "", DAY0 + t * S, DAY0 + t * S, "challenge2012"))
        # Labels with no reading inside cannot be detected by anyone: dropped.
        eps = [e for e in eps if any(r.signal.value == e.signal and e.start_ns <= r.event_ns
                                     < e.end_ns for r in rs)]
        out.append(PatientStream(p, rs, eps, last / 86400))
    return out, {"seed": seed, "records": len(out),
                 "fever": "body_temp +1.5 Cel for 6 h from a random minute >= 12 h",
                 "tachycardia": "heart_rate +30 /min for 4 h, not within 6 h of the fever"}


def simulator(n_patients: int = 24, hours: float = 3.0, seed: int = 31) -> tuple[list[PatientStream], dict]:
    """The project's own simulator (``vitalstream.simulators.Scenario``) with its ground
    truth: tachycardia, desaturation, fever, hypertensive crisis episodes; motion-artefact
    and drop-out patients and activity bouts that must not count as detections."""
    from vitalstream.simulators.scenario import Scenario

    profiles = (["tachycardia", "desaturation", "fever", "crisis", "healthy", "motion"] * n_patients)[:n_patients]
    sc = Scenario(patients=n_patients, duration_s=hours * 3600, seed=seed, codec="json",
                  profiles=profiles)
    by_patient: dict[str, list[Reading]] = {}
    for r in sc.valid_readings():
        q = Quality.MOTION_ARTEFACT if r.motion else Quality.OK
        by_patient.setdefault(r.patient, []).append(
            Reading(r.patient, r.device, Signal(r.signal), r.value, r.unit, r.event_ns, r.event_ns,
                    "simulator", q))
    episodes: dict[str, list[Episode]] = {}
    for g in sc.ground_truth():
        if g["type"] == "episode":
            kind = "bp_crisis" if g["kind"] == "crisis" else g["kind"]
            episodes.setdefault(g["patient"], []).append(
                Episode(g["patient"], g["signal"], kind, g["onset_ns"], g["recovered_ns"]))
    streams = [PatientStream(p, sorted(rs, key=lambda r: r.event_ns), episodes.get(p, []),
                             hours / 24) for p, rs in sorted(by_patient.items())]
    params = {"source": "vitalstream.simulators.Scenario", "seed": seed, "patients": n_patients,
              "hours": hours, "profiles": sorted(set(profiles)),
              "episode_window": "onset to recovered (ground truth)"}
    return streams, params
