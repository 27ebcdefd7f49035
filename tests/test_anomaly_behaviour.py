"""Hand-built series whose right answer is known, checked against the anomaly detectors."""

from __future__ import annotations

import doctest
import importlib
import math
import random

import numpy as np
import pytest

from vitalstream.errors import ConfigError
from vitalstream.model import Quality, Reading, WindowAggregate, vital_stats
from vitalstream.operators.anomaly import (Context, DayNight, EwZScore, HalfSpaceTreesScore,
                                           PatientAnomalyLogic, RollingQuantileScore,
                                           build_detector, build_detectors)
from vitalstream.signals import Signal

S = 10**9
MIN = 60 * S
REST_DAY = Context("rest", "day")
FOREVER = 1e15  # half-life so long that every reading weighs the same: batch statistics


def baseline(det, n=100, mu=60.0, sigma=3.0, ctx=REST_DAY, t0=0):
    """n readings alternating mu +- sigma: equal-weight mean mu, variance sigma**2 exactly."""
    for i in range(n):
        det.process(mu + (sigma if i % 2 else -sigma), t0 + i * MIN, ctx)
    return t0 + n * MIN


def test_ewz_equals_batch_weighted_mean_and_variance_with_irregular_times():
    rnd = random.Random(7)
    half_life_s = 1800.0
    det = EwZScore(signal="heart_rate", half_life_s=half_life_s).build()
    t, times, values = 0, [], []
    for _ in range(300):
        t += rnd.choice([1, 30, 60, 60, 600, 3600]) * S
        v = rnd.gauss(70.0, 5.0)
        det.learn_one(v, t, REST_DAY)
        times.append(t)
        values.append(v)
    w = 2.0 ** (-(t - np.array(times)) / S / half_life_s)
    mean = np.sum(w * values) / np.sum(w)
    var = np.sum(w * (np.array(values) - mean) ** 2) / np.sum(w)
    got_mean, got_var = det.mean_var("rest/day")
    assert got_mean == pytest.approx(mean, rel=1e-9)
    assert got_var == pytest.approx(var, rel=1e-7)


def test_step_of_5_sigma_is_flagged_on_first_reading_and_stays_flagged():
    # Baseline mean 60, sd 3. A step to 75 gives z = (75 - 60) / 3 = 5 > 4 on the
    # first reading (N = 1); anomalous readings are not learned, so z stays 5.
    det = EwZScore(signal="heart_rate", half_life_s=FOREVER).build()
    t = baseline(det)
    scores = [det.process(75.0, t + i * MIN, REST_DAY) for i in range(10)]
    assert [s.is_anomaly for s in scores] == [True] * 10
    assert [s.score for s in scores] == pytest.approx([5.0] * 10)
    assert scores[0].explanation.expected_low == pytest.approx(60 - 4 * 3)
    assert scores[0].explanation.expected_high == pytest.approx(60 + 4 * 3)


def test_step_of_5_sigma_without_guard_is_absorbed_after_3_readings():
    # anomaly_weight=1 learns the step. With equal weights, after k step readings
    # (value 75) on 100 baseline readings (mean 60, var 9) the batch mixture gives
    #   mean_k = 60 + 15k/(100+k), var_k = (900 + 22500k/(100+k)) / (100+k)
    # and the next reading scores z_k = (1500/(100+k)) / sqrt(var_k):
    #   z_0 = 5.000, z_1 = 14.851/3.334 = 4.455, z_2 = 14.706/3.626 = 4.056,
    #   z_3 = 14.563/3.886 = 3.748 < 4  -> flagged for exactly N = 3 readings.
    det = EwZScore(signal="heart_rate", half_life_s=FOREVER, anomaly_weight=1.0).build()
    t = baseline(det)
    scores = [det.process(75.0, t + i * MIN, REST_DAY) for i in range(6)]
    assert [s.is_anomaly for s in scores] == [True, True, True, False, False, False]
    assert [s.score for s in scores[:4]] == pytest.approx([5.0, 4.455, 4.056, 3.748], abs=1e-3)


def test_slow_drift_within_horizon_is_not_flagged():
    # HR rises 10 /min over 24 h (r = 10/86400 per s) with +-3 noise, one reading a
    # minute, half-life 6 h. An EW mean lags a ramp by r * (mean age of its weights)
    # = r * dt * d / (1 - d) with d = 2**(-60/21600): 3.60 /min. So z <= (3.60 + 3) /
    # sd, and sd >= the floor 2 /min: z <= 3.3 < 4.
    det = EwZScore(signal="heart_rate", half_life_s=21600.0).build()
    rate = 10.0 / 86400.0
    worst = 0.0
    for i in range(24 * 60):
        t_s = 60 * i
        s = det.process(60.0 + rate * t_s + (3.0 if i % 2 else -3.0), t_s * S, REST_DAY)
        if not s.explanation.warmup:
            worst = max(worst, s.score)
            assert not s.is_anomaly
    assert worst < 3.3


def hr(patient, v, t_ns, quality=Quality.OK):
    return Reading(patient, "dev", Signal.HEART_RATE, v, "/min", t_ns, t_ns, quality=quality)


def steps(patient, v, t_ns):
    return Reading(patient, "dev", Signal.STEPS, v, "count", t_ns, t_ns)


def test_activity_hr_rise_not_flagged_with_steps_but_flagged_without():
    noon = 12 * 3600 * S  # 12:00 UTC: day under the default classifier
    cfgs = {"heart_rate": EwZScore("heart_rate", half_life_s=FOREVER)}
    with_steps = PatientAnomalyLogic("p", cfgs)
    without = PatientAnomalyLogic("p", cfgs)
    for logic in (with_steps, without):
        for i in range(100):
            logic.on_reading(hr("p", 60.0 + (3 if i % 2 else -3), noon + i * MIN))
    t = noon + 100 * MIN
    with_steps.on_reading(steps("p", 90.0, t))
    # Active HR baseline is new: scored against the AHA active prior 75-170,
    # mean 122.5, sd 23.75: z(110) = 12.5 / 23.75 = 0.53. At rest: z = 50 / 3 = 16.7.
    walking = with_steps.on_reading(hr("p", 110.0, t + 10 * S))
    resting = without.on_reading(hr("p", 110.0, t + 10 * S))
    assert (walking.is_anomaly, walking.explanation.context) == (False, "active/day")
    assert walking.score == pytest.approx(12.5 / 23.75)
    assert (resting.is_anomaly, resting.explanation.context) == (True, "rest/day")
    assert resting.score == pytest.approx(50.0 / 3.0)


def test_warmup_scores_against_population_prior_and_says_so():
    det = EwZScore(signal="heart_rate").build()
    s = det.process(150.0, 0, REST_DAY)
    # AHA resting 60-100 /min as a 95 % interval: mean 80, sd 10; z = 7; range 80 +- 40.
    assert s.explanation.warmup and "AHA" in s.explanation.source
    assert (s.score, s.is_anomaly) == (pytest.approx(7.0), True)
    assert (s.explanation.expected_low, s.explanation.expected_high) == (40.0, 120.0)
    assert s.explanation.baseline_n == 0
    for i in range(1, 30):  # warm-up learns even what the prior calls anomalous
        s = det.process(150.0, i * MIN, REST_DAY)
    assert s.explanation.warmup and s.explanation.baseline_n == 29
    s = det.process(150.0, 30 * MIN, REST_DAY)
    assert (s.explanation.warmup, s.explanation.source, s.is_anomaly) == (False, "personal", False)
    assert s.explanation.baseline_age_s == 29 * 60


def test_anomalous_burst_does_not_shift_the_baseline():
    det = EwZScore(signal="heart_rate", half_life_s=FOREVER).build()
    t = baseline(det)
    assert det.mean_var("rest/day") == pytest.approx((60.0, 9.0))
    burst = [det.process(100.0, t + i * MIN, REST_DAY) for i in range(5)]
    assert all(s.is_anomaly for s in burst)
    assert det.mean_var("rest/day") == pytest.approx((60.0, 9.0))
    det.process(63.0, t + 5 * MIN, REST_DAY)
    # 101 equal weights: mean 60 + 3/101; var = (100 * 9 + 100 * (3/101)**2 * ...)
    # as a batch: values are 50 x 57, 50 x 63, 1 x 63.
    vals = np.array([57.0] * 50 + [63.0] * 51)
    assert det.mean_var("rest/day") == pytest.approx((60 + 3 / 101, vals.var()))


def test_low_quality_and_implausible_readings_are_not_scored_nor_learned():
    logic = PatientAnomalyLogic("p", {"heart_rate": EwZScore("heart_rate")})
    logic.on_reading(hr("p", 70.0, 0))
    before = logic.snapshot()
    assert logic.on_reading(hr("p", 180.0, MIN, Quality.MOTION_ARTEFACT)) is None
    assert logic.on_reading(hr("p", 3.0, 2 * MIN)) is None  # below the catalogue's 20 /min
    assert logic.snapshot() == before


def test_day_night_default_is_utc_07_to_22_and_offset_moves_it():
    dn = DayNight()
    assert [dn(h * 3600 * S) for h in (6, 7, 21, 22)] == ["night", "day", "day", "night"]
    assert DayNight(utc_offset_s=-5 * 3600)(12 * 3600 * S) == "day"  # 07:00 local
    assert DayNight(utc_offset_s=-5 * 3600)(11 * 3600 * S) == "night"  # 06:00 local


def test_night_readings_use_their_own_hr_baseline():
    logic = PatientAnomalyLogic("p", {"heart_rate": EwZScore("heart_rate", warmup_n=5)})
    for i in range(10):
        logic.on_reading(hr("p", 80.0 + i % 2, 12 * 3600 * S + i * MIN))
    night = logic.on_reading(hr("p", 55.0, 2 * 86400 * S + 3 * 3600 * S))  # 03:00 UTC
    assert (night.explanation.context, night.explanation.warmup) == ("rest/night", True)
    assert not night.is_anomaly  # z = (55 - 80) / 10 = 2.5 against the prior


def test_quantile_median_matches_numpy_on_odd_window():
    det = RollingQuantileScore(signal="heart_rate", window_size=63).build()
    rnd = random.Random(3)
    vals = [rnd.gauss(70, 4) for _ in range(200)]
    for i, v in enumerate(vals):
        det.learn_one(v, i * MIN, REST_DAY)
    assert det.quantiles("rest/day")[1] == pytest.approx(float(np.median(vals[-63:])))


def test_hst_flags_multivariate_departure_after_warmup():
    det = HalfSpaceTreesScore(window_size=32, seed=1).build()
    rnd = random.Random(5)
    for i in range(96):
        det.process({"heart_rate": rnd.gauss(75, 3), "resp_rate": rnd.gauss(15, 1),
                     "spo2": rnd.gauss(97, 0.7)}, i * 5 * MIN, REST_DAY)
    bad = det.score_one({"heart_rate": 150.0, "resp_rate": 35.0, "spo2": 82.0}, 0, REST_DAY)
    good = det.score_one({"heart_rate": 75.0, "resp_rate": 15.0, "spo2": 97.0}, 0, REST_DAY)
    assert bad.is_anomaly and not good.is_anomaly and bad.score > good.score


def test_patient_logic_scores_window_aggregates_and_hst_vectors():
    cfgs = build_detectors({"heart_rate": {"kind": "ewz"},
                            "vitals": {"kind": "hst", "window_size": 4}})
    logic = PatientAnomalyLogic("p", cfgs, seed=9)
    out = []
    for w in range(6):
        a, b = w * 5 * MIN, (w + 1) * 5 * MIN
        for sig, v in ((Signal.HEART_RATE, 70.0), (Signal.RESP_RATE, 15.0), (Signal.SPO2, 97.0)):
            out += logic.on_aggregate(WindowAggregate("p", sig, a, b, vital_stats(5, v, v, v, v)))
    hr_scores = [s for s in out if s.signal == "heart_rate"]
    hst_scores = [s for s in out if s.signal == "vitals"]
    assert len(hr_scores) == 6 and len(hst_scores) == 6
    assert [s.explanation.warmup for s in hst_scores] == [True] * 4 + [False] * 2
    assert all(s.event_ns == (i + 1) * 5 * MIN for i, s in enumerate(hst_scores))


def test_patient_logic_resume_and_seed_are_deterministic():
    cfgs = build_detectors({"heart_rate": {"kind": "quantile"},
                            "vitals": {"kind": "hst", "window_size": 4}})
    rnd = random.Random(1)
    aggs = [WindowAggregate("p", sig, w * MIN, (w + 1) * MIN, vital_stats(3, v, v, v, v))
            for w in range(40) for sig, v in ((Signal.HEART_RATE, rnd.gauss(70, 3)),
                                              (Signal.RESP_RATE, rnd.gauss(15, 1)),
                                              (Signal.SPO2, rnd.gauss(97, 1)))]
    a = PatientAnomalyLogic("p", cfgs, seed=3)
    first = [s for g in aggs[:60] for s in a.on_aggregate(g)]
    b = PatientAnomalyLogic("p", cfgs, seed=3, resume_state=a.snapshot())
    rest_a = [s for g in aggs[60:] for s in a.on_aggregate(g)]
    rest_b = [s for g in aggs[60:] for s in b.on_aggregate(g)]
    assert first and rest_a == rest_b


def test_build_detector_rejects_bad_config():
    with pytest.raises(ConfigError):
        build_detector({"kind": "zscore"})
    with pytest.raises(ConfigError):
        build_detector({"kind": "ewz", "threshold": -1})
    with pytest.raises(ConfigError):
        build_detector({"kind": "ewz", "split": ["weather"]})
    assert build_detector({"kind": "quantile", "split": ["period"]}).split == ("period",)


@pytest.mark.parametrize("module", ["score", "priors", "sizing", "ewz", "quantile", "hst",
                                    "config", "patient"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"vitalstream.operators.anomaly.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_spo2_is_one_sided_low():
    det = EwZScore(signal="spo2", half_life_s=FOREVER).build()
    t = baseline(det, mu=96.0, sigma=1.0)  # mean 96, sd 1
    high = det.process(100.0, t, REST_DAY)  # +4 sd, but a high SpO2 is no concern
    low = det.process(91.0, t + MIN, REST_DAY)  # -5 sd
    assert (high.score, high.is_anomaly) == (0.0, False)
    # The 100 was normal, so it was learned: batch of 50 x 95, 50 x 97, 1 x 100.
    vals = np.array([95.0] * 50 + [97.0] * 50 + [100.0])
    assert low.is_anomaly
    assert low.score == pytest.approx((vals.mean() - 91.0) / vals.std())
    assert low.explanation.expected_high == math.inf and low.to_fields()["expected_high"] is None


def test_active_context_falls_back_to_rest_baseline_when_it_fits_better():
    # Rest baseline 60 +- 3 (warm); active baseline 100 +- 3 (warm). A reading of 61
    # a minute after a walk ends is "active" by context but fits rest: z = 1/3.
    det = EwZScore(signal="heart_rate", half_life_s=FOREVER).build()
    t = baseline(det)
    t = baseline(det, mu=100.0, ctx=Context("active", "day"), t0=t)
    s = det.process(61.0, t, Context("active", "day"))
    assert (s.explanation.context, s.is_anomaly) == ("rest/day", False)
    assert s.score == pytest.approx(1.0 / 3.0)
    assert det.mean_var("active/day") == pytest.approx((100.0, 9.0))  # learned into rest
