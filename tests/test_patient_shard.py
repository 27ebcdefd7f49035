"""Per-patient stage (reorder buffer, late counts, EOF) and the shard host (timers, keys)."""

from __future__ import annotations

import dataclasses

import pickle


from vitalstream.model import Alert, Reading, WindowAggregate
from vitalstream.operators.clock import FakeClock
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.check import Clocked
from vitalstream.operators.shard import PatientHost, shard_of
from vitalstream.operators.window import TumblingWindow
from vitalstream.signals import Signal

NS = 1_000_000_000
T0 = 1795600800 * NS
HR_HIGH = {"name": "hr_high", "signal": "heart_rate", "op": ">", "threshold": 120, "clear": 110,
           "for_s": 60, "max_gap_s": 300}
FEVER = {"name": "fever", "signal": "body_temp", "op": ">=", "threshold": 38.0, "clear": 37.5,
         "n_of_m": [2, 3], "max_gap_s": 3600}


def _r(t_s: float, v: float, patient="p1", signal=Signal.HEART_RATE, device="d1") -> Reading:
    t = T0 + int(t_s * NS)
    return Reading(patient, device, signal, v, "", t, t)


def _flow(*rules, delay_s=2, size_s=60, late_s=10) -> PatientFlow:
    return PatientFlow(TumblingWindow(size_s * NS, late_s * NS), RuleSet.from_dicts(rules),
                       rule_delay_ns=delay_s * NS)


def test_shard_of_is_crc32_check_value():
    # CRC-32 (IEEE 802.3) of "123456789" is 0xCBF43926 = 3421780262
    assert shard_of("123456789", 1000) == "262"
    assert shard_of("123456789", 2) == "0"
    assert shard_of("123456789", 64) == str(3421780262 % 64)


def test_rules_see_event_order_within_rule_delay():
    wall = FakeClock(0)
    logic = Clocked(_flow(dict(HR_HIGH, for_s=1)).build(key="p1"), wall)
    out = []
    # arrival order 0, 1.5, 1.0, 3.0 (the 1.0 s reading is 0.5 s behind: within the 2 s delay)
    for t, v in [(0, 125), (1.5, 125), (1.0, 100), (3.0, 125)]:
        out += logic.on_item(_r(t, v))
    out += logic.on_eof()
    alerts = [a for a in out if type(a) is Alert]
    # in event order the 100 at 1.0 s resets the pending timer, which restarts at 1.5 s
    # and reaches for_s = 1 s at 3.0 s; in arrival order it would have fired at 1.5 s
    assert [(a.state, a.event_ns - T0, a.episode_start_ns - T0) for a in alerts] == [
        ("firing", 3 * NS, 1_500_000_000)]
    assert logic.state.late_rules == 0 and logic.late_window == 0


def test_reading_later_than_rule_delay_is_late_for_rules_not_for_window():
    wall = FakeClock(0)
    logic = Clocked(_flow(HR_HIGH).build(key="p1"), wall)
    logic.on_item(_r(10, 125))
    logic.on_item(_r(20, 70))    # clock at 20 s: readings up to 18 s released
    logic.on_item(_r(15, 125))   # 15 <= 18: too late to reorder for rules
    assert (logic.state.late_rules, logic.late_window) == (1, 0)
    out = logic.on_eof()
    (agg,) = [a for a in out if type(a) is WindowAggregate]
    assert (agg.count, agg.min, agg.max) == (3, 70.0, 125.0)


def test_eof_flushes_pending_and_open_windows():
    wall = FakeClock(0)
    host = Clocked(PatientHost(_flow(dict(HR_HIGH, for_s=0))).build(), wall)
    assert host.on_batch([_r(5, 130, "a"), _r(6, 70, "b")]) == []   # rule delay not yet passed
    out = host.on_eof()
    assert [(type(o).__name__, o.patient) for o in out] == [
        ("Alert", "a"), ("WindowAggregate", "a"), ("WindowAggregate", "b")]
    assert host.open_windows == 0 and host.notify_at() is None


def test_host_timers_release_rules_and_skip_superseded_deadlines():
    wall = FakeClock(1_000 * NS)
    host = Clocked(PatientHost(_flow(dict(HR_HIGH, for_s=0), delay_s=2)).build(), wall)
    # received now: a reading's receive time is on the runtime's wall clock
    host.on_batch([dataclasses.replace(_r(30, 130), recv_ns=wall.now_ns())])
    # earliest deadline: the pending reading at event 30 s + 2 s delay, 2 s of wall from now
    assert host.notify_at() == 1_002 * NS
    wall.advance(2 * NS - 1)
    assert host.on_notify() == []
    wall.advance(1)
    (alert,) = host.on_notify()
    assert (alert.state, alert.event_ns) == ("firing", T0 + 30 * NS)
    # next deadline is the window close at event 70 s: 38 s later on the wall
    assert host.notify_at() == 1_040 * NS
    wall.advance(38 * NS)
    (agg,) = host.on_notify()
    assert (agg.start_ns, agg.count) == (T0, 1)


def test_host_snapshot_resume_with_pickled_state():
    flow = _flow(HR_HIGH)
    seq = [_r(t, v, p) for t, v, p in [(0, 125, "a"), (0, 90, "b"), (30, 126, "a"), (45, 91, "b"),
                                         (61, 127, "a"), (70, 92, "b"), (90, 128, "a")]]

    def run(split):
        wall, out = FakeClock(0), []
        host = Clocked(PatientHost(flow).build(), wall)
        for i, r in enumerate(seq):
            if i == split:
                host = Clocked(PatientHost(flow).build(pickle.loads(pickle.dumps(host.snapshot()))), wall)
            wall.set(r.event_ns - T0)
            out += host.on_notify()
            out += host.on_batch([r])
        return out + host.on_eof()

    whole = run(None)
    assert [(type(o).__name__, o.patient) for o in whole if type(o) is Alert] == [("Alert", "a")]
    for split in range(1, len(seq)):
        assert run(split) == whole


def test_duplicate_reaching_stage_b_counts_once_in_windows():
    wall = FakeClock(0)
    host = Clocked(PatientHost(_flow()).build(), wall)
    host.on_batch([_r(1, 70)])
    host.on_batch([_r(1, 70)])  # the same reading through another worker's stage A
    (agg,) = host.on_eof()
    assert agg.count == 1


def test_duplicate_reaching_stage_b_does_not_fire_n_of_m_rule():
    """One 38.5 Cel reading is 1 of 3: fever (2 of 3) must not fire.

    With several workers, stage A's dedup is per worker, so a QoS 1 redelivery
    handed by the broker to another member of the shared subscription reaches the
    patient stage twice; windows drop it (``WindowState.seen``), rules must too
    (counted twice until 64d34ac).
    """
    wall = FakeClock(0)
    host = Clocked(PatientHost(_flow(FEVER)).build(), wall)
    out = host.on_batch([_r(100, 38.5, signal=Signal.BODY_TEMP)])
    out += host.on_batch([_r(100, 38.5, signal=Signal.BODY_TEMP)])
    out += host.on_eof()
    assert [o for o in out if type(o) is Alert] == []


def test_resume_between_readings_does_not_change_rule_lateness():
    """By hand, rule HR > 120 (for_s 0), rule delay 2 s, window 60 s + 10 s.

    wall 100 s: event 50 s, HR 70 (the clock lags the wall by 50 s; timer at wall 102 s)
    wall 101 s: event 101 s, HR 70 (clock jumps to 101 s, releases event 50 s; next
                deadline 103 s, but the 102 s timer stays scheduled)
    wall 102.5 s: event 100 s, HR 130.
    Without a wake-up in between, 100 s > released 99 s: the rules see it and fire.
    The uninterrupted host wakes at 102 s (stale timer), raising released to 100.5 s,
    so the reading is dropped as late; a host resumed before the last reading fires.
    """
    flow = _flow(dict(HR_HIGH, for_s=0))
    arrivals = [(100 * NS, _r(50, 70)), (101 * NS, _r(101, 70)), (102_500_000_000, _r(100, 130))]

    def run(split):
        wall, out = FakeClock(0), []
        host = Clocked(PatientHost(flow).build(), wall)
        for k, (a, r) in enumerate(arrivals):
            if k == split:
                host = Clocked(PatientHost(flow).build(pickle.loads(pickle.dumps(host.snapshot()))), wall)
            wall.set(T0 + a)
            out += host.on_notify()
            out += host.on_batch([r])
        return [o for o in out + host.on_eof() if type(o) is Alert], host.late_counts()

    assert run(2) == run(None)


def test_duplicate_after_window_close_but_before_rule_release_counts_once():
    # window 60 s, lateness 0, rule delay 20 s. 38.5 at 59 s; 37.0 at 61 s closes the
    # window [0, 60) while rules are released only up to 41 s; then the 59 s copy arrives.
    # Rules must see 38.5, 37.0: 1 hit of 2, no fever.
    flow = PatientFlow(TumblingWindow(60 * NS, 0), RuleSet.from_dicts([FEVER]),
                       rule_delay_ns=20 * NS)
    host = Clocked(PatientHost(flow).build(), FakeClock(0))
    temp = _r(59, 38.5, signal=Signal.BODY_TEMP)
    out = host.on_batch([temp]) + host.on_batch([_r(61, 37.0, signal=Signal.BODY_TEMP)])
    out += host.on_batch([temp]) + host.on_eof()
    assert [o for o in out if type(o) is Alert] == []


def test_silent_patient_is_evicted_windows_written_and_baseline_resumed_on_return():
    """A patient silent for evict_after leaves the host: its open window is written then,
    its state freed; its anomaly baseline waits dormant and seeds it when it returns."""
    from vitalstream.operators.anomaly.stage import AnomalyStage
    from vitalstream.stream.assembly import patient_flow
    from vitalstream.stream.settings import Settings

    hour = 3600 * NS
    flow = dataclasses.replace(patient_flow(Settings()), evict_after_ns=hour)
    assert isinstance(flow.anomaly, AnomalyStage)
    wall = FakeClock(T0)
    host = Clocked(PatientHost(flow, baseline_ttl_ns=24 * hour).build(), wall)
    out = []
    for i in range(90):  # 90 minutes of HR 70-79, then silence
        wall.set(T0 + i * 60 * NS)
        r = Reading("p1", "d1", Signal.HEART_RATE, 70.0 + i % 10, "/min", wall.now_ns(), wall.now_ns())
        out += host.on_notify() + host.on_batch([r])
    wall.set(T0 + 89 * 60 * NS + hour - 1)
    out += host.on_notify()
    assert "p1" in host.patients                      # not yet: one hour since the last reading
    wall.advance(1)
    evicted = host.on_notify()
    assert "p1" not in host.patients and host.state.evicted == 1
    # the last minute's window had closed on time; eviction writes nothing twice
    assert [a for a in evicted if type(a) is WindowAggregate] == []
    assert sum(1 for a in out + evicted if type(a) is WindowAggregate) == 90
    learned = host.state.dormant["p1"][1]
    # every one of the 90 readings was learned (the last released from the reorder buffer
    # at eviction) into the resting daytime baseline (T0 is 10:00 UTC)
    assert learned["detectors"]["detectors"]["heart_rate"]["baselines"]["rest/day"][0] == 90
    back = Reading("p1", "d1", Signal.HEART_RATE, 75.0, "/min", wall.now_ns(), wall.now_ns())
    host.on_batch([back])
    assert "p1" not in host.state.dormant
    assert host.patients["p1"].anomaly.snapshot()["detectors"] == learned["detectors"]


def test_eviction_writes_a_window_still_open():
    hour = 3600 * NS
    flow = PatientFlow(TumblingWindow(24 * hour, 0), evict_after_ns=hour)  # a day-long window
    wall = FakeClock(T0)
    host = Clocked(PatientHost(flow, baseline_ttl_ns=2 * hour).build(), wall)
    host.on_batch([_r(0, 70.0), _r(60, 80.0)])
    wall.set(T0 + 60 * NS + hour)
    (agg,) = host.on_notify()                          # written at eviction, all it had
    assert (agg.count, agg.mean, agg.start_ns) == (2, 75.0, T0 - T0 % (24 * hour))
    assert "p1" not in host.patients
