"""NEWS2 (Royal College of Physicians, National Early Warning Score 2, 2017).

Expected values are worked by hand from the RCP 2017 chart (band edges on both sides),
not copied from program output.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vitalstream.model import Quality, Reading
from vitalstream.operators.contract import drive
from vitalstream.operators.news2 import News2, News2Alert, News2Context, News2Result, score_news2
from vitalstream.signals import Signal

NS = 1_000_000_000
# every parameter scoring 0 (RCP 2017): resp 16, SpO2 97 on air, SBP 120, HR 70, alert, 37.0 Cel
NORMAL = dict(resp_rate=16, spo2=97, spo2_scale=1, oxygen=False, bp_systolic=120, heart_rate=70,
              consciousness="A", body_temp=37.0)


def one(**change) -> dict:
    return score_news2(**{**NORMAL, **change}).scores()


# (value, score) at each band edge, both sides, RCP 2017 chart
RESP = [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (4, 3), (40, 3)]
SPO2_SCALE1 = [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0), (80, 3)]
SBP = [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (60, 3)]
HR = [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
      (131, 3), (30, 3), (180, 3)]
TEMP = [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2),
        (34.0, 3), (41.0, 2)]


@pytest.mark.parametrize("value,score", RESP)
def test_rcp2017_respiration_rate_band_edges(value, score) -> None:
    assert one(resp_rate=value)["resp_rate"] == score


@pytest.mark.parametrize("value,score", SPO2_SCALE1)
def test_rcp2017_spo2_scale1_band_edges(value, score) -> None:
    assert one(spo2=value)["spo2"] == score


@pytest.mark.parametrize("value,score", SBP)
def test_rcp2017_systolic_bp_band_edges(value, score) -> None:
    assert one(bp_systolic=value)["bp_systolic"] == score


@pytest.mark.parametrize("value,score", HR)
def test_rcp2017_pulse_band_edges(value, score) -> None:
    assert one(heart_rate=value)["heart_rate"] == score


@pytest.mark.parametrize("value,score", TEMP)
def test_rcp2017_temperature_band_edges(value, score) -> None:
    assert one(body_temp=value)["body_temp"] == score


# scale 2 (hypercapnic respiratory failure, target 88-92 %): <= 92 alike on air and oxygen
SCALE2_LOW = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0)]
SCALE2_AIR_HIGH = [(93, 0), (97, 0), (100, 0)]
SCALE2_O2_HIGH = [(93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)]


@pytest.mark.parametrize("oxygen", [False, True])
@pytest.mark.parametrize("value,score", SCALE2_LOW)
def test_rcp2017_spo2_scale2_below_93_same_on_air_and_oxygen(value, score, oxygen) -> None:
    assert one(spo2=value, spo2_scale=2, oxygen=oxygen)["spo2"] == score


@pytest.mark.parametrize("value,score", SCALE2_AIR_HIGH)
def test_rcp2017_spo2_scale2_93_and_above_on_air_scores_0(value, score) -> None:
    assert one(spo2=value, spo2_scale=2, oxygen=False)["spo2"] == score


@pytest.mark.parametrize("value,score", SCALE2_O2_HIGH)
def test_rcp2017_spo2_scale2_93_and_above_on_oxygen(value, score) -> None:
    assert one(spo2=value, spo2_scale=2, oxygen=True)["spo2"] == score


def test_rcp2017_spo2_scale2_above_92_unscored_when_oxygen_unknown() -> None:
    r = score_news2(**{**NORMAL, "spo2": 95, "spo2_scale": 2, "oxygen": None})
    assert r.scores()["spo2"] is None and r.scores()["oxygen"] is None
    assert "oxygen" in r.missing and not r.complete and r.score == 0
    # below 93 % it does not depend on oxygen: 86 -> 1
    assert score_news2(**{**NORMAL, "spo2": 86, "spo2_scale": 2, "oxygen": None}).scores()["spo2"] == 1


def test_rcp2017_air_or_oxygen() -> None:
    assert one(oxygen=True)["oxygen"] == 2 and one(oxygen=False)["oxygen"] == 0
    # scale 1 on oxygen: SpO2 97 scores 0, oxygen 2 -> total 2
    assert score_news2(**{**NORMAL, "oxygen": True}).score == 2


@pytest.mark.parametrize("letter,score", [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_rcp2017_acvpu(letter, score) -> None:
    assert one(consciousness=letter)["consciousness"] == score


@pytest.mark.parametrize("param,value,score", [
    ("resp_rate", 8.5, 1), ("resp_rate", 8.49, 3), ("resp_rate", 20.5, 2), ("resp_rate", 20.4, 0),
    ("heart_rate", 90.5, 1), ("heart_rate", 90.4, 0), ("heart_rate", 40.5, 1),
    ("bp_systolic", 90.5, 2), ("bp_systolic", 219.5, 3), ("bp_systolic", 219.4, 0),
    ("spo2", 95.5, 0), ("spo2", 95.4, 1),
    ("body_temp", 35.05, 1), ("body_temp", 35.04, 3), ("body_temp", 38.05, 1), ("body_temp", 38.04, 0),
])
def test_non_integer_readings_round_half_up_to_chart_resolution(param, value, score) -> None:
    assert one(**{param: value})[param] == score


def test_rcp2017_all_normal_is_low_zero_routine_12_hourly() -> None:
    r = score_news2(**NORMAL)
    assert (r.score, r.band, r.red, r.complete) == (0, "low", (), True)
    assert "12-hourly" in r.response


def test_rcp2017_band_low_1_to_4() -> None:
    # HR 95 (1) + temp 38.5 (1) + resp 22 (2) = 4, no single 3
    r = score_news2(**{**NORMAL, "heart_rate": 95, "body_temp": 38.5, "resp_rate": 22})
    assert (r.score, r.band) == (4, "low") and "4-6-hourly" in r.response


def test_rcp2017_red_single_parameter_rule_low_medium() -> None:
    # resp 7 scores 3 alone: total 3 < 5 -> low-medium
    r = score_news2(**{**NORMAL, "resp_rate": 7})
    assert (r.score, r.band, r.red) == (3, "low-medium", ("resp_rate",))
    assert "urgent ward-based response" in r.response
    # new confusion alone: 3 -> low-medium; plus HR 95 (1): 4 -> still low-medium
    assert score_news2(**{**NORMAL, "consciousness": "C", "heart_rate": 95}).band == "low-medium"


def test_rcp2017_band_medium_5_and_6_even_with_a_red_parameter() -> None:
    # SBP 88 (3) + HR 115 (2) = 5 -> medium (not low-medium)
    r = score_news2(**{**NORMAL, "bp_systolic": 88, "heart_rate": 115})
    assert (r.score, r.band) == (5, "medium") and "urgent review" in r.response
    # oxygen (2) + SpO2 93 (2) + temp 38.5 (1) + HR 95 (1) = 6
    r = score_news2(**{**NORMAL, "oxygen": True, "spo2": 93, "body_temp": 38.5, "heart_rate": 95})
    assert (r.score, r.band) == (6, "medium")


def test_rcp2017_band_high_7_and_above() -> None:
    # resp 22 (2) + SpO2 95 (1) + SBP 105 (1) + HR 112 (2) + temp 38.4 (1) = 7
    r = score_news2(resp_rate=22, spo2=95, oxygen=False, bp_systolic=105, heart_rate=112,
                    consciousness="A", body_temp=38.4)
    assert (r.score, r.band) == (7, "high") and "critical care outreach" in r.response
    # worst everything: 3+3+2+3+3+3+2 = 19
    assert score_news2(resp_rate=30, spo2=85, oxygen=True, bp_systolic=80, heart_rate=140,
                       consciousness="U", body_temp=40.0).score == 19


def test_missing_parameters_are_reported_never_scored_as_normal() -> None:
    r = score_news2(resp_rate=25, heart_rate=135)
    assert r.missing == ("spo2", "oxygen", "bp_systolic", "consciousness", "body_temp")
    assert r.scores()["spo2"] is None and not r.complete
    assert (r.score, r.band) == (6, "medium")  # over the present ones: 3 + 3


def test_missing_oxygen_is_missing_not_air() -> None:
    r = score_news2(**{**NORMAL, "oxygen": None})
    assert r.missing == ("oxygen",) and r.scores()["oxygen"] is None and not r.complete


@pytest.mark.parametrize("kw", [dict(heart_rate="70"), dict(heart_rate=True), dict(spo2_scale=3),
                                dict(oxygen="yes"), dict(consciousness="X"),
                                dict(body_temp=float("nan"))])
def test_bad_inputs_raise_value_error(kw) -> None:
    with pytest.raises(ValueError):
        score_news2(**kw)


# -- the streaming operator --

def _r(sig: Signal, v: float, t_s: int, unit: str) -> Reading:
    return Reading("p1", "d", sig, v, unit, t_s * NS, t_s * NS)


def _complete_at(t_s: int, hr: float) -> list:
    return [News2Context("p1", t_s * NS, oxygen=False, consciousness="A"),
            _r(Signal.RESP_RATE, 16, t_s, "/min"), _r(Signal.SPO2, 97, t_s, "%"),
            _r(Signal.BP_SYSTOLIC, 120, t_s, "mm[Hg]"), _r(Signal.BODY_TEMP, 37.0, t_s, "Cel"),
            _r(Signal.HEART_RATE, hr, t_s, "/min")]


def test_operator_emits_on_change_and_alerts_on_move_into_medium_and_high() -> None:
    items = _complete_at(0, 70) + [
        _r(Signal.HEART_RATE, 72, 60, "/min"),      # still 0: no output
        _r(Signal.HEART_RATE, 135, 120, "/min"),    # 3, red: low-medium, no alert
        _r(Signal.RESP_RATE, 22, 180, "/min"),      # 3 + 2 = 5: medium -> alert
        _r(Signal.BP_SYSTOLIC, 88, 240, "mm[Hg]"),  # 5 + 3 = 8: high -> alert
        _r(Signal.BP_SYSTOLIC, 89, 300, "mm[Hg]"),  # still 8: no output
    ]
    out = drive(News2().build(key="p1"), items)
    results = [o for o in out if isinstance(o, News2Result)]
    alerts = [o for o in out if isinstance(o, News2Alert)]
    assert results[-1].news2.complete and results[-1].news2.score == 8
    assert [r.news2.band for r in results[-3:]] == ["low-medium", "medium", "high"]
    assert [(a.previous_band, a.band, a.event_ns) for a in alerts] == [
        ("low-medium", "medium", 180 * NS), ("medium", "high", 240 * NS)]


def test_operator_parameter_goes_stale_after_its_freshness_window() -> None:
    # HR 135 at t=0; an hour and a second later a resp reading: HR (1 h window) is missing
    out = drive(News2().build(), [_r(Signal.HEART_RATE, 135, 0, "/min"),
                                  _r(Signal.RESP_RATE, 16, 3601, "/min")])
    last = out[-1].news2
    assert "heart_rate" in last.missing and last.score == 0 and last.band == "low"


def test_operator_spo2_scale2_from_context() -> None:
    items = [News2Context("p1", 0, oxygen=True, spo2_scale=2), _r(Signal.SPO2, 97, 0, "%")]
    last = drive(News2().build(), items)[-1].news2
    assert last.scores()["spo2"] == 3 and last.scores()["oxygen"] == 2


def test_operator_ignores_artefact_readings_and_custom_freshness() -> None:
    art = Reading("p1", "d", Signal.HEART_RATE, 150.0, "/min", 0, 0, quality=Quality.MOTION_ARTEFACT)
    assert drive(News2().build(), [art]) == []
    # a 10-minute pulse window: HR 135 at 0 is stale at 601 s
    out = drive(News2(fresh_s={"heart_rate": 600}).build(),
                [_r(Signal.HEART_RATE, 135, 0, "/min"), _r(Signal.RESP_RATE, 16, 601, "/min")])
    assert "heart_rate" in out[-1].news2.missing
    with pytest.raises(ValueError):
        News2(fresh_s={"pulse": 600})


# -- the command --

def _cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vitalstream", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_news2_one_line_per_input_and_errors_per_line() -> None:
    lines = [json.dumps({"resp_rate": 22, "spo2": 95, "spo2_scale": 1, "oxygen": False,
                         "bp_systolic": 105, "heart_rate": 112, "consciousness": "A",
                         "body_temp": 38.4}),
             "{not json", json.dumps({"consciousness": "Q"}), json.dumps({"heart_rate": "fast"}),
             json.dumps({"spo2": 95, "spo2_scale": 2, "oxygen": True})]
    p = _cli("news2", "-", stdin="\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["score"] == 7 and out[0]["band"] == "high" and out[0]["missing"] == []
    assert out[0]["parameter_scores"] == {"resp_rate": 2, "spo2": 1, "oxygen": 0, "bp_systolic": 1,
                                          "heart_rate": 2, "consciousness": 0, "body_temp": 1}
    assert "critical care outreach" in out[0]["response"]
    assert all("error" in o for o in out[1:4])
    # scale 2 on oxygen, 95 % -> 2; oxygen 2; total 4, others missing
    assert out[4]["parameter_scores"]["spo2"] == 2 and out[4]["score"] == 4
    assert out[4]["missing"] == ["resp_rate", "bp_systolic", "heart_rate", "consciousness",
                                 "body_temp"]


def test_cli_news2_missing_file_exits_2_with_one_line(tmp_path) -> None:
    p = _cli("news2", str(tmp_path / "absent.jsonl"), stdin="")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""
