"""Device times at the extremes: far in the future or far in the past are dead letters
(``time_in_future``, ``time_too_old``), never clock-corrected to the receive time; the
moderate skew (corrected) and back-fill (kept, HISTORICAL) bands are unchanged.

Bands from README "Back-fill never pages" and the PipelineConfig defaults: skew 300 s,
back-fill after 1 h up to 7 days, future limit 1 day, past limit 7 days."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as hs

from vitalstream.errors import ConfigError, VitalstreamError
from vitalstream.model import DeadLetter, Message, Quality, RawReading, Reading
from vitalstream.operators.normalise import Normaliser
from vitalstream.stream import assembly
from vitalstream.stream.ingest import Ack, Ingest
from vitalstream.stream.settings import load

NS = 1_000_000_000
H = 3600 * NS
DAY = 86_400 * NS
NOW = 1_790_000_000 * NS  # 2026-09-21


def _raw(event_ns: int) -> RawReading:
    return RawReading("d1", "p1", "heart_rate", 61.0, None, event_ns)


def _outcome(n: Normaliser, event_ns: int) -> tuple:
    try:
        r = n.normalise(_raw(event_ns), NOW)
    except VitalstreamError as err:
        return ("dead", err.reason)
    return (r.event_ns, r.quality)


@pytest.mark.parametrize("ahead_ns,expected", [
    (300 * NS, (NOW + 300 * NS, Quality.OK)),          # within the skew: as measured
    (300 * NS + 1, (NOW, Quality.CLOCK_CORRECTED)),    # moderate: corrected, as before
    (DAY, (NOW, Quality.CLOCK_CORRECTED)),             # up to the limit: still corrected
    (DAY + 1, ("dead", "time_in_future")),             # beyond: refused
    (365 * DAY, ("dead", "time_in_future")),
])
def test_future_boundaries(ahead_ns, expected):
    assert _outcome(Normaliser(), NOW + ahead_ns) == expected


@pytest.mark.parametrize("age_ns,expected", [
    (H, (NOW, Quality.CLOCK_CORRECTED)),
    (H + 1, (NOW - H - 1, Quality.HISTORICAL)),
    (7 * DAY, (NOW - 7 * DAY, Quality.HISTORICAL)),    # the back-fill horizon itself
    (7 * DAY + 1, ("dead", "time_too_old")),           # before: corrected; now refused
])
def test_past_boundaries(age_ns, expected):
    assert _outcome(Normaliser(), NOW - age_ns) == expected


@pytest.mark.parametrize("when", [datetime(1970, 1, 1), datetime(2000, 1, 1)])
def test_an_rtc_reset_is_too_old(when):
    t = int(when.replace(tzinfo=timezone.utc).timestamp()) * NS
    assert _outcome(Normaliser(), t) == ("dead", "time_too_old")


def test_limits_off_keep_the_old_correction():
    n = Normaliser(future_limit_ns=None, past_limit_ns=None)
    assert _outcome(n, NOW + 30 * DAY) == (NOW, Quality.CLOCK_CORRECTED)
    assert _outcome(n, NOW - 7 * DAY - 1) == (NOW, Quality.CLOCK_CORRECTED)
    assert _outcome(n, 0) == (NOW, Quality.CLOCK_CORRECTED)


def test_without_backfill_old_readings_are_corrected_up_to_the_past_limit():
    n = Normaliser(backfill_after_ns=None, past_limit_ns=2 * DAY)
    assert _outcome(n, NOW - 2 * DAY) == (NOW, Quality.CLOCK_CORRECTED)
    assert _outcome(n, NOW - 2 * DAY - 1) == ("dead", "time_too_old")


def test_trusted_device_times_have_no_limits():
    # max_clock_skew null (replays of recorded data): every time kept, as documented
    n = Normaliser(max_clock_skew_ns=None)
    assert _outcome(n, 0) == (0, Quality.OK)
    assert _outcome(n, NOW + 30 * DAY) == (NOW + 30 * DAY, Quality.OK)


def test_limits_inside_the_skew_or_the_backfill_horizon_are_refused():
    with pytest.raises(ValueError):
        Normaliser(future_limit_ns=299 * NS)
    with pytest.raises(ValueError):
        Normaliser(past_limit_ns=6 * DAY)  # would cut the 7-day back-fill short
    Normaliser(backfill_after_ns=None, past_limit_ns=6 * DAY)  # no back-fill: fine
    Normaliser(max_clock_skew_ns=None, future_limit_ns=1)  # no skew check: nothing to cut


@hsettings(max_examples=300, deadline=None)
@given(offset_ns=hs.one_of(hs.integers(-40 * DAY, 40 * DAY),
                           hs.sampled_from([-DAY - 1, -DAY, 7 * DAY, 7 * DAY + 1, H, H + 1,
                                            300 * NS, 300 * NS + 1, -300 * NS - 1])))
def test_no_reading_is_stored_live_far_from_its_receipt(offset_ns):
    """Whatever the device time: a kept reading is within the skew, or back-fill within its
    horizon, or corrected to the receipt from inside the limits; all else is refused."""
    event = NOW - offset_ns  # offset > 0: in the past
    res = _outcome(Normaliser(), event)
    if res[0] == "dead":
        assert (res[1], offset_ns < 0) in (("time_in_future", True), ("time_too_old", False))
        assert (offset_ns < -DAY) or (offset_ns > 7 * DAY)
        return
    assert -DAY <= offset_ns <= 7 * DAY
    t, q = res
    if abs(offset_ns) <= 300 * NS:
        assert (t, q) == (event, Quality.OK)
    elif H < offset_ns:
        assert (t, q) == (event, Quality.HISTORICAL)
    else:
        assert (t, q) == (NOW, Quality.CLOCK_CORRECTED)


# -- through stage A (the real JSON decoder) and the settings --

def _msg(times_ns: list[int], recv_ns: int = NOW) -> Message:
    body = {"v": 1, "device": "dev-1", "patient": "p-1",
            "readings": [{"signal": "heart_rate", "value": 70.0 + i, "t_ns": t}
                         for i, t in enumerate(times_ns)]}
    return Message("vitalstream/dev-1/json", json.dumps(body).encode(), recv_ns, token="m1")


def test_ingest_dead_letters_the_extremes_and_stores_the_rest():
    s = load(env={})
    ing = assembly.ingest(s, patient_of=lambda raw: raw.patient)
    out = ing.process_batch([_msg([NOW - NS, NOW + 2 * DAY, 0, NOW - 2 * DAY])])
    readings = [o for o in out if type(o) is Reading]
    dead = [o for o in out if type(o) is DeadLetter]
    assert [(r.value, r.event_ns, r.quality) for r in readings] == [
        (70.0, NOW - NS, Quality.OK), (73.0, NOW - 2 * DAY, Quality.HISTORICAL)]
    assert [(d.step, d.reason, d.device) for d in dead] == [
        ("normalise", "time_in_future", "dev-1"), ("normalise", "time_too_old", "dev-1")]
    assert type(out[-1]) is Ack
    assert ing.stats.by_reason == {"time_in_future": 1, "time_too_old": 1}


def test_settings_limits_reach_the_normaliser_and_null_switches_them_off():
    on = assembly.normaliser(load(env={}))
    with pytest.raises(VitalstreamError):
        on.normalise(_raw(NOW + 2 * DAY), NOW)
    off = assembly.normaliser(load(env={}, overrides={("pipeline", "future_limit_s"): "null",
                                                      ("pipeline", "past_limit_s"): "null"}))
    assert off.normalise(_raw(NOW + 2 * DAY), NOW).quality == Quality.CLOCK_CORRECTED
    assert off.normalise(_raw(0), NOW).quality == Quality.CLOCK_CORRECTED


@pytest.mark.parametrize("overrides,names", [
    ({"future_limit_s": 60.0}, "future_limit_s"),
    ({"past_limit_s": 100.0}, "past_limit_s"),
    ({"backfill_max_s": 30 * 86_400.0}, "past_limit_s"),  # past_limit_s must follow it up
    ({"future_limit_s": -1.0}, "future_limit_s"),
])
def test_settings_refuse_limits_that_would_mean_something_else(overrides, names):
    with pytest.raises(ConfigError) as exc:
        load(env={}, overrides={("pipeline", k): v for k, v in overrides.items()})
    assert names in exc.value.detail


def test_settings_allow_any_limit_when_device_times_are_trusted():
    p = load(env={}, overrides={("pipeline", "max_clock_skew_s"): "null",
                                ("pipeline", "future_limit_s"): 1.0}).pipeline
    assert p.future_limit_s == 1.0
