"""Hierarchical suppression and back-fill summaries in the alarm lifecycle, on worked
fake-clock timelines (``operators/lifecycle.py``).

Defaults (``Lifecycle()``): no_data and gateway_offline are suppressible; a source back
releases what is still silent after ``release_grace_s`` = 60 s; medium re-notifies every
900 s. The service sends ``Suppress`` when a source's alarm fires or resolves; here the
timeline sends them itself."""

from __future__ import annotations

import pytest

from vitalstream.model import Alert
from vitalstream.operators.check import CHECKS, Case
from vitalstream.operators.lifecycle import Lifecycle, Notice, Suppress

from test_lifecycle import T0, S, _Run

GW = "gw-alarm"


def _stale(state: str, t_s: float, aid: str = "stale-1") -> Alert:
    return Alert(aid, "p1", "no_data", "heart_rate", "warning", state, float("nan"), 1800.0,
                 T0 + round(t_s * S), T0, 0, "", "no heart_rate for 30 min")


def _brady(state: str, t_s: float) -> Alert:
    return Alert("brady-1", "p1", "bradycardia", "heart_rate", "critical", state, 38.0, 40.0,
                 T0 + round(t_s * S), T0, 0, "", "HR 38 /min")


def _sent(run: _Run) -> list[tuple[str, str, float]]:
    """(rule, reason, seconds) of the notices a care team would receive."""
    return [(n.rule, n.reason, (n.event_ns - T0) / S) for n in run.out
            if type(n) is Notice and n.reason != "suppressed"]


def test_a_stale_alarm_behind_a_silent_gateway_is_recorded_not_sent_and_resolves_quietly():
    run = _Run()
    run.item(0, Suppress(GW, True, T0))
    run.item(1200, _stale("firing", 1200))
    assert _sent(run) == []
    assert [n.reason for n in run.out] == ["suppressed"]
    run.until(5000)  # no re-notification (900 s) or escalation of a held alarm
    assert _sent(run) == []
    run.item(5100, _stale("resolved", 5100))  # the data came back with the gateway
    run.item(5101, Suppress(GW, False, T0 + 5101 * S))
    run.until(9000)
    assert _sent(run) == [] and run.logic.logic.st.alarms == {}


def test_a_patient_still_silent_after_the_gateway_returns_is_raised_after_the_grace():
    run = _Run()
    run.item(0, Suppress(GW, True, T0))
    run.item(1200, _stale("firing", 1200))
    run.item(3000, Suppress(GW, False, T0 + 3000 * S))
    run.until(3059)
    assert _sent(run) == []
    run.until(3060)  # 3000 + 60 s grace
    assert _sent(run) == [("no_data", "raised", 3060.0)]
    # from then on an ordinary medium alarm: re-notified 900 s after it was raised
    run.until(3960)
    assert _sent(run) == [("no_data", "raised", 3060.0), ("no_data", "renotify", 3960.0)]


def test_a_source_down_again_within_the_grace_keeps_holding():
    run = _Run()
    run.item(0, Suppress(GW, True, T0))
    run.item(1200, _stale("firing", 1200))
    run.item(3000, Suppress(GW, False, T0 + 3000 * S))
    run.item(3030, Suppress("broker", True, T0 + 3030 * S))
    run.until(4000)
    assert _sent(run) == []
    run.item(4000, Suppress("broker", False, T0 + 4000 * S))
    run.until(4060)
    assert _sent(run) == [("no_data", "raised", 4060.0)]


def test_two_sources_release_only_when_both_are_back():
    run = _Run()
    run.item(0, Suppress(GW, True, T0))
    run.item(10, Suppress("broker", True, T0 + 10 * S))
    run.item(1200, _stale("firing", 1200))
    run.item(2000, Suppress(GW, False, T0 + 2000 * S))
    run.until(2100)
    assert _sent(run) == []
    run.item(2500, Suppress("broker", False, T0 + 2500 * S))
    run.until(2560)
    assert _sent(run) == [("no_data", "raised", 2560.0)]


def test_a_physiological_alarm_is_never_held_by_a_source():
    run = _Run()
    run.item(0, Suppress(GW, True, T0))
    run.item(5, _brady("firing", 5))
    assert _sent(run) == [("bradycardia", "raised", 5.0)]


def test_a_stale_alarm_raised_before_the_source_went_down_stays_as_it_was():
    run = _Run()
    run.item(0, _stale("firing", 0))
    run.item(10, Suppress(GW, True, T0 + 10 * S))
    run.until(900)
    assert _sent(run) == [("no_data", "raised", 0.0), ("no_data", "renotify", 900.0)]


def test_a_backfill_summary_is_one_low_priority_historical_notice_and_no_alarm():
    run = _Run()
    a = Alert("bf-1", "p1", "backfill", "heart_rate", "info", "historical", 1440.0,
              float("nan"), T0 + 10 * S, T0 - 86_400 * S, 0, "", "back-fill of 1440 readings")
    run.item(10, a)
    (n,) = run.out
    assert (n.reason, n.priority, n.state, n.historical, n.value) == (
        "backfill", "low", "historical", True, 1440.0)
    assert run.logic.logic.st.alarms == {} and run.logic.notify_at() is None


_ITEMS = [Suppress(GW, True, T0), _stale("firing", 1200), _brady("firing", 1300),
          Suppress(GW, False, T0 + 3000 * S), _stale("firing", 3500, "stale-2"),
          _stale("resolved", 3010), Suppress(GW, True, T0 + 5000 * S), _stale("resolved", 5500, "stale-2")]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_suppression_passes_the_operator_contract(check):
    check(Case("lifecycle-suppression", Lifecycle(), sorted(_ITEMS, key=lambda x: x.event_ns),
               key="p1", settle_ns=7200 * S))
