"""Experiment outcomes: hand-computed values, the stream equals the batch, and the report.

Expected values are worked by hand in the docstrings; the streaming operator is checked
against ``batch_outcomes`` (a separate implementation) over the same events in any
arrival order, duplicates included (hypothesis).
"""

from __future__ import annotations

import doctest
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from scipy import stats

import vitalstream.simulators.adherence
import vitalstream.stream.experiment_report
from vitalstream.care import Exposure
from vitalstream.model import Reading
from vitalstream.operators.check import arrivals
from vitalstream.operators.contract import drive
from vitalstream.operators.experiment.assign import Experiment
from vitalstream.operators.experiment.outcomes import (MeasuredWithin, OutcomeRecord,
                                                       OutcomeTracker, TimeInRange, TrendAfter,
                                                       batch_outcomes, summarise)
from vitalstream.signals import Signal
from vitalstream.simulators.adherence import AdherenceCohort, run_experiment
from vitalstream.stream.experiment_report import render_table, report

NS = 1_000_000_000
H = 3600 * NS
D = 86_400 * NS
T0 = 1_780_000_000 * NS  # 2026-05-28
METRICS = (MeasuredWithin(), TrendAfter(), TimeInRange())


def bp(p: str, t: int, v: float, dev: str = "cuff") -> Reading:
    return Reading(p, dev, Signal.BP_SYSTOLIC, v, "mm[Hg]", t, t)


def glu(p: str, t: int, v: float) -> Reading:
    return Reading(p, "meter", Signal.GLUCOSE, v, "mg/dL", t, t)


def _values(records) -> dict:
    return {(r.patient, r.metric): r.value for r in records}


def test_hand_worked_outcomes():
    """Exposure at T0. BP at T0 - 1 h (before: not counted), T0 + 25 h, + 2 d 1 h (132),
    + 4 d 1 h (128), + 31 d (after 30 d: not counted): measured within 24 h = 0 (first is
    at 25 h); trend over (day, value) = (25/24, 136), (49/24, 132), (97/24, 128): the
    slope is -8/3 ... worked: x = 25/24, 49/24, 97/24, mean 57/24; y mean 132;
    sum dx*dy = (-32/24)(4) + (-8/24)(0) + (40/24)(-4) = -288/24 = -12;
    sum dx^2 = (1024 + 64 + 1600)/576 = 2688/576 = 14/3; slope = -12 / (14/3) = -18/7.
    Glucose 60, 100, 180, 200 in the 14 days, 150 on day 15: in [70, 180]: 2 of 4 = 0.5."""
    e = Exposure("x", "sms", "p1", "s", T0)
    ev = [e, bp("p1", T0 - H, 150), bp("p1", T0 + 25 * H, 136), bp("p1", T0 + 2 * D + H, 132),
          bp("p1", T0 + 4 * D + H, 128), bp("p1", T0 + 31 * D, 100)]
    ev += [glu("p1", T0 + k * D + H, v) for k, v in enumerate((60, 100, 180, 200))]
    ev.append(glu("p1", T0 + 15 * D, 150))
    want = {("p1", METRICS[0].name): 0.0, ("p1", METRICS[1].name): -18 / 7,
            ("p1", METRICS[2].name): 0.5}
    assert _values(batch_outcomes(ev, METRICS)) == want
    # the stream in event order (it drops what comes later than its lateness allows)
    in_order = sorted(ev, key=_time)
    assert _values(drive(OutcomeTracker(METRICS).build(key="p1"), in_order)) == want


def test_edges_of_the_windows():
    """A reading exactly at exposure does not count, one exactly 24 h after does; a trend
    needs readings on two different days after exposure; no glucose: time in range None."""
    e = Exposure("x", "app", "p1", "s", T0)
    ev = [e, bp("p1", T0, 140), bp("p1", T0 + D, 150)]
    got = _values(batch_outcomes(ev, METRICS))
    assert got == {("p1", METRICS[0].name): 1.0, ("p1", METRICS[1].name): None,
                   ("p1", METRICS[2].name): None}
    assert _values(drive(OutcomeTracker(METRICS).build(key="p1"), ev)) == got
    only_at = [e, bp("p1", T0, 140)]
    assert _values(batch_outcomes(only_at, METRICS[:1])) == {("p1", METRICS[0].name): 0.0}


def test_window_closes_on_event_time_and_on_the_clock():
    """MeasuredWithin (24 h) closes once the watermark (newest time - 1 h lateness) passes
    T0 + 24 h: a reading at T0 + 25 h 1 s does it; a silent patient's closes on the clock
    (notify_at = end + lateness + 1 ns)."""
    logic = OutcomeTracker((MeasuredWithin(),), lateness_s=3600).build(key="p1")
    assert logic.on_item(Exposure("x", "sms", "p1", "s", T0))[0] == []
    assert logic.on_item(bp("p1", T0 + 2 * H, 140))[0] == []
    assert logic.on_item(bp("p1", T0 + 25 * H, 141))[0] == []  # watermark T0 + 24 h: not past
    out = logic.on_item(bp("p1", T0 + 25 * H + NS, 141))[0]
    assert [(r.value, r.closed_ns) for r in out] == [(1.0, T0 + D)]
    silent = OutcomeTracker((MeasuredWithin(),)).build(key="p2")
    silent.on_item(Exposure("x", "holdout", "p2", "s", T0))
    assert silent.notify_at() == T0 + D + H + 1
    assert silent.on_notify(T0 + D + H) == ([], False)
    out, discard = silent.on_notify(T0 + D + H + 1)
    assert [(r.variant, r.value) for r in out] == [("holdout", 0.0)] and discard
    # a late re-send of the exposure is dropped, not counted twice
    late = OutcomeTracker((MeasuredWithin(),)).build(key="p3")
    late.on_item(Exposure("x", "sms", "p3", "s", T0))
    assert len(late.on_item(bp("p3", T0 + 3 * D, 140))[0]) == 1
    assert late.on_item(Exposure("x", "sms", "p3", "s", T0)) == ([], False)
    assert late.on_eof() == ([], False)


# -- the stream equals the batch --

_patients = ["p1", "p2"]
_event = hs.one_of(
    hs.tuples(hs.just("exp"), hs.sampled_from(_patients), hs.integers(0, 20 * 24),
              hs.sampled_from(["holdout", "sms"]), hs.sampled_from(["x", "y"])),
    hs.tuples(hs.just("bp"), hs.sampled_from(_patients), hs.integers(0, 40 * 24),
              hs.integers(100, 180), hs.sampled_from(["cuff", "watch"])),
    hs.tuples(hs.just("glu"), hs.sampled_from(_patients), hs.integers(0, 40 * 24),
              hs.integers(40, 250), hs.just("meter")))


def _build(spec) -> list:
    """Events from hypothesis' tuples (times in hours from T0); one exposure per patient and
    experiment (the first drawn), as the care stage emits them."""
    out, exposed = [], set()
    for kind, p, hour, v, extra in spec:
        t = T0 + hour * H
        if kind == "exp":
            if (p, extra) not in exposed:
                exposed.add((p, extra))
                out.append(Exposure(extra, v, p, "s", t))
        elif kind == "bp":
            out.append(bp(p, t, float(v) + 0.5, extra))
        else:
            out.append(glu(p, t, float(v)))
    return out


def _time(x) -> int:
    return x.at_ns if isinstance(x, Exposure) else x.event_ns


def _stream(events: list, order: list, lateness_s: int) -> list[OutcomeRecord]:
    """Each patient's events through its own logic in ``order`` (arrival time, item), the
    clock firing notify_at as a runtime would, then EOF."""
    cfg = OutcomeTracker(METRICS, lateness_s=lateness_s)
    logics: dict = {}
    out = []
    for now, x in order:
        p = x.patient
        lg = logics.setdefault(p, cfg.build(key=p))
        due = lg.notify_at()
        if due is not None and due <= now:
            res, discard = lg.on_notify(now)
            out += res
            if discard:
                lg = logics[p] = cfg.build(key=p)
        out += lg.on_item(x)[0]
    for lg in logics.values():
        out += lg.on_eof()[0]
    return sorted(out, key=lambda r: (r.experiment, r.patient, r.metric))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(_event, max_size=60), hs.integers(0, 2**31), hs.booleans())
def test_stream_equals_batch_in_any_order_with_duplicates(spec, seed, dup):
    """Delivered in random order (each item up to the 6 h lateness late, the clock firing
    timers) or fully shuffled under a lateness longer than the data, each item possibly
    twice: the streaming outcomes are exactly the batch ones (values compared with ==)."""
    events = _build(spec)
    rng = random.Random(seed)
    sent = events + [x for x in events if dup and rng.random() < 0.5]
    want = batch_outcomes(events, METRICS)
    # (a) bounded delay: arrival = event time + up to the lateness
    lat = 6 * 3600
    timed = sorted(((_time(x) + rng.randint(0, lat * NS), rng.random(), x) for x in sent),
                   key=lambda e: (e[0], e[1]))
    assert _stream(events, [(a, x) for a, _, x in timed], lat) == want
    # (b) any order at all, the lateness covering the whole stream (closes at EOF)
    shuffled = sent[:]
    rng.shuffle(shuffled)
    assert _stream(events, [(T0, x) for x in shuffled], 100 * 86_400) == want


def test_stream_equals_batch_on_the_simulated_cohort():
    """A simulated month of 60 patients, arriving through ``arrivals`` with up to 30 min
    delay: the same records as the batch, with real values (not only None)."""
    c = AdherenceCohort(60, seed=11)
    run = run_experiment(c, Experiment("bp", "s", ("holdout", "sms")), days=45)
    want = batch_outcomes(run.events, METRICS[:2])
    ev = arrivals(run.events, max_delay_ns=1800 * NS, seed=1, time_of=_time,
                  arrive=lambda x, at: x)
    cfg = OutcomeTracker(METRICS[:2], lateness_s=3600)
    got = sorted(_stream_cfg(cfg, ev), key=lambda r: (r.experiment, r.patient, r.metric))
    assert got == want
    assert sum(r.value is not None for r in want) > 60


def _stream_cfg(cfg, ev):
    logics, out = {}, []
    for now, x in ev:
        lg = logics.setdefault(x.patient, cfg.build(key=x.patient))
        due = lg.notify_at()
        if due is not None and due <= now:
            res, discard = lg.on_notify(now)
            out += res
            if discard:
                lg = logics[x.patient] = cfg.build(key=x.patient)
        out += lg.on_item(x)[0]
    for lg in logics.values():
        out += lg.on_eof()[0]
    return out


def test_summarise_matches_numpy():
    rng = np.random.default_rng(4)
    recs = [OutcomeRecord("x", v, f"p{i}", "m", float(rng.normal(3 if v == "a" else 1)), 0, 1)
            for i, v in enumerate(["a", "b"] * 25)]
    s = summarise(recs)
    ya = np.array([r.value for r in recs if r.variant == "a"])
    lo, hi = stats.t.interval(0.95, len(ya) - 1, ya.mean(), stats.sem(ya))
    assert s["a"].n == 25
    assert s["a"].mean == pytest.approx(ya.mean(), rel=1e-12)
    assert s["a"].sd == pytest.approx(ya.std(ddof=1), rel=1e-12)
    assert (s["a"].ci_low, s["a"].ci_high) == pytest.approx((lo, hi), rel=1e-10)


# -- the report --


def test_report_writes_table_json_and_png(tmp_path):
    """The table's numbers against an independent computation from the raw events: the
    measured-within-24h outcome by a direct loop, Welch/Wald by hand, SRM by the chi-square
    formula, the CS's last value by the formula written out here; the PNG is a PNG that
    matplotlib reads back at the size written (800 x 320 px per metric at 100 dpi)."""
    from matplotlib import image

    c = AdherenceCohort(240, seed=21)
    exp = Experiment("bp-reminder", "s1", ("holdout", "sms", "app"))
    run = run_experiment(c, exp, days=40)
    metrics = (MeasuredWithin(), TrendAfter())
    rep = report(run.events, exp, metrics, tmp_path)
    assert rep.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and rep.png.stat().st_size > 0
    img = image.imread(rep.png)
    assert img.shape[:2] == (640, 800)
    assert rep.txt.read_text() == render_table(rep)
    doc = json.loads(rep.json.read_text())

    # independent: outcome per exposure by a plain loop over the events
    readings = [x for x in run.events if isinstance(x, Reading) and x.signal is Signal.BP_SYSTOLIC]
    newest = max(r.event_ns for r in run.events if isinstance(r, Reading))
    units = []
    for e in sorted(run.exposures, key=lambda e: (e.at_ns, e.patient)):
        if e.at_ns + D > newest:
            continue  # the window is still open: no outcome yet
        hit = any(r.patient == e.patient and e.at_ns < r.event_ns <= e.at_ns + D for r in readings)
        units.append((e.variant, 1.0 if hit else 0.0))
    rows = {r["variant"]: r for r in doc["metrics"][metrics[0].name]}
    z = stats.norm.ppf(0.975)
    ctrl = np.array([y for v, y in units if v == "holdout"])
    for v in ("holdout", "sms", "app"):
        ys = np.array([y for w, y in units if w == v])
        assert rows[v]["n"] == len(ys) and rows[v]["mean"] == pytest.approx(ys.mean(), abs=1e-12)
        if v == "holdout":
            continue
        d = ys.mean() - ctrl.mean()
        se = np.sqrt(ys.mean() * (1 - ys.mean()) / len(ys) + ctrl.mean() * (1 - ctrl.mean()) / len(ctrl))
        assert rows[v]["ci_fixed"] == pytest.approx([d - z * se, d + z * se], abs=1e-12)
        # the AIPW asymptotic CS, written out unit by unit
        pair = [(w == v, y) for w, y in units if w in (v, "holdout")]
        psi, s1, n1, s0, n0 = [], 0.0, 0, 0.0, 0
        for i, (a, y) in enumerate(pair):
            overall = (s1 + s0) / i if i else 0.0
            m1, m0 = (s1 / n1 if n1 else overall), (s0 / n0 if n0 else overall)
            psi.append(m1 - m0 + ((y - m1) / 0.5 if a else -(y - m0) / 0.5))
            if a:
                s1, n1 = s1 + y, n1 + 1
            else:
                s0, n0 = s0 + y, n0 + 1
        t = len(psi)
        rho2 = (-2 * np.log(0.05) + np.log(-2 * np.log(0.05) + 1)) / t
        rad = np.std(psi) * np.sqrt(2 * (t * rho2 + 1) / (t * t * rho2)
                                    * np.log(np.sqrt(t * rho2 + 1) / 0.05))
        assert rows[v]["cs"] == pytest.approx([np.mean(psi) - rad, np.mean(psi) + rad], abs=1e-9)
        assert "Waudby-Smith" in rows[v]["method"]
    counts = np.array([sum(1 for w, _ in units if w == v) for v in exp.variants])
    chi = ((counts - counts.sum() / 3) ** 2 / (counts.sum() / 3)).sum()
    assert doc["srm_p"] == pytest.approx(stats.chi2.sf(chi, 2), rel=1e-9)
    text = rep.txt.read_text()
    assert f"{rows['sms']['mean']:.3f}" in text and "CS always-valid" in text
    assert 0 < sum(r["n"] for r in doc["metrics"][metrics[1].name]) < len(units)  # 30-d windows


def test_report_accepts_outcome_records(tmp_path):
    recs = [OutcomeRecord("e1", v, f"p{i}", "m", float(i % 2), T0 + i * D, T0 + i * D + D)
            for i, v in enumerate(["holdout", "sms"] * 20)]
    rep = report(recs, Experiment("e1", "s", ("holdout", "sms")), out_dir=tmp_path)
    assert [(r.variant, r.n) for r in rep.table("m").rows] == [("holdout", 20), ("sms", 20)]
    assert rep.png.exists() and rep.counts == {"holdout": 20, "sms": 20}


@pytest.mark.parametrize("mod", [vitalstream.stream.experiment_report])
def test_report_doctests(mod):
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
