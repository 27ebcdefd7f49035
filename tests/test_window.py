"""Event-time tumbling windows: aggregates, boundaries, lateness, silent patients, resume."""

from __future__ import annotations

import dataclasses

import calendar
import csv
import json
import pickle

import numpy as np
import pytest

from vitalstream.model import Message, Quality, Reading, WindowAggregate, vital_stats
from vitalstream.operators.clock import FakeClock
from vitalstream.operators.normalise import Normaliser
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.check import Clocked
from vitalstream.operators.shard import PatientHost
from vitalstream.operators.window import TumblingWindow
from vitalstream.signals import Signal
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.reference import run_reference

NS = 1_000_000_000
T0 = 1795600800 * NS  # 2026-11-25T10:00:00Z, a multiple of 60 s
HR = Signal.HEART_RATE


def _r(t_ns: int, v: float, device: str = "d1", patient: str = "p1", signal=HR) -> Reading:
    return Reading(patient, device, signal, v, "/min", t_ns, t_ns)


def test_aggregates_by_hand_with_out_of_order_arrival():
    w = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=10 * NS).build(key="p1")
    # arrival order differs from event order; the last ns of the window belongs to it
    for t, v in [(10, 80.0), (60 * NS - 1, 90.0), (0, 60.0), (20 * NS, 70.0)]:
        assert w.add(_r(T0 + t, v), T0 + 60 * NS - 1)
    (agg,) = w.close_due(T0 + 70 * NS)
    # count 4, min 60, max 90, mean (80+90+60+70)/4 = 75, last = value at the greatest time = 90
    assert agg == WindowAggregate("p1", HR, T0, T0 + 60 * NS, vital_stats(4, 60.0, 90.0, 75.0, 90.0), "d1")


def test_event_exactly_at_end_belongs_to_next_window():
    cfg = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=0)
    assert cfg.window_start(T0 + 60 * NS) == T0 + 60 * NS
    assert cfg.window_start(T0 + 60 * NS - 1) == T0
    w = cfg.build(key="p1")
    w.add(_r(T0 + 5 * NS, 70.0), T0 + 5 * NS)
    w.add(_r(T0 + 60 * NS, 99.0), T0 + 60 * NS)
    out = w.close_due(T0 + 60 * NS)
    assert [(a.start_ns, a.count, a.max) for a in out] == [(T0, 1, 70.0)]
    out = w.close_due(T0 + 120 * NS)
    assert [(a.start_ns, a.end_ns, a.count, a.last) for a in out] == [
        (T0 + 60 * NS, T0 + 120 * NS, 1, 99.0)]


def test_window_offset():
    cfg = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=0, offset_ns=15 * NS)
    assert cfg.window_start(T0 + 14 * NS) == T0 - 45 * NS
    assert cfg.window_start(T0 + 15 * NS) == T0 + 15 * NS


def test_allowed_lateness_accept_just_before_reject_at_close():
    cfg = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=10 * NS)
    w = cfg.build(key="p1")
    close = T0 + 70 * NS
    assert w.add(_r(T0 + 1 * NS, 70.0), T0 + 65 * NS)
    assert w.add(_r(T0 + 2 * NS, 80.0), close - 1) is True      # just in time
    assert w.close_due(close - 1) == []
    assert w.add(_r(T0 + 3 * NS, 999.0), close) is False        # at the close: late
    (agg,) = w.close_due(close)
    assert (agg.count, agg.mean, agg.max) == (2, 75.0, 80.0)
    assert w.add(_r(T0 + 4 * NS, 1.0), close + NS) is False     # after: late
    assert len(w) == 0  # a late reading does not reopen the window


def test_devices_and_signals_aggregate_separately_and_repeated_time_counts_once():
    w = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=0).build(key="p1")
    w.add(_r(T0 + NS, 70.0, device="d1"), T0 + NS)
    w.add(_r(T0 + NS, 70.0, device="d1"), T0 + NS)   # same reading by another path
    w.add(_r(T0 + NS, 50.0, device="d2"), T0 + NS)
    w.add(_r(T0 + NS, 97.0, signal=Signal.SPO2), T0 + NS)
    out = w.close_due(T0 + 60 * NS)
    assert sorted((a.signal.value, a.device, a.count, a.mean) for a in out) == [
        ("heart_rate", "d1", 1, 70.0), ("heart_rate", "d2", 1, 50.0), ("spo2", "d1", 1, 97.0)]


def test_low_quality_readings_stay_out_of_aggregates_and_are_not_late():
    w = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=0).build(key="p1")
    flagged = Reading("p1", "d1", HR, 180.0, "/min", T0 + 2 * NS, 0, "json",
                      Quality.MOTION_ARTEFACT)
    assert w.add(_r(T0 + NS, 70.0), T0 + NS)
    assert w.add(flagged, T0 + 2 * NS) is True
    (agg,) = w.close_due(T0 + 60 * NS)
    assert (agg.count, agg.max, agg.last) == (1, 70.0, 70.0)


def test_silent_patient_window_closes_on_wall_clock():
    wall = FakeClock(5_000 * NS)
    flow = PatientFlow(window=TumblingWindow(60 * NS, 10 * NS))
    host = Clocked(PatientHost(flow).build(), wall)
    # received now: a reading's receive time is on the runtime's wall clock
    r = dataclasses.replace(_r(T0 + 30 * NS, 72.0), recv_ns=wall.now_ns())
    assert host.on_batch([r]) == []
    # event clock at T0+30 s; the window [T0, T0+60) closes at event time T0+70 s,
    # i.e. 40 s of wall time later if nothing else arrives
    assert host.notify_at() == 5_040 * NS
    wall.advance(40 * NS - 1)
    assert host.on_notify() == []
    wall.advance(1)
    out = host.on_notify()
    assert [(a.patient, a.start_ns, a.count, a.last) for a in out] == [("p1", T0, 1, 72.0)]
    # nothing left but the eviction of the silent patient, 24 h after its reading arrived
    assert host.open_windows == 0 and host.notify_at() == 5_000 * NS + 86_400 * NS


def test_silent_patient_does_not_hold_back_other_patients():
    wall = FakeClock(0)
    host = Clocked(PatientHost(PatientFlow(window=TumblingWindow(60 * NS, 10 * NS))).build(), wall)

    def now(r):  # received now: receive times are on the runtime's wall clock
        return dataclasses.replace(r, recv_ns=wall.now_ns())

    host.on_batch([now(_r(T0, 70.0, patient="quiet")), now(_r(T0, 80.0, patient="busy"))])
    wall.advance(5 * NS)
    # busy keeps sending readings far ahead: its own window closes by event time
    out = host.on_batch([now(_r(T0 + 75 * NS, 81.0, patient="busy"))])
    assert [(a.patient, a.start_ns) for a in out] == [("busy", T0)]
    wall.advance(65 * NS)  # quiet: 70 s of wall time since its reading
    # busy's clock has run on too (T0+75 s + 65 s = T0+140 s >= T0+130 s): both close,
    # in timer order (busy due at wall 60 s, quiet at wall 70 s)
    assert [(a.patient, a.start_ns) for a in host.on_notify()] == [("busy", T0 + 60 * NS),
                                                                     ("quiet", T0)]


def test_window_snapshot_resume_identical():
    cfg = TumblingWindow(size_ns=60 * NS, allowed_lateness_ns=10 * NS)
    readings = [_r(T0 + k * 7 * NS, 60.0 + (k * 13) % 40) for k in range(30)]

    def run(split: int | None) -> list:
        w, out = cfg.build(key="p1"), []
        for i, r in enumerate(readings):
            if i == split:
                w = cfg.build(pickle.loads(pickle.dumps(w.snapshot())), key="p1")
            w.add(r, r.event_ns)
            out += w.close_due(r.event_ns)
        return out + w.close_due(0, all_=True)

    whole = run(None)
    assert len(whole) == 4  # 30 readings 7 s apart span 203 s: windows 0, 60, 120, 180
    for split in (1, 9, 17, 29):
        assert run(split) == whole


def _s00001_rows(reference_dir):
    path = reference_dir / "vitals" / "s00001-2896-10-10-00-31n.csv"
    with path.open() as f:
        return list(csv.DictReader(f))


def test_hr_windows_match_batch_over_shared_vitals_s00001_csv(reference_dir):
    """15-minute HR windows of the MIMIC-II record s00001 against a numpy batch.

    The record starts 2896-10-10T00:31:25.894 (README table), a surrogate year past
    the int64-nanosecond range (2262), so the real time of day is kept on
    2026-10-10 (taken as UTC). Empty
    cells are not samples; HR 0 (lead off) is outside the plausible 20..300 /min and
    is dead-lettered, so the batch leaves it out too.
    """
    rows = _s00001_rows(reference_dir)
    start_ns = calendar.timegm((2026, 10, 10, 0, 31, 25)) * NS + 894_000_000
    size = 15 * 60 * NS
    msgs = []
    for row in rows:
        t = start_ns + int(row["time_s"]) * NS
        if row["hr_bpm"] == "":
            continue
        body = {"patient": "s00001", "readings": [
            {"signal": "heart_rate", "value": float(row["hr_bpm"]), "unit": "/min", "t_ns": t}]}
        msgs.append(Message("vitalstream/mimic-s00001/json", json.dumps(body).encode(), t))
    res = run_reference(msgs, PatientFlow(window=TumblingWindow(size, 60 * NS)),
                        lambda: Ingest(Normaliser(max_clock_skew_ns=None)))

    t = np.array([start_ns + int(r["time_s"]) * NS for r in rows if r["hr_bpm"] != ""], dtype=np.int64)
    v = np.array([float(r["hr_bpm"]) for r in rows if r["hr_bpm"] != ""])
    keep = (v >= 20) & (v <= 300)
    t, v = t[keep], v[keep]
    starts = t - np.mod(t, size)
    expected = []
    for s in np.unique(starts):
        sel = v[starts == s]
        expected.append((int(s), len(sel), sel.min(), sel.max(), sel.mean(), sel[-1]))
    got = [(a.start_ns, a.count, a.min, a.max, a.mean, a.last) for a in res.aggregates]
    assert len(got) == len(expected) > 100
    for g, e in zip(got, expected):
        assert g[:4] == e[:4] and g[5] == e[5]
        assert g[4] == pytest.approx(e[4], rel=1e-12)
    assert len(res.dead_letters) == int((~keep).sum()) > 0
