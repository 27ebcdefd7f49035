"""Simulator: determinism, physiology, episodes vs clinical thresholds, payload formats.

Thresholds and ranges below are typed from the clinical sources, not imported
from the simulator:
- tachycardia: HR > 120 /min sustained (the pipeline's adult default);
- desaturation: SpO2 < 90 %; severe: SpO2 < 85 % (BTS oxygen guideline 2017 bands);
- fever: body temperature >= 38.0 Cel;
- hypertensive crisis: SBP >= 180 or DBP >= 120 mm[Hg] (ACC/AHA 2017);
- resting adult ranges: HR 60-100, SpO2 95-100 %, RR 12-20 /min, temperature
  36.5-37.2 Cel, BP ~120/80; stage-2 hypertension >= 140/90 mm[Hg].
SenML resolution follows RFC 8428 section 4.6 (name = bn + n, time = bt + t).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest
from vitalstream.simulators.devices import FaultRates
from vitalstream.simulators.encode import WireReading, encode_native, encode_senml
from vitalstream.simulators.physiology import SamplingRates
from vitalstream.simulators.scenario import Scenario

HOUR_NS = 3_600_000_000_000
MMHG_IN_PA = 133.322387415  # BIPM SI brochure / NIST SP 811: 1 mmHg = 133.322387415 Pa
NO_EPISODE = {"healthy", "hypertensive", "dropout", "motion"}
# Every unit the signal catalogue accepts (UCUM, RFC 8428 section 12.1, tolerated aliases).
# Not "C" or "F": in UCUM and SenML those are the coulomb and the farad.
KNOWN_UNITS = {"/min", "1/min", "beat/min", "beats/min", "{beats}/min", "bpm", "Hz", "breaths/min",
               "{breaths}/min", "%", "/", "mm[Hg]", "mmHg", "Pa", "kPa", "hPa", "Cel", "degC",
               "[degF]", "degF", "K", "mg/dL", "mmol/L", "mol/L", "kg/L", "g/L", "count", "1",
               "{steps}", "steps", "{count}", "kg", "[lb_av]", "lb", "g"}


@pytest.fixture(scope="module")
def mixed() -> Scenario:
    return Scenario(patients=200, duration_s=600, seed=7, codec="mixed")


def _by_patient(sc: Scenario) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    acc: dict = defaultdict(list)
    for r in sc.valid_readings():
        acc[(r.patient, r.signal)].append((r.event_ns, r.value, r.motion))
    out = {}
    for k, rows in acc.items():
        rows.sort()
        out[k] = (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows]),
                  np.array([r[2] for r in rows], dtype=bool))
    return out


def _truth(sc: Scenario, kind: str) -> list[dict]:
    return [d for d in sc.ground_truth() if d["type"] == kind]


def test_same_seed_gives_identical_bytes_and_truth():
    a = Scenario(patients=30, duration_s=300, seed=11, codec="mixed")
    b = Scenario(patients=30, duration_s=300, seed=11, codec="mixed")
    assert a.messages() == b.messages()
    assert a.ground_truth() == b.ground_truth()
    c = Scenario(patients=30, duration_s=300, seed=12, codec="mixed")
    assert [m.payload for m in c.messages()] != [m.payload for m in a.messages()]


def test_profile_statistics_within_resting_adult_ranges(mixed):
    data = _by_patient(mixed)
    profiles = {d["patient"]: d["profile"] for d in _truth(mixed, "patient")}
    calm = [p for p, prof in profiles.items() if prof in ("healthy", "hypertensive", "dropout")]
    means = {s: np.array([data[(p, s)][1].mean() for p in calm])
             for s in ("heart_rate", "spo2", "resp_rate", "body_temp")}
    assert np.all((means["heart_rate"] > 55) & (means["heart_rate"] < 90))
    assert np.all((means["spo2"] >= 96) & (means["spo2"] <= 99))
    assert np.all((means["resp_rate"] >= 12) & (means["resp_rate"] <= 20))
    assert np.all((means["body_temp"] >= 36.5) & (means["body_temp"] <= 37.2))
    assert all(data[(p, "spo2")][1].max() <= 100.0 for p in calm)
    # A home cuff measures every 5 min, so compare pooled means per profile.
    for prof, (sbp_lo, sbp_hi, dbp_lo, dbp_hi) in {"hypertensive": (142, 158, 90, 100),  # ~150/95
                                                   "healthy": (112, 128, 72, 84)}.items():  # ~120/80
        who = [p for p in calm if profiles[p] == prof]
        sbp = np.concatenate([data[(p, "bp_systolic")][1] for p in who]).mean()
        dbp = np.concatenate([data[(p, "bp_diastolic")][1] for p in who]).mean()
        assert sbp_lo <= sbp <= sbp_hi and dbp_lo <= dbp <= dbp_hi, prof
    # HR noise: about 3 /min around the baseline, and correlated sample to sample.
    walkers = {d["patient"] for d in _truth(mixed, "activity")}
    still = [p for p in calm if p not in walkers]
    sds, lag1 = [], []
    for p in still:
        hr = data[(p, "heart_rate")][1]
        x = hr - hr.mean()
        sds.append(x.std())
        lag1.append(float(np.dot(x[:-1], x[1:]) / np.dot(x, x)))
    assert 2.0 <= float(np.median(sds)) <= 4.0
    assert float(np.median(lag1)) > 0.6  # white noise would give ~0


def test_circadian_night_lower_hr_and_temperature_than_afternoon():
    day0 = datetime(2026, 11, 25, tzinfo=UTC).timestamp()
    mix = {"healthy": 1.0}
    night = Scenario(patients=40, duration_s=600, seed=3, profiles=mix, start_ns=int(day0 * 1e9) + 4 * HOUR_NS)
    noon = Scenario(patients=40, duration_s=600, seed=3, profiles=mix, start_ns=int(day0 * 1e9) + 16 * HOUR_NS)
    hr = [np.mean([r.value for r in sc.valid_readings() if r.signal == "heart_rate"]) for sc in (night, noon)]
    temp = [np.mean([r.value for r in sc.valid_readings() if r.signal == "body_temp"]) for sc in (night, noon)]
    assert hr[0] < hr[1] - 4.0
    assert temp[0] < temp[1] - 0.3
    assert temp[0] >= 36.3 and temp[1] <= 37.3


def test_activity_bouts_raise_steps_and_hr_and_are_not_episodes(mixed):
    data = _by_patient(mixed)
    bouts = _truth(mixed, "activity")
    assert len(bouts) > 20
    rises = []
    for b in bouts:
        assert b["episode"] is False
        t, steps, _ = data[(b["patient"], "steps")]
        inside = (t >= b["start_ns"] + 60e9) & (t <= b["end_ns"])
        assert steps[inside].size == 0 or steps[inside].min() >= 50  # walking cadence ~100/min
        t, hr, motion = data[(b["patient"], "heart_rate")]
        ok = ~motion
        during = ok & (t >= b["start_ns"] + 60e9) & (t <= b["end_ns"])
        before = ok & (t < b["start_ns"]) & (t >= b["start_ns"] - 120e9)
        if during.sum() >= 5 and before.sum() >= 5:
            rises.append(hr[during].mean() - hr[before].mean())
        assert np.all(hr[ok] <= 120.0)
    assert np.median(rises) >= 10.0


def test_every_episode_crosses_its_clinical_threshold_for_its_duration(mixed):
    data = _by_patient(mixed)
    episodes = _truth(mixed, "episode")
    assert {e["rule"] for e in episodes} == {"tachycardia", "desaturation", "desaturation_severe",
                                            "fever_icu", "hypertensive_crisis"}
    # Long enough for the default rules: tachycardia for_s 300, desaturation for_s 120,
    # fever 2 of 3 readings 60 s apart, crisis one cuff reading 60 s apart.
    min_plateau_s = {"tachycardia": 300, "desaturation": 120, "fever": 120, "hypertensive_crisis": 60}
    for e in episodes:
        span_s = (e["end_ns"] - e["start_ns"]) / 1e9
        assert span_s > min_plateau_s[e["kind"]]
        t, v, motion = data[(e["patient"], e["signal"])]
        inside = (t >= e["start_ns"]) & (t <= e["end_ns"]) & ~motion
        interval_s = {"heart_rate": 5, "spo2": 5, "body_temp": 60, "bp_systolic": 60}[e["signal"]]
        assert inside.sum() >= int(span_s // interval_s) - 1
        vals = v[inside]
        if e["rule"] == "tachycardia":
            assert np.all(vals > 120.0)
        elif e["rule"] == "desaturation":
            assert np.all(vals < 90.0) and np.all(vals >= 85.0)  # moderate: not severe
        elif e["rule"] == "desaturation_severe":
            assert np.all(vals < 85.0) and "desaturation" in e["rules"]
        elif e["rule"] == "fever_icu":  # IDSA/SCCM 38.3 on one reading; also fever's 38.0
            assert np.all(vals >= 38.3) and "fever" in e["rules"]
        else:
            _, dbp, _ = data[(e["patient"], "bp_diastolic")]
            assert np.all((vals >= 180.0) | (dbp[inside] >= 120.0))
        # Outside the episode (ramps excluded) the patient is back within limits.
        outside = ((t < e["onset_ns"]) | (t > e["recovered_ns"])) & ~motion
        crossing = {"heart_rate": v > 120.0, "spo2": v < 90.0, "body_temp": v >= 38.0,
                    "bp_systolic": v >= 180.0}[e["signal"]]
        assert not np.any(crossing & outside)


def test_patients_without_episode_never_cross_any_threshold(mixed):
    data = _by_patient(mixed)
    profiles = {d["patient"]: d["profile"] for d in _truth(mixed, "patient")}
    calm = [p for p, prof in profiles.items() if prof in NO_EPISODE]
    assert len(calm) >= 100
    limits = {"heart_rate": lambda v: v > 120.0, "spo2": lambda v: v < 90.0,
              "body_temp": lambda v: v >= 38.0, "bp_systolic": lambda v: v >= 180.0,
              "bp_diastolic": lambda v: v >= 120.0}
    for p in calm:
        for signal, crosses in limits.items():
            if (p, signal) in data:
                _, v, motion = data[(p, signal)]
                assert not np.any(crosses(v[~motion])), (p, signal)


def test_nobody_crosses_the_other_default_adult_rules(mixed):
    # NEWS2 red bands (HR <= 40, RR >= 25 or <= 8, SBP <= 90, temp <= 35.0) and
    # ADA level 1 hypoglycaemia (< 70 mg/dL): no profile injects any of these.
    limits = {"heart_rate": lambda v: v <= 40.0, "resp_rate": lambda v: (v >= 25.0) | (v <= 8.0),
              "bp_systolic": lambda v: v <= 90.0, "body_temp": lambda v: v <= 35.0,
              "glucose": lambda v: v < 70.0}
    v = defaultdict(list)
    for r in mixed.valid_readings():
        if r.signal in limits and not r.motion:
            v[r.signal].append(r.value)
    for signal, crosses in limits.items():
        assert len(v[signal]) > 100 and not np.any(crosses(np.array(v[signal]))), signal


def test_motion_artefacts_are_flagged_in_json_and_held_back_in_senml(mixed):
    msgs = mixed.messages()
    flagged = [r for r in mixed.valid_readings() if r.motion]
    assert flagged and all(r.codec == "json" for r in flagged)
    assert any(r.signal == "heart_rate" and r.value >= 150 for r in flagged)
    for r in flagged:
        doc = json.loads(msgs[r.message].payload)
        hits = [x for x in doc["readings"] if x["signal"] == r.signal and x.get("flags") == ["motion"]]
        assert hits
    senml_motion = [d for d in _truth(mixed, "patient") if d["profile"] == "motion" and d["codec"] == "senml"]
    assert senml_motion and all(d["motion_flagged"] == 0 and d["motion_withheld"] > 0 for d in senml_motion)


def test_dropout_gaps_hold_no_readings(mixed):
    gaps = _truth(mixed, "gap")
    assert gaps
    per = defaultdict(list)
    for r in mixed.valid_readings():
        per[r.patient].append(r.event_ns)
    for g in gaps:
        t = np.array(per[g["patient"]])
        assert not np.any((t > g["start_ns"] + 1e6) & (t < g["end_ns"] - 1e6))
        assert (g["end_ns"] - g["start_ns"]) / 1e9 >= 0.15 * 600 - 1
        assert np.any(t < g["start_ns"]) and np.any(t > g["end_ns"])


def _reading_units(payload: bytes) -> list[tuple[str, object, str | None]]:
    doc = json.loads(payload)
    if isinstance(doc, dict):
        return [(x.get("signal"), x.get("value"), x.get("unit")) for x in doc.get("readings", [])]
    bu, out = None, []
    for rec in doc:
        bu = rec.get("bu", bu)
        out.append((rec.get("n"), rec.get("v"), rec.get("u", bu)))
    return out


def test_malformed_messages_are_malformed_per_their_class(mixed):
    msgs = mixed.messages()
    bad = _truth(mixed, "malformed")
    counts = Counter(d["reason"] for d in bad)
    assert set(counts) == {"bad_json", "unknown_unit", "implausible", "missing_field", "identity_mismatch"}
    valid_idx = {r.message for r in mixed.valid_readings()}
    plausible = {"heart_rate": (20, 300), "spo2": (40, 100), "body_temp": (25, 45), "bp_systolic": (40, 300)}
    for d in bad:
        m = msgs[d["index"]]
        assert m.topic == d["topic"] and d["index"] not in valid_idx
        topic_dev = m.topic.split("/")[1]
        if d["reason"] == "bad_json":
            with pytest.raises(ValueError):  # JSONDecodeError and UnicodeDecodeError both are
                json.loads(m.payload)
            continue
        doc = json.loads(m.payload)
        claimed = doc.get("device", topic_dev) if isinstance(doc, dict) else doc[0]["bn"].rstrip(":")
        if d["reason"] == "identity_mismatch":
            assert claimed != topic_dev
            continue
        assert claimed == topic_dev
        if d["reason"] == "missing_field":
            if isinstance(doc, list):
                assert all("v" not in rec for rec in doc)
            else:
                items = doc.get("readings")
                assert items is None or any(
                    "signal" not in x or "value" not in x or ("t" not in x and "t_ns" not in x) for x in items)
            continue
        [(signal, value, unit)] = _reading_units(m.payload)
        if d["reason"] == "unknown_unit":
            assert unit not in KNOWN_UNITS
        else:
            to_canonical = {"/": lambda v: v * 100.0, "Pa": lambda v: v / MMHG_IN_PA}.get(unit, lambda v: v)
            lo, hi = plausible[signal]
            assert not lo <= to_canonical(value) <= hi


def test_senml_pack_matches_rfc8428_example_by_hand():
    t0 = 1_764_064_800_250_000_000
    packed = json.loads(encode_senml("dev-1", [WireReading("heart_rate", 71.0, "beat/min", t0),
                                               WireReading("spo2", 0.97, "/", t0 + 1_000_000_000)]))
    assert packed == [{"bn": "dev-1:", "bt": 1764064800.25, "bu": "beat/min", "n": "heart_rate", "v": 71.0},
                      {"n": "spo2", "u": "/", "v": 0.97, "t": 1.0}]


def test_senml_resolution_gives_device_signal_time_and_value(mixed):
    msgs = mixed.messages()
    expected = defaultdict(list)
    for r in mixed.valid_readings():
        expected[r.message].append(r)
    checked = 0
    for idx, rs in expected.items():
        if rs[0].codec != "senml":
            continue
        topic_dev = msgs[idx].topic.split("/")[1]
        bn, bt, bu = "", 0.0, None
        resolved = []
        for rec in json.loads(msgs[idx].payload):
            bn, bt, bu = rec.get("bn", bn), rec.get("bt", bt), rec.get("bu", bu)
            resolved.append((bn + rec["n"], bt + rec.get("t", 0.0), rec.get("u", bu), rec["v"]))
        assert len(resolved) == len(rs)
        for (name, t_s, unit, v), r in zip(resolved, rs):
            assert name == f"{topic_dev}:{r.signal}" and r.patient == topic_dev
            assert t_s >= 2**28  # absolute time (RFC 8428 section 4.5.3)
            assert abs(t_s * 1e9 - r.event_ns) < 1000  # well within a microsecond
            mmhg = {"/": v * 100.0, "Pa": v / MMHG_IN_PA}.get(unit, v)
            assert mmhg == pytest.approx(r.value, rel=1e-12)
            assert unit == {"heart_rate": "beat/min", "spo2": "/", "resp_rate": "1/min", "body_temp": "Cel",
                            "bp_systolic": "Pa", "bp_diastolic": "Pa", "bp_mean": "Pa",
                            "glucose": "mg/dL", "steps": "count"}[r.signal]
            checked += 1
    assert checked > 10_000


def test_native_json_readings_decode_to_expected_values_and_times(mixed):
    msgs = mixed.messages()
    expected = defaultdict(list)
    for r in mixed.valid_readings():
        expected[r.message].append(r)
    styles = Counter()
    for idx, rs in expected.items():
        if rs[0].codec != "json":
            continue
        doc = json.loads(msgs[idx].payload)
        assert doc["v"] == 1 and doc["patient"] == rs[0].patient
        assert doc.get("device", msgs[idx].topic.split("/")[1]) == msgs[idx].topic.split("/")[1]
        assert len(doc["readings"]) == len(rs) <= 3
        for x, r in zip(doc["readings"], rs):
            if "t_ns" in x:
                styles["t_ns"] += 1
                ns = x["t_ns"]
            else:
                dt = datetime.fromisoformat(x["t"])  # Python >= 3.11 reads "Z"
                assert dt.tzinfo is not None
                styles["Z" if x["t"].endswith("Z") else "offset"] += 1
                ns = round(dt.timestamp() * 1e6) * 1000
            assert ns == r.event_ns
            value = {"[degF]": (x["value"] - 32) * 5 / 9, "mmol/L": x["value"] * 18.0156}.get(x["unit"], x["value"])
            assert value == pytest.approx(r.value, rel=1e-12)
    assert styles["t_ns"] and styles["Z"] and styles["offset"]


def test_delivery_faults_duplicates_late_and_reordered_are_counted_and_bounded(mixed):
    msgs = mixed.messages()
    counts = _truth(mixed, "counts")[0]
    seen = Counter((m.topic, m.payload) for m in msgs)
    assert sum(c - 1 for c in seen.values()) == counts["duplicates"] > 0
    readings = mixed.valid_readings()
    keys = {(r.device, r.signal, r.event_ns) for r in readings}
    assert len(keys) == len(readings)  # the dedup key is unique among valid readings
    newest, out_of_order = {}, 0
    last_stamp = defaultdict(int)
    for r in readings:
        last_stamp[r.message] = max(last_stamp[r.message], r.event_ns)
    for idx, m in enumerate(msgs):
        if idx not in last_stamp:
            continue
        dev = m.topic.split("/")[1]
        if last_stamp[idx] < newest.get(dev, 0):
            out_of_order += 1
        newest[dev] = max(newest.get(dev, 0), last_stamp[idx])
        # Sent no later than 20 s (late) + 0.5 s (radio) + 2 s clock offset after its stamp.
        assert m.publish_offset_s - (last_stamp[idx] - mixed.start_ns) / 1e9 <= 22.6
    assert out_of_order >= counts["reordered"] > 0 and counts["late"] > 0


def test_time_scale_compresses_publish_offsets_not_event_times():
    a = Scenario(patients=5, duration_s=120, seed=2)
    b = Scenario(patients=5, duration_s=120, seed=2, time_scale=60)
    assert [m.payload for m in a.messages()] == [m.payload for m in b.messages()]
    assert [m.publish_offset_s / 60 for m in a.messages()] == pytest.approx([m.publish_offset_s for m in b.messages()])
    assert b.messages()[-1].publish_offset_s < 3.0


def test_batching_and_sampling_rates_are_configurable():
    rates = SamplingRates(vitals_s=1.0, temp_s=None, bp_s=60.0, steps_s=None, glucose_s=None)
    sc = Scenario(patients=2, duration_s=60, seed=1, readings_per_message=1, rates=rates,
                  profiles=["healthy", "healthy"], codec="json", faults=FaultRates(malformed=0.0))
    per = Counter(r.signal for r in sc.valid_readings())
    assert per["heart_rate"] == 120 and per["bp_systolic"] == 2  # 60 s at 1 Hz; one cuff cycle each
    assert "body_temp" not in per and "steps" not in per
    assert all(len(json.loads(m.payload)["readings"]) == 1 for m in sc.messages()
               if json.loads(m.payload).get("readings"))
    one = json.loads(encode_native("dev-a", "p-a", [WireReading("heart_rate", 71.0, "/min", 1_764_064_800_250_000_000)]))
    assert one == {"v": 1, "device": "dev-a", "patient": "p-a", "readings": [
        {"signal": "heart_rate", "value": 71.0, "unit": "/min", "t": "2025-11-25T10:00:00.250Z"}]}


def test_shipped_default_rules_fire_exactly_the_ground_truth_episodes(mixed):
    # The pipeline's own rule engine and rules file, fed the readings in event-time
    # order: each injected episode fires its rules, nothing else fires.
    from importlib import resources

    import yaml
    from vitalstream.model import Quality, Reading
    from vitalstream.operators.rules import RuleLogic, RuleSet
    from vitalstream.signals import Signal

    text = resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text()
    rules = RuleSet.from_dicts(yaml.safe_load(text)["rules"]).rules
    per = defaultdict(list)
    for r in mixed.valid_readings():
        per[r.patient].append(r)
    fired = set()
    for patient, rs in per.items():
        logics = [RuleLogic(rule, patient) for rule in rules]
        for r in sorted(rs, key=lambda r: r.event_ns):
            reading = Reading(patient, r.device, Signal(r.signal), r.value, r.unit, r.event_ns, r.event_ns,
                              r.codec, Quality.MOTION_ARTEFACT if r.motion else Quality.OK)
            for logic in logics:
                fired.update((patient, a.rule) for a in logic.on_reading(reading) if a.state == "firing")
    expected = {(e["patient"], rule) for e in _truth(mixed, "episode") for rule in e["rules"]}
    assert len(expected) > 50
    assert fired == expected
