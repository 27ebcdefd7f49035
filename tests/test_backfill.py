"""Back-fill: readings measured long before they arrived (operators/backfill.py, the
normaliser's HISTORICAL flag, the patient flow's separate path).

Expected aggregates are computed here with numpy over the same readings (a batch
computation), never taken from the operator's output."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as hs

from vitalstream.model import Alert, Quality, RawReading, Reading, WindowAggregate
from vitalstream.operators.backfill import Backfill
from vitalstream.operators.liveness import StaleData
from vitalstream.operators.normalise import Normaliser
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.window import TumblingWindow
from vitalstream.signals import Signal

NS = 1_000_000_000
MIN = 60 * NS
H = 3600 * NS
DAY = 86_400 * NS
NOW = 1_790_000_000 * NS


def _raw(event_ns: int) -> RawReading:
    return RawReading("d1", "p1", "heart_rate", 61.0, None, event_ns)


@pytest.mark.parametrize("age_ns,kept,flag", [
    (300 * NS, True, Quality.OK),                      # within the skew: as measured
    (300 * NS + 1, False, Quality.CLOCK_CORRECTED),    # a clock a few minutes behind
    (H, False, Quality.CLOCK_CORRECTED),               # up to the horizon, still corrected
    (H + 1, True, Quality.HISTORICAL),                 # older: back-fill at its own time
    (7 * DAY, True, Quality.HISTORICAL),
    # a week+ (an RTC reset, not a sync) is a time_too_old dead letter: tests/test_time_limits.py
    (-(300 * NS + 1), False, Quality.CLOCK_CORRECTED),  # the future is never back-fill
])
def test_normaliser_backfill_horizon_boundaries(age_ns, kept, flag):
    r = Normaliser().normalise(_raw(NOW - age_ns), NOW)
    assert r.quality == flag
    assert r.event_ns == (NOW - age_ns if kept else NOW)


def test_no_skew_check_trusts_every_device_time_and_flags_nothing():
    r = Normaliser(max_clock_skew_ns=None).normalise(_raw(NOW - 3 * DAY), NOW)
    assert (r.event_ns, r.quality) == (NOW - 3 * DAY, Quality.OK)


def _hist(t_ns: int, v: float, device: str = "watch", signal=Signal.HEART_RATE) -> Reading:
    return Reading("p1", device, signal, v, "/min", t_ns, NOW, "json", Quality.HISTORICAL)


def _day(seed: int) -> list[Reading]:
    rng = np.random.default_rng(seed)
    start = NOW - DAY
    return [_hist(start + i * MIN + int(rng.integers(0, 50)) * NS, float(rng.integers(35, 140)))
            for i in range(1440)]


def _batch(readings: list[Reading]) -> dict[int, tuple[int, float, float, float]]:
    """Minute windows by numpy: start -> (count, min, max, mean)."""
    t = np.array([r.event_ns for r in readings])
    v = np.array([r.value for r in readings])
    starts = t - t % MIN
    out = {}
    for s in np.unique(starts):
        w = v[starts == s]
        out[int(s)] = (len(w), float(w.min()), float(w.max()), float(w.mean()))
    return out


def _run(readings: list[Reading], cfg: Backfill = Backfill(TumblingWindow(MIN, 10 * NS))) -> list:
    lg = cfg.build(key="p1")
    out = []
    for i, r in enumerate(readings):
        out += lg.on_reading(r, NOW + i * 1_000_000)  # an upload: 1 ms apart
    return out + lg.fire(lg.due())


def _aggs(out: list) -> dict[int, tuple[int, float, float, float]]:
    return {a.start_ns: (a.count, a.min, a.max, pytest.approx(a.mean))
            for a in out if type(a) is WindowAggregate}


@settings(max_examples=25, deadline=None)
@given(seed=hs.integers(0, 10_000), dup_every=hs.integers(3, 50))
def test_any_upload_order_with_duplicates_gives_the_batch_aggregates(seed, dup_every):
    day = _day(seed)
    upload = day + day[::dup_every]  # a retried part
    random.Random(seed).shuffle(upload)
    lg = Backfill(TumblingWindow(MIN, 10 * NS)).build(key="p1")
    out = []
    for i, r in enumerate(upload):
        out += lg.on_reading(r, NOW + i * 1_000_000)
    out += lg.fire(lg.due())
    assert _aggs(out) == _batch(day)
    (summary,) = [x for x in out if type(x) is Alert]
    assert summary.value == len(day)
    assert lg.st.duplicates == len(day[::dup_every])


def test_summary_says_what_the_backfill_held():
    day = _day(1)
    out = _run(day)
    (s,) = [x for x in out if type(x) is Alert]
    lo, hi = min(r.value for r in day), max(r.value for r in day)
    assert (s.rule, s.state, s.severity, s.episode_start_ns) == (
        "backfill", "historical", "info", min(r.event_ns for r in day))
    assert f"heart_rate 1440 ({lo:g}-{hi:g} /min)" in s.explanation
    assert "from watch" in s.explanation


def test_a_bounded_number_of_windows_stays_open_and_the_oldest_close_first():
    day = _day(2)
    out = _run(day, Backfill(TumblingWindow(MIN, 10 * NS), max_open=100))
    assert _aggs(out) == _batch(day)  # every window once, complete
    lg = Backfill(TumblingWindow(MIN, 10 * NS), max_open=100).build(key="p1")
    for r in day:
        lg.on_reading(r, NOW)
        assert len(lg.st.window.open) <= 100


def _flow(**kw) -> PatientFlow:
    rules = RuleSet.from_dicts([{"name": "bradycardia", "signal": "heart_rate", "op": "<", "threshold": 40,
                                 "clear": 45, "for_s": 0, "severity": "critical"}])
    return PatientFlow(TumblingWindow(MIN, 10 * NS), rules, 2 * NS,
                       backfill=Backfill(TumblingWindow(MIN, 10 * NS), 120.0), **kw)


def test_a_day_of_bradycardia_backfilled_pages_nobody_but_live_data_still_does():
    lg = _flow(stale=StaleData({"heart_rate": 600})).build(key="p1")
    live = Reading("p1", "strap", Signal.HEART_RATE, 60.0, "/min", NOW, NOW)
    out = lg.on_item(live)[0]
    day = [_hist(NOW - DAY + i * MIN, 35.0) for i in range(1440)]
    for r in day:
        out += lg.on_item(r)[0]
    out += lg.on_notify(NOW + 121 * NS)[0]
    alerts = [x for x in out if type(x) is Alert]
    assert [(a.rule, a.state) for a in alerts] == [("backfill", "historical")]
    hist_aggs = [a for a in out if type(a) is WindowAggregate and a.start_ns < NOW - MIN]
    assert len(hist_aggs) == 1440 and all(a.mean == 35.0 for a in hist_aggs)
    # the back-fill did not count as data now: heart rate goes stale 600 s after the live one
    assert lg.notify_at() is not None
    stale = lg.on_notify(NOW + 600 * NS)[0]
    assert [(a.rule, a.state) for a in stale if type(a) is Alert] == [("no_data", "firing")]
    low = Reading("p1", "strap", Signal.HEART_RATE, 35.0, "/min", NOW + 700 * NS, NOW + 700 * NS)
    out = lg.on_item(low)[0] + lg.on_notify(NOW + 703 * NS)[0]
    assert ("bradycardia", "firing") in [(a.rule, a.state) for a in out if type(a) is Alert]


def test_backfill_state_survives_a_snapshot():
    cfg = _flow()
    a = cfg.build(key="p1")
    day = [_hist(NOW - DAY + i * MIN, 50.0 + i % 7) for i in range(300)]
    for r in day[:150]:
        a.on_item(r)
    b = cfg.build(a.snapshot(), key="p1")
    for lg in (a, b):
        for r in day[150:]:
            lg.on_item(r)
    oa, ob = a.on_notify(NOW + 200 * NS)[0], b.on_notify(NOW + 200 * NS)[0]
    assert repr(oa) == repr(ob) and len([x for x in oa if type(x) is WindowAggregate]) == 300
