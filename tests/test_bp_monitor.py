"""``BpMonitor``: blood pressure classified per patient from the mean of repeated readings.

Timelines are worked by hand against the guideline thresholds written out here (lowest
mean of each category, mm[Hg]; the class is the higher of the systolic and diastolic one):

  ACC/AHA 2017  elevated SBP 120 | stage-1 130 or DBP 80 | stage-2 140 or 90 | crisis > 180 or > 120
  China 2018    high-normal 120 or 80 | grade-1 140 or 90 | grade-2 160 or 100 | grade-3 180 or 110
  ESC/ESH 2018  normal 120 or 80 | high-normal 130 or 85 | grade-1 140 or 90 | grade-2 160 or 100
                | grade-3 180 or 110

Alerts (default): a rise into ACC/AHA stage-2, China grade-2, ESC/ESH grade-2, or above.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from vitalstream.model import Quality, Reading
from vitalstream.operators.bp_monitor import BpAlert, BpContext, BpMonitor, BpResult, count_occasions
from vitalstream.operators.check import CHECKS, Case
from vitalstream.operators.contract import drive
from vitalstream.signals import Signal

NS = 1_000_000_000
MIN = 60 * NS
HOUR = 3600 * NS
DAY = 86400 * NS
T0 = 1_790_000_000 * NS  # an arbitrary epoch time: nothing depends on the wall clock
P = "p1"


def sys_(t: int, v: float, device: str = "cuff", **kw) -> Reading:
    return Reading(P, device, Signal.BP_SYSTOLIC, v, "mm[Hg]", T0 + t, T0 + t, **kw)


def dia(t: int, v: float, device: str = "cuff", **kw) -> Reading:
    return Reading(P, device, Signal.BP_DIASTOLIC, v, "mm[Hg]", T0 + t, T0 + t, **kw)


def cuff(t: int, sbp: float, dbp: float, device: str = "cuff") -> list[Reading]:
    return [sys_(t, sbp, device), dia(t, dbp, device)]


def ctx(t: int, guideline: str) -> BpContext:
    return BpContext(P, T0 + t, guideline)


def steps(config: BpMonitor, items: list) -> list[list]:
    """The outputs of each item in turn."""
    logic = config.build(key=P)
    return [logic.on_item(x)[0] for x in items]


def summary(out: list) -> list[tuple]:
    """Outputs as (kind, guideline, category, ...) for comparing with a hand-worked list."""
    got = []
    for x in out:
        if isinstance(x, BpAlert):
            got.append(("alert", x.guideline, x.category, x.previous))
        elif x.bp is None:
            got.append(("result", None, None, x.occasions))
        else:
            got.append(("result", x.bp.guideline, x.bp.category, x.occasions))
    return got


# -- classification from the mean --

def test_two_occasions_142_85_and_138_83_mean_140_84() -> None:
    items = cuff(0, 142, 85) + cuff(DAY, 138, 83)
    # mean 140/84: ACC/AHA SBP 140 -> stage-2 (alert); ESC/ESH and China SBP 140 -> grade-1
    acc = drive(BpMonitor().build(key=P), items)
    assert summary(acc) == [("alert", "acc-aha-2017", "stage-2", None),
                            ("result", "acc-aha-2017", "stage-2", 2)]
    a, r = acc
    assert (a.sbp_mean, a.dbp_mean, a.event_ns, a.patient) == (140.0, 84.0, T0 + DAY, P)
    assert (r.bp.sbp_mean, r.bp.dbp_mean, r.bp.n_readings, r.event_ns) == (140.0, 84.0, 2, T0 + DAY)
    assert summary(drive(BpMonitor("esc-esh-2018").build(key=P), items)) == [
        ("result", "esc-esh-2018", "grade-1", 2)]
    assert summary(drive(BpMonitor("china-2018").build(key=P), items)) == [
        ("result", "china-2018", "grade-1", 2)]


def test_a_single_reading_never_classifies() -> None:
    # 200/125 would be a crisis on its own: one measurement is a screening value, not a class
    assert drive(BpMonitor().build(key=P), cuff(0, 200, 125)) == []
    # even when one measurement is all the config asks for in count, two occasions need two
    assert drive(BpMonitor(min_readings=1).build(key=P), cuff(0, 200, 125)) == []


def test_two_readings_on_one_occasion_wait_for_a_second_occasion() -> None:
    # 150/95 and 146/93 five minutes apart: one occasion (gap 1 h) -> nothing
    # 130/80 the next day: mean (150+146+130)/3 = 142, (95+93+80)/3 = 89.33 -> stage-2
    out = steps(BpMonitor(), cuff(0, 150, 95) + cuff(5 * MIN, 146, 93) + cuff(DAY, 130, 80))
    assert [summary(o) for o in out[:5]] == [[]] * 5
    assert summary(out[5]) == [("alert", "acc-aha-2017", "stage-2", None),
                               ("result", "acc-aha-2017", "stage-2", 2)]
    assert out[5][1].bp.n_readings == 3 and math.isclose(out[5][1].bp.dbp_mean, 268 / 3)


def test_occasions_start_more_than_the_gap_after_the_previous_start() -> None:
    # measurements more than occasion_gap_s apart are different occasions; those within
    # the gap of an occasion's first measurement belong to it
    assert count_occasions([0, 30 * MIN, 60 * MIN], HOUR) == 1  # 60 min is not more than 1 h
    assert count_occasions([0, 30 * MIN, 61 * MIN], HOUR) == 2
    assert count_occasions([0, 50 * MIN, 100 * MIN, 150 * MIN], HOUR) == 2  # 0-50, 100-150
    assert count_occasions([], HOUR) == 0


def test_readings_older_than_the_window_drop_out_and_the_class_goes_down() -> None:
    out = steps(BpMonitor(), cuff(0, 170, 105) + cuff(DAY, 172, 104) + cuff(3 * DAY, 130, 80)
                + cuff(6 * DAY, 132, 82) + cuff(8 * DAY, 128, 78) + cuff(14 * DAY, 118, 76)
                + cuff(30 * DAY, 150, 95) + cuff(31 * DAY, 160, 100))
    last = [summary(out[i]) for i in range(1, len(out), 2)]  # after each measurement
    assert [summary(out[i]) for i in range(0, len(out), 2)] == [[]] * 8  # a systolic alone
    assert last == [
        [],  # day 0: one measurement
        # day 1: mean 171/104.5 -> stage-2
        [("alert", "acc-aha-2017", "stage-2", None), ("result", "acc-aha-2017", "stage-2", 2)],
        [],  # day 3: mean 157.3/96.3 -> still stage-2
        [],  # day 6: mean 151/92.75 -> still stage-2
        # day 8: window (day 1, day 8]: day 0 and day 1 (exactly 7 days old) are out;
        # mean of 130/80, 132/82, 128/78 = 130/80 -> stage-1: a fall, no alert
        [("result", "acc-aha-2017", "stage-1", 3)],
        # day 14: window (day 7, day 14]: 128/78 and 118/76 -> 123/77 -> elevated
        [("result", "acc-aha-2017", "elevated", 2)],
        # day 30: one measurement left: the class lapses (retracted)
        [("result", None, None, 1)],
        # day 31: 150/95 and 160/100 -> 155/97.5 -> stage-2 again, alerted afresh
        [("alert", "acc-aha-2017", "stage-2", None), ("result", "acc-aha-2017", "stage-2", 2)],
    ]


def test_state_keeps_only_the_window() -> None:
    logic = BpMonitor(window_s=2 * 86400).build(key=P)
    for d in range(10):
        for r in cuff(d * DAY, 120, 80):
            logic.on_item(r)
    # window (day 7, day 9]: day 8 and day 9
    assert sorted(k[2] - T0 for k in logic.snapshot().readings) == [8 * DAY] * 2 + [9 * DAY] * 2


def test_a_reading_older_than_the_window_on_arrival_is_ignored() -> None:
    logic = BpMonitor().build(key=P)
    for r in cuff(10 * DAY, 120, 75) + cuff(11 * DAY, 122, 77):
        logic.on_item(r)
    assert logic.snapshot().last.category == "elevated"  # 121/76
    for r in cuff(3 * DAY, 190, 115):  # 8 days before the newest (day 11): outside the window
        assert logic.on_item(r) == ([], False)
    assert logic.snapshot().last.n_readings == 2


# -- measurements: pairing --

def test_pairing_in_either_arrival_order() -> None:
    first = drive(BpMonitor().build(key=P), cuff(0, 142, 85) + cuff(DAY, 138, 83))
    swapped = [dia(0, 85), sys_(0, 142), dia(DAY, 83), sys_(DAY, 138)]
    assert drive(BpMonitor().build(key=P), swapped) == first
    assert summary(first)[-1] == ("result", "acc-aha-2017", "stage-2", 2)


def test_pairing_within_pair_within_s_of_each_other() -> None:
    # 90 s apart pair (limit 120 s); 150 s apart do not
    near = [sys_(0, 142), dia(90 * NS, 85), sys_(DAY, 138), dia(DAY - 120 * NS, 83)]
    assert summary(drive(BpMonitor().build(key=P), near))[-1] == (
        "result", "acc-aha-2017", "stage-2", 2)
    far = [sys_(0, 142), dia(150 * NS, 85), sys_(DAY, 138), dia(DAY, 83)]
    assert drive(BpMonitor().build(key=P), far) == []  # one measurement (day 1) only


def test_each_reading_pairs_once_nearest_first() -> None:
    # systolics at 0 and 100 s, one diastolic at 90 s: it pairs with the one at 100 s;
    # the systolic at 0 s stays unpaired. Next day a plain measurement.
    items = [sys_(0, 200), sys_(100 * NS, 140), dia(90 * NS, 90)] + cuff(DAY, 140, 90)
    (r,) = drive(BpMonitor(alert_from={"acc-aha-2017": None}).build(key=P), items)
    assert (r.bp.sbp_mean, r.bp.dbp_mean, r.bp.n_readings) == (140.0, 90.0, 2)


def test_an_unpaired_systolic_is_not_a_measurement() -> None:
    # systolics alone on three days, and a diastolic from another cuff: no measurement
    items = [sys_(0, 150), sys_(DAY, 152), sys_(2 * DAY, 149), dia(2 * DAY, 95, device="cuff-2")]
    assert drive(BpMonitor().build(key=P), items) == []
    # its partner arriving late (within the window) completes the measurement
    logic = BpMonitor().build(key=P)
    for r in items + cuff(3 * DAY, 150, 95):
        logic.on_item(r)
    out, _ = logic.on_item(dia(DAY, 95))
    # 152/95 (day 1) and 150/95 (day 3): 151/95 -> stage-2
    assert summary(out) == [("alert", "acc-aha-2017", "stage-2", None),
                            ("result", "acc-aha-2017", "stage-2", 2)]


# -- what is not a measurement --

def test_flagged_non_finite_and_other_signals_are_ignored() -> None:
    bad = [sys_(DAY, 190, quality=Quality.MOTION_ARTEFACT), dia(DAY, 110),
           sys_(DAY + MIN, 190, quality=Quality.HISTORICAL), dia(DAY + MIN, 110),
           sys_(DAY + 2 * MIN, 190, quality=Quality.SPECIAL_VALUE), dia(DAY + 2 * MIN, 110),
           sys_(DAY + 3 * MIN, math.nan), dia(DAY + 3 * MIN, 110),
           sys_(DAY + 4 * MIN, math.inf), dia(DAY + 4 * MIN, 110),
           Reading(P, "cuff", Signal.HEART_RATE, 190.0, "/min", T0 + DAY, T0 + DAY),
           Reading(P, "cuff", Signal.BP_MEAN, 150.0, "mm[Hg]", T0 + DAY, T0 + DAY)]
    assert drive(BpMonitor().build(key=P), cuff(0, 120, 70) + bad) == []
    # a clock-corrected reading is a measurement (the flag is about its time, not its value);
    # 0 is a value like any other, not "missing" (diastolic 0 is implausible, but not ignored here)
    ok = [sys_(DAY, 120, quality=Quality.CLOCK_CORRECTED), dia(DAY, 70)]
    assert summary(drive(BpMonitor().build(key=P), cuff(0, 120, 70) + ok)) == [
        ("result", "acc-aha-2017", "elevated", 2)]


def test_a_re_sent_reading_counts_once() -> None:
    cfg = BpMonitor(min_occasions=1)
    # 150/95, re-sent, then 120/75: mean 135/85 -> stage-1. Counting the copy would give
    # (300+120)/3 = 140, (190+75)/3 = 88.3 -> stage-2.
    out = drive(cfg.build(key=P), cuff(0, 150, 95) + cuff(0, 150, 95) + cuff(10 * MIN, 120, 75))
    assert summary(out) == [("result", "acc-aha-2017", "stage-1", 1)]
    assert out[0].bp.n_readings == 2 and out[0].bp.sbp_mean == 135.0
    # the same key with another value: the first stays, as in Dedup (what was stored)
    out = drive(cfg.build(key=P), cuff(0, 150, 95) + [sys_(0, 90)] + cuff(10 * MIN, 120, 75))
    assert out[0].bp.sbp_mean == 135.0


def test_a_class_does_not_depend_on_arrival_order() -> None:
    items = (cuff(0, 150, 95) + cuff(3 * MIN, 146, 90) + cuff(DAY, 128, 82)
             + [sys_(2 * DAY, 160), dia(2 * DAY + 30 * NS, 101)] + cuff(5 * DAY, 135, 85)
             + [ctx(DAY, "esc-esh-2018")])
    expected = None
    rng = random.Random(7)
    orders = [items, items[::-1]] + [rng.sample(items, len(items)) for _ in range(20)]
    for order in orders:
        logic = BpMonitor().build(key=P)
        for x in order:
            logic.on_item(x)
        last = logic.snapshot().last
        if expected is None:
            expected = last
        assert last == expected
    # (150+146+128+160+135)/5 = 143.8, (95+90+82+101+85)/5 = 90.6 -> ESC/ESH grade-1
    assert (expected.guideline, expected.category, expected.n_readings) == ("esc-esh-2018",
                                                                           "grade-1", 5)
    assert math.isclose(expected.sbp_mean, 143.8) and math.isclose(expected.dbp_mean, 90.6)


# -- guideline per patient --

def test_bp_context_switches_the_patients_guideline() -> None:
    out = steps(BpMonitor(), cuff(0, 146, 88) + cuff(DAY, 144, 88)
                + [ctx(DAY + HOUR, "esc-esh-2018")] + cuff(2 * DAY, 190, 112)
                + [ctx(2 * DAY + HOUR, "acc-aha-2017"), ctx(DAY, "china-2018")])
    assert [summary(o) for o in out] == [
        [], [], [],
        # mean 145/88 -> ACC/AHA stage-2
        [("alert", "acc-aha-2017", "stage-2", None), ("result", "acc-aha-2017", "stage-2", 2)],
        # ESC/ESH: SBP 145 grade-1, DBP 88 high-normal -> grade-1; the pressure did not rise
        [("result", "esc-esh-2018", "grade-1", 2)],
        [],
        # (146+144+190)/3 = 160 -> grade-2 (>= 160); (88+88+112)/3 = 96 grade-1: a rise
        [("alert", "esc-esh-2018", "grade-2", "grade-1"), ("result", "esc-esh-2018", "grade-2", 3)],
        # back to ACC/AHA: 160/96 -> stage-2; under ACC/AHA the same means were stage-2: no alert
        [("result", "acc-aha-2017", "stage-2", 3)],
        # an older context arriving late does not override the newer one
        [],
    ]


def test_bp_context_is_per_patient_and_validated() -> None:
    cfg = BpMonitor()
    a, b = cfg.build(key="a"), cfg.build(key="b")
    a.on_item(BpContext("a", T0, "china-2018"))
    assert (a.guideline(), b.guideline()) == ("china-2018", "acc-aha-2017")
    with pytest.raises(ValueError, match="acc-aha-2017, china-2018, esc-esh-2018"):
        BpContext(P, T0, "jnc-7")


# -- alerts --

def test_alert_only_on_a_rise_into_the_alert_category() -> None:
    out = steps(BpMonitor(window_s=2 * 86400),
                cuff(0, 150, 95) + cuff(DAY, 150, 95) + cuff(2 * DAY, 120, 70)
                + cuff(3 * DAY, 150, 95) + cuff(3 * DAY + 2 * HOUR, 160, 100)
                + cuff(3 * DAY + 4 * HOUR, 150, 90))
    assert [summary(out[i]) for i in range(1, len(out), 2)] == [
        [],
        # 150/95 on two occasions -> stage-2: a rise from no class
        [("alert", "acc-aha-2017", "stage-2", None), ("result", "acc-aha-2017", "stage-2", 2)],
        # window (day 0, day 2]: 150/95, 120/70 -> 135/82.5 -> stage-1: a fall, no alert
        [("result", "acc-aha-2017", "stage-1", 2)],
        # window (day 1, day 3]: 120/70, 150/95 -> 135/82.5: unchanged
        [],
        # + 160/100: (120+150+160)/3 = 143.3, (70+95+100)/3 = 88.3 -> stage-2: a rise
        [("alert", "acc-aha-2017", "stage-2", "stage-1"), ("result", "acc-aha-2017", "stage-2", 3)],
        # + 150/90: 145/88.75: staying in stage-2 -> nothing
        [],
    ]


def test_a_rise_within_the_alert_grades_alerts_again() -> None:
    # China: 165/95, 165/95 -> grade-2 (alert); + 215/125 on a third day:
    # (165+165+215)/3 = 181.7 -> grade-3 (>= 180): a further rise alerts again
    out = drive(BpMonitor("china-2018").build(key=P),
                cuff(0, 165, 95) + cuff(DAY, 165, 95) + cuff(2 * DAY, 215, 125))
    assert summary(out) == [("alert", "china-2018", "grade-2", None),
                            ("result", "china-2018", "grade-2", 2),
                            ("alert", "china-2018", "grade-3", "grade-2"),
                            ("result", "china-2018", "grade-3", 3)]


def test_alert_category_is_configurable_per_guideline() -> None:
    items = cuff(0, 134, 82) + cuff(DAY, 136, 84)  # 135/83 -> ACC/AHA stage-1, ESC high-normal
    out = drive(BpMonitor(alert_from={"acc-aha-2017": "stage-1"}).build(key=P), items)
    assert summary(out)[0] == ("alert", "acc-aha-2017", "stage-1", None)
    # no alerts at all for a guideline
    items = cuff(0, 170, 105) + cuff(DAY, 172, 104)
    out = drive(BpMonitor(alert_from={"acc-aha-2017": None}).build(key=P), items)
    assert summary(out) == [("result", "acc-aha-2017", "stage-2", 2)]
    # naming one guideline keeps the defaults of the others: ESC/ESH still from grade-2
    # 171/104.5: ESC/ESH SBP 160-179 and DBP 100-109 -> grade-2
    out = drive(BpMonitor("esc-esh-2018", alert_from={"acc-aha-2017": None}).build(key=P), items)
    assert summary(out) == [("alert", "esc-esh-2018", "grade-2", None),
                            ("result", "esc-esh-2018", "grade-2", 2)]


@pytest.mark.parametrize("kw,match", [
    (dict(guideline="jnc-7"), "acc-aha-2017, china-2018, esc-esh-2018"),
    (dict(window_s=0), "window_s"), (dict(window_s=math.inf), "window_s"),
    (dict(min_readings=0), "min_readings"), (dict(min_readings=True), "min_readings"),
    (dict(min_occasions=1.5), "min_occasions"), (dict(occasion_gap_s=-1), "occasion_gap_s"),
    (dict(pair_within_s=math.nan), "pair_within_s"),
    (dict(occasion_gap_s=7 * 86400), "shorter than window_s"),
    (dict(alert_from={"jnc-7": "stage-2"}), "alert_from"),
    (dict(alert_from={"esc-esh-2018": "stage-2"}), "grade-1"),
])
def test_config_is_validated(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        BpMonitor(**kw)


def test_one_occasion_is_allowed_when_configured() -> None:
    # min_occasions=1: an occasion gap as long as the window is then no contradiction
    cfg = BpMonitor(min_occasions=1, occasion_gap_s=7 * 86400)
    out = drive(cfg.build(key=P), cuff(0, 150, 95) + cuff(5 * MIN, 130, 85))  # 140/90
    assert summary(out) == [("alert", "acc-aha-2017", "stage-2", None),
                            ("result", "acc-aha-2017", "stage-2", 1)]


# -- the shared operator contract --

def monitor_stream(days: int = 24) -> tuple:
    """A cuff every 6 h for ``days`` days with a pressure rising and falling over about
    12 days (a sine), a week's gap (the class lapses), diastolic-first pairs, a stray
    systolic, a second cuff 60 s off, artefacts and guideline switches. Event order."""
    items: list = []
    for k in range(days * 4):
        if 10 * 4 <= k < 18 * 4:
            continue  # days 10-17: not measured
        t = k * 6 * HOUR
        w = math.sin(2 * math.pi * k / 48)
        sbp, dbp = round(138 + 30 * w, 1), round(86 + 16 * w, 1)
        pair = cuff(t, sbp, dbp, device="cuff" if k % 5 else "cuff-2")
        if k % 3 == 0:
            pair.reverse()  # the diastolic first
        if k % 7 == 0:
            pair[1] = dataclasses.replace(pair[1], event_ns=pair[1].event_ns + 60 * NS,
                                          recv_ns=pair[1].recv_ns + 60 * NS)
        items += pair
        if k % 11 == 0:
            items.append(sys_(t + 2 * HOUR, 210))  # no partner
        if k % 13 == 0:
            items.append(sys_(t + 3 * HOUR, 250, quality=Quality.MOTION_ARTEFACT))
    items += [ctx(5 * DAY + HOUR, "esc-esh-2018"), ctx(19 * DAY + HOUR, "china-2018"),
              ctx(21 * DAY + HOUR, "acc-aha-2017")]
    return tuple(sorted(items, key=lambda x: x.event_ns))


def hourly_cuff(n: int) -> list[Reading]:
    """n readings: a cuff pair every hour (200 days for n = 4000; the window holds 7)."""
    return [r for k in range(n // 2) for r in cuff(k * HOUR, 120 + k % 41, 70 + k % 23)]


# Follows arrival order (after the reorder buffer), like News2: no reorder_ns.
CASE = Case("bp-monitor", BpMonitor(), monitor_stream(), key=P, latency_ns=NS,
            absorbs_duplicates=True, long_items=hourly_cuff)


def test_the_contract_stream_exercises_the_operator() -> None:
    out = drive(CASE.config.build(key=P), CASE.items)
    kinds = {(type(x).__name__, x.bp is None if isinstance(x, BpResult) else None) for x in out}
    assert kinds == {("BpAlert", None), ("BpResult", False), ("BpResult", True)}
    assert {x.bp.guideline for x in out if isinstance(x, BpResult) and x.bp} == {
        "acc-aha-2017", "esc-esh-2018", "china-2018"}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_bp_monitor_passes_the_operator_contract(check) -> None:
    check(CASE)



# -- the incremental pairing equals pairing the whole window afresh --

from hypothesis import given, settings as hsettings, strategies as st_  # noqa: E402

from vitalstream.operators.bp_monitor import pair_keyed  # noqa: E402

_SIG = st_.sampled_from([Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC])
# times on a coarse grid of 40 s around a 120 s pairing limit, so readings chain, tie and
# fall just inside and outside the limit; jumps of a day make the window (2 days) slide
_STEP = st_.one_of(st_.integers(0, 8).map(lambda k: k * 40), st_.just(86_400))


@hsettings(max_examples=150, deadline=None)
@given(st_.lists(st_.tuples(_SIG, _STEP, st_.integers(-200, 200), st_.sampled_from(["c1", "c2"]),
                            st_.integers(60, 200)), min_size=1, max_size=60))
def test_incremental_pairing_equals_pairing_the_window(items):
    logic = BpMonitor(window_s=2 * 86_400, min_occasions=1, min_readings=1).build(key="p")
    t = 0
    for sig, step, jitter, device, value in items:
        t += step
        at = max(0, t + jitter)  # some arrive earlier in event time than the last one
        logic.on_item(Reading("p", device, sig, float(value), "mm[Hg]", at * 10**9, at * 10**9))
        assert logic.measurements() == pair_keyed(logic.st.readings, logic._pair_ns)
    # and a logic resumed from the snapshot rebuilds the same measurements
    again = BpMonitor(window_s=2 * 86_400, min_occasions=1, min_readings=1).build(
        logic.snapshot(), key="p")
    assert again.measurements() == logic.measurements()
