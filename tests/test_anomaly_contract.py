"""Contract every anomaly detector must meet (in the spirit of river's check_estimator):
determinism, snapshot/resume, bounded memory, no learning from NaN, finite scores."""

from __future__ import annotations

import math
import pickle
import random

import pytest

from vitalstream.operators.anomaly import (Context, EwZScore, HalfSpaceTreesScore,
                                           RollingQuantileScore, build_detector, deep_sizeof)

CONFIGS = {
    "ewz": EwZScore(signal="heart_rate", half_life_s=3600.0, warmup_n=20),
    "ewz_no_signal": EwZScore(signal=None, half_life_s=600.0, warmup_n=5),
    "quantile": RollingQuantileScore(signal="heart_rate", window_size=32, warmup_n=20),
    "hst": HalfSpaceTreesScore(window_size=32, seed=3),
    "from_dict": build_detector({"kind": "ewz", "signal": "spo2", "half_life_s": 21600}),
}
CONTEXTS = [Context(a, p) for a in ("rest", "active") for p in ("day", "night")]
MIN_NS = 60 * 10**9


def stream(cfg, n: int, seed: int = 1):
    """n (value, event_ns, ctx) with occasional outliers, one reading a minute."""
    rnd = random.Random(seed)
    for i in range(n):
        hr = rnd.gauss(75.0, 6.0) + (60.0 if rnd.random() < 0.01 else 0.0)
        if cfg.kind == "hst":
            value = {"heart_rate": hr, "resp_rate": rnd.gauss(15.0, 2.0),
                     "spo2": min(100.0, rnd.gauss(97.0, 1.0))}
        elif cfg.signal == "spo2":
            value = min(100.0, rnd.gauss(97.0, 1.0))
        else:
            value = hr
        yield value, i * MIN_NS, CONTEXTS[(i // 50) % 4]


def run(det, items):
    return [(s.score, s.is_anomaly, s.explanation) for s in
            (det.process(v, t, c) for v, t, c in items)]


def nan_like(cfg):
    return {"heart_rate": math.nan, "resp_rate": math.nan, "spo2": math.nan} \
        if cfg.kind == "hst" else math.nan


@pytest.fixture(params=sorted(CONFIGS))
def cfg(request):
    return CONFIGS[request.param]


def test_deterministic_given_seed(cfg):
    items = list(stream(cfg, 400))
    assert run(cfg.build(seed=11), items) == run(cfg.build(seed=11), items)


def test_snapshot_resume_gives_identical_scores(cfg):
    items = list(stream(cfg, 500))
    det = cfg.build(seed=5)
    run(det, items[:300])
    state = pickle.loads(pickle.dumps(det.snapshot()))  # what a recovery store holds
    resumed = cfg.build(state, seed=5)
    assert run(resumed, items[300:]) == run(det, items[300:])
    assert pickle.dumps(resumed.snapshot()) == pickle.dumps(det.snapshot())


def test_no_learning_from_nan_or_inf(cfg):
    det = cfg.build(seed=2)
    run(det, stream(cfg, 200))
    before = pickle.dumps(det.snapshot())
    for bad in (nan_like(cfg),) + ((math.inf, -math.inf) if cfg.kind != "hst" else ()):
        s = det.process(bad, 200 * MIN_NS, Context())
        det.learn_one(bad, 201 * MIN_NS, Context())
        assert s.is_anomaly is False and s.score == 0.0 and s.explanation.note == "not_finite"
    assert pickle.dumps(det.snapshot()) == before


@pytest.mark.parametrize("extreme", [0.0, -1e308, 1e308, 5e-324, -1.0, 1e6])
def test_scores_finite_for_extreme_inputs(cfg, extreme):
    det = cfg.build(seed=2)
    run(det, stream(cfg, 200))
    value = {"heart_rate": extreme, "resp_rate": extreme, "spo2": extreme} \
        if cfg.kind == "hst" else extreme
    for i in range(3):
        s = det.process(value, (200 + i) * MIN_NS, Context())
        assert math.isfinite(s.score) and s.score >= 0.0
    after = det.process(next(iter(stream(cfg, 1)))[0], 210 * MIN_NS, Context())
    assert math.isfinite(after.score)


def test_bounded_memory(cfg):
    # EW detectors: 100k updates; HST (about 30 us an update): 10k vs 20k.
    n1, n2 = (10_000, 20_000) if cfg.kind == "hst" else (10_000, 100_000)
    det = cfg.build(seed=4)
    items = stream(cfg, n2)
    for i, (v, t, c) in enumerate(items, 1):
        det.process(v, t, c)
        if i == n1:
            live1, snap1 = deep_sizeof(det, (cfg,)), deep_sizeof(det.snapshot())
    # The config is shared by every patient-signal built from it: not counted.
    live2, snap2 = deep_sizeof(det, (cfg,)), deep_sizeof(det.snapshot())
    # Counters grow from small to larger ints (a few bytes); structure must not grow.
    assert live2 <= live1 * 1.02 + 64
    assert snap2 <= snap1 * 1.02 + 64
    if cfg.kind == "ewz":
        assert live2 < 2048 and snap2 < 2048  # the default detector's budget
