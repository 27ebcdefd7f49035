"""The dynamic health profile: tags derived from the data, with their evidence and lifetime.

Expected tag times are computed here from the guideline's own definition over the
same readings (a batch scan of every prefix), not taken from the operator.
"""

from __future__ import annotations

import calendar
import csv
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from vitalstream.care import CareEvent, TagChange
from vitalstream.model import Reading
from vitalstream.operators.contract import drive
from vitalstream.operators.profile import (Hypertension, LowActivity, NocturnalDesaturation,
                                           NonAdherentMeasurement, PoorGlycaemicControl,
                                           ProfileRules, TachycardiaEpisodes)
from vitalstream.signals import Signal
from vitalstream.testing import FakeClock, shared_dir

NS = 1_000_000_000
DAY = 86_400 * NS
T0 = calendar.timegm((2026, 3, 2, 0, 0, 0)) * NS  # a Monday, UTC


def home_bp(patient: str, sbp: float, dbp: float, days: int, seed: int,
            p_measure: float = 0.6, start_ns: int = T0) -> list[Reading]:
    """A patient measuring at home: on a day (with probability ``p_measure``) two readings,
    morning and evening, around a true mean with day-to-day and reading noise."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(days):
        if rng.random() >= p_measure:
            continue
        day_s, day_d = rng.normal(0, 4), rng.normal(0, 3)
        for hour in (7, 21):
            t = start_ns + d * DAY + hour * 3600 * NS + int(rng.integers(0, 1800)) * NS
            s = round(sbp + day_s + rng.normal(0, 6))
            di = round(dbp + day_d + rng.normal(0, 4))
            out.append(Reading(patient, "cuff-1", Signal.BP_SYSTOLIC, float(s), "mm[Hg]", t, t))
            out.append(Reading(patient, "cuff-1", Signal.BP_DIASTOLIC, float(di), "mm[Hg]", t, t))
    return out


def first_guideline_time(readings: list[Reading], sbp_from: float, dbp_from: float,
                         min_days: int = 3, min_readings: int = 6, days_n: int = 28) -> int | None:
    """Batch: the first reading after which the readings of the last ``days_n`` UTC days
    number >= min_readings on >= min_days days, and their mean reaches the class."""
    pairs: dict[int, list[float]] = {}
    for r in readings:
        pairs.setdefault(r.event_ns, [None, None])[r.signal is Signal.BP_DIASTOLIC] = r.value
    done = []
    for t in sorted(pairs):
        s, d = pairs[t]
        done.append((t, s, d))
        today = t // DAY
        window = [(u, a, b) for u, a, b in done if today - days_n < u // DAY <= today]
        days = {u // DAY for u, _, _ in window}
        if len(window) >= min_readings and len(days) >= min_days:
            ms = sum(a for _, a, _ in window) / len(window)
            md = sum(b for _, _, b in window) / len(window)
            if ms >= sbp_from or md >= dbp_from:
                return t
    return None


def tags(out: list) -> list[tuple[str, str]]:
    """Sets and ends (updates carry a confidence that grew with the evidence)."""
    return [(c.tag, c.change) for c in out if type(c) is TagChange and c.change != "update"]


def test_simulated_hypertensive_patient_tagged_once_the_guideline_evidence_is_there_not_before():
    readings = home_bp("p-htn", 148, 92, days=21, seed=11)
    expected = first_guideline_time(readings, 130, 80)
    assert expected is not None
    logic = ProfileRules(rules=(Hypertension("acc-aha-2017"),)).build(key="p-htn")
    seen = []
    for r in readings:
        out = logic.on_item(r)[0]
        if r.event_ns < expected:
            assert out == [], f"tagged at {r.event_ns} before the evidence was complete"
        seen += [(c, r.event_ns) for c in out]
    assert [(c.tag, c.change) for c, _ in seen][:1] == [("hypertension", "set")]
    assert {c.change for c, _ in seen[1:]} <= {"update"}
    confidence = [c.confidence for c, _ in seen]
    assert confidence == sorted(confidence) and confidence[-1] == 1.0  # twice the evidence
    change, at = seen[0]
    assert at == expected and change.start_ns == expected
    assert change.guideline.startswith("Whelton PK")
    assert len({e.event_ns // DAY for e in change.evidence}) >= 3
    assert 0.5 <= change.confidence <= 1.0


@pytest.mark.parametrize("guideline,sbp_from,dbp_from", [("acc-aha-2017", 130, 80),
                                                         ("esc-esh-2018", 140, 90)])
def test_borderline_patient_follows_the_configured_guideline(guideline, sbp_from, dbp_from):
    readings = home_bp("p-b", 135, 84, days=28, seed=5, p_measure=0.9)
    expected = first_guideline_time(readings, sbp_from, dbp_from)
    out = drive(ProfileRules(rules=(Hypertension(guideline),)).build(key="p-b"), readings)
    got = [c.at_ns for c in out if c.change == "set"]
    assert got == ([expected] if expected is not None else [])
    # the ACC/AHA threshold is crossed, the ESC/ESH one (140/90) is not, at 135/84
    assert (expected is not None) == (guideline == "acc-aha-2017")


def test_normotensive_patient_never_tagged_over_three_months():
    out = drive(ProfileRules().build(key="p-n"), home_bp("p-n", 116, 72, days=90, seed=3))
    assert tags(out) == []


def test_tag_ends_when_four_weeks_of_evidence_say_below_and_has_a_lifetime():
    high = home_bp("p-t", 150, 95, days=14, seed=1, p_measure=1.0)
    low = home_bp("p-t", 112, 70, days=60, seed=2, p_measure=1.0, start_ns=T0 + 14 * DAY)
    out = drive(ProfileRules(rules=(Hypertension(),)).build(key="p-t"), high + low)
    changes = [c for c in out if c.change in ("set", "end")]
    assert [c.change for c in changes] == ["set", "end"]
    end = changes[1]
    # batch: the end is the first reading after which the 28-day mean is below 130/80
    pairs = {}
    for r in high + low:
        pairs.setdefault(r.event_ns, [0.0, 0.0])[r.signal is Signal.BP_DIASTOLIC] = r.value
    for t in sorted(pairs):
        if t <= changes[0].at_ns:
            continue
        w = [v for u, v in pairs.items() if t // DAY - 28 < u // DAY <= t // DAY and u <= t]
        if sum(a for a, _ in w) / len(w) < 130 and sum(b for _, b in w) / len(w) < 80:
            assert end.at_ns == t and end.end_ns == t and end.start_ns == changes[0].start_ns
            break
    else:
        pytest.fail("the batch scan never finds the mean below 130/80")


def test_manual_tag_is_never_overwritten_by_the_derived_view():
    p = "p-m"
    logic = ProfileRules(rules=(Hypertension(),)).build(key=p)
    out = logic.on_item(CareEvent(p, "manual-tag", T0 - DAY, "hypertension"))[0]
    assert [(c.tag, c.change, c.source) for c in out] == [("hypertension", "set", "manual")]
    # normal readings for a month: the data says "no hypertension", the manual tag stands
    out = []
    for r in home_bp(p, 115, 70, days=30, seed=4, p_measure=1.0):
        out += logic.on_item(r)[0]
    assert out == []
    assert logic.active() == {"hypertension": T0 - DAY}
    # cleared by hand: the data's own view (not hypertensive) has nothing to set
    out = logic.on_item(CareEvent(p, "clear-tag", T0 + 31 * DAY, "hypertension"))[0]
    assert [(c.change, c.source) for c in out] == [("end", "manual")]


def test_clearing_a_manual_tag_reveals_the_derived_one():
    p = "p-m2"
    logic = ProfileRules(rules=(Hypertension(),)).build(key=p)
    logic.on_item(CareEvent(p, "manual-tag", T0, "hypertension"))
    out = drive(logic, home_bp(p, 150, 95, days=10, seed=4, p_measure=1.0))
    assert tags(out) == []  # the derived set is silent while the manual tag stands
    out = logic.on_item(CareEvent(p, "clear-tag", T0 + 11 * DAY, "hypertension"))[0]
    assert [(c.change, c.source) for c in out] == [("end", "manual"), ("set", "derived")]


def s00001_hr() -> list[Reading]:
    path = shared_dir() / "reference" / "vitals" / "s00001-2896-10-10-00-31n.csv"
    out = []
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["hr_bpm"] in ("", "0"):
                continue
            t = T0 + int(row["time_s"]) * NS
            out.append(Reading("s00001", "monitor", Signal.HEART_RATE, float(row["hr_bpm"]), "/min", t, t))
    return out


def test_tachycardia_episodes_per_day_on_mimic_s00001_equal_a_batch_scan():
    """MIMIC-II s00001 (33.5 h at 1/min): episodes of HR > 100 /min lasting >= 10 min with no
    gap over 5 min, counted per UTC day by a plain scan, equal the profile's day counts."""
    hr = s00001_hr()
    rule = TachycardiaEpisodes(above_per_min=100, min_s=600, max_gap_s=300)
    logic = ProfileRules(rules=(rule,)).build(key="s00001")
    drive(logic, hr)
    expected: dict[int, int] = {}
    start = last = None
    counted = False
    for r in hr:
        if last is not None and r.event_ns - last > 300 * NS:
            start, counted = None, False
        last = r.event_ns
        if r.value > 100:
            start = r.event_ns if start is None else start
            if not counted and r.event_ns - start >= 600 * NS:
                counted = True
                d = datetime.fromtimestamp(start / NS, tz=timezone.utc).date().toordinal()
                expected[d] = expected.get(d, 0) + 1
        else:
            start, counted = None, False
    got = {d: day.tachy_episodes for d, day in logic.state.days.items() if day.tachy_episodes}
    assert got == expected


def test_tachycardia_tag_needs_episodes_on_three_days():
    p = "p-hr"
    readings = []
    for d in (0, 3, 6):
        for m in range(15):  # 15 min at 120 /min each morning
            t = T0 + d * DAY + 9 * 3600 * NS + m * 60 * NS
            readings.append(Reading(p, "w", Signal.HEART_RATE, 120.0, "/min", t, t))
    out = drive(ProfileRules(rules=(TachycardiaEpisodes(),)).build(key=p), readings)
    sets = [c for c in out if c.change == "set"]
    assert len(sets) == 1
    # set by the reading 10 min into the third episode (day 6, 09:10)
    assert sets[0].at_ns == T0 + 6 * DAY + 9 * 3600 * NS + 10 * 60 * NS


def test_nocturnal_desaturation_follows_the_patients_own_night():
    """SpO2 at 02:00-02:20 New York time is at night there (07:00 UTC is not night in UTC)."""
    p = "p-o2"
    ny = ZoneInfo("America/New_York")
    readings = []
    for d in range(4):
        night = datetime(2026, 3, 3 + d, 2, 0, tzinfo=ny)
        for m in range(0, 21, 2):
            t = int(night.timestamp()) * NS + m * 60 * NS
            readings.append(Reading(p, "ring", Signal.SPO2, 86.0, "%", t, t))
    rules = ProfileRules(rules=(NocturnalDesaturation(),))
    in_utc = drive(rules.build(key=p), readings)
    assert tags(in_utc) == []
    logic = rules.build(key=p)
    logic.on_item(CareEvent(p, "timezone", T0, "America/New_York"))
    out = drive(logic, readings)
    assert tags(out) == [("nocturnal-desaturation", "set")]
    # 20 min below 90 % each night (10 gaps of 2 min), by hand
    assert sorted(round(d.spo2_below_s) for d in logic.state.days.values() if d.spo2_night_n) == [1200] * 4
    assert out[0].at_ns == readings[2 * 11 + 3].event_ns  # the third night's 5th minute below


def test_poor_glycaemic_control_from_time_in_range():
    p = "p-g"
    # 14 days x 4 readings: 2 of 4 in 70-180 mg/dL -> TIR 50 % < 70 %
    vals = [110.0, 250.0, 140.0, 260.0]
    readings = [Reading(p, "meter", Signal.GLUCOSE, vals[i % 4], "mg/dL",
                        T0 + (i // 4) * DAY + (7 + 4 * (i % 4)) * 3600 * NS, 0) for i in range(56)]
    out = drive(ProfileRules(rules=(PoorGlycaemicControl(),)).build(key=p), readings)
    sets = [c for c in out if c.change == "set"]
    assert len(sets) == 1 and sets[0].at_ns == readings[39].event_ns  # the 40th reading
    assert "50%" in sets[0].rule


def test_low_activity_counts_complete_days_only():
    p = "p-s"
    readings = []
    for d in range(9):
        for h in (10, 16):
            t = T0 + d * DAY + h * 3600 * NS
            readings.append(Reading(p, "watch", Signal.STEPS, 1500.0, "{steps}", t, t))
    logic = ProfileRules(rules=(LowActivity(),)).build(key=p)
    out = drive(logic, readings)
    # 3000 steps/day; the 7th complete day is day 6, judged once day 7 has begun
    sets = [c for c in out if c.change == "set"]
    assert len(sets) == 1 and sets[0].at_ns == readings[14].event_ns


def test_non_adherent_measurement_for_a_silent_patient_in_a_programme():
    p = "p-a"
    logic = ProfileRules(rules=(Hypertension(), NonAdherentMeasurement())).build(key=p)
    drive(logic, home_bp(p, 150, 95, days=5, seed=9, p_measure=1.0))
    start = logic.active()["hypertension"]
    # silence: midnight timers re-run the rules; 14 days after the tag with <50 % measured
    out = []
    t = T0 + 5 * DAY
    while t < T0 + 40 * DAY:
        due = logic.notify_at()
        t = due
        out += logic.on_notify(t)[0]
    sets = [c for c in out if c.tag == "non-adherent-measurement" and c.change == "set"]
    assert len(sets) == 1
    assert sets[0].at_ns >= start + 14 * DAY
    # at that midnight: of the last 14 complete days, fewer than 7 had a reading
    day = sets[0].at_ns // DAY
    measured = {d for d in range(day - 14, day) if T0 // DAY <= d < T0 // DAY + 5}
    assert len(measured) < 7
