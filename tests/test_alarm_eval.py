"""Alert evaluation against labelled episodes (``vitalstream.stream.alarm_eval``).

Every expected number is worked out by hand from the timeline below, not read
off the program. T0 = 2026-11-25T10:00:00Z = 1_795_600_800 s.
"""

from __future__ import annotations

import doctest
import json

import pytest

from vitalstream.stream import alarm_eval
from vitalstream.stream.alarm_eval import (
    Label,
    evaluate,
    parse_labels,
    patient_days_from,
    read_labels,
)
from vitalstream.stream.replay_input import ReplayFormatError

T0 = 1_795_600_800
NS = 1_000_000_000

LABELS_CSV = """\
patient,kind,type,start,end
# p1: a tachycardia found twice, a bradycardia, and a tachycardia nobody alerts on
p1,episode,tachycardia,2026-11-25T10:00:00Z,2026-11-25T10:10:00Z
p1,episode,bradycardia,2026-11-25T11:00:00Z,2026-11-25T11:05:00Z
p1,episode,tachycardia,1795610800,1795610900
p2,episode,tachycardia,1795600800,1795601100

p2,artefact,spike,2026-11-25T12:00:00Z,1795608010
"""

# (id, patient, rule, state, time) - times as the replay writes them (event_time, Z) or
# as Alert.to_fields does (event_ns as text); the ids are for reading the test only.
ALERTS = [
    # a3 first: the delay must come from the earliest matching alert, not the first seen
    {"alert_id": "a3", "patient": "p1", "rule": "hr_high", "state": "firing",
     "event_time": "2026-11-25T10:33:20Z"},  # T0+2000: after ep1's end (T0+600), within 1800 s
    {"alert_id": "a1", "patient": "p1", "rule": "hr_high", "state": "firing",
     "event_time": "2026-11-25T10:02:00Z"},  # T0+120: ep1, delay 120 s
    {"alert_id": "a1", "patient": "p1", "rule": "hr_high", "state": "realert",
     "event_time": "2026-11-25T10:05:00Z"},  # not an alert of its own
    {"alert_id": "a4", "patient": "p1", "rule": "hr_low", "state": "firing",
     "event_ns": (T0 + 3660) * NS},          # ep2 (brady), delay 60 s
    {"alert_id": "a5", "patient": "p2", "rule": "hr_high", "state": "firing",
     "event_ns": str((T0 + 400) * NS)},      # p2's tachycardia, delay 400 s
    {"alert_id": "a5", "patient": "p2", "rule": "hr_high", "state": "resolved",
     "event_ns": str((T0 + 500) * NS)},
    {"alert_id": "a6", "patient": "p2", "rule": "hr_high", "state": "firing",
     "event_time": "2026-11-25T12:01:40Z"},  # T0+7300: in the artefact's [7200, 7210+300]
    {"alert_id": "a7", "patient": "p2", "rule": "spo2_low", "state": "firing",
     "event_time": "2026-11-25T12:30:00Z"},  # T0+9000: no episode, but valid
    {"alert_id": "a8", "patient": "p1", "rule": "hr_high", "state": "firing",
     "event_time": "2026-11-25T11:40:00Z"},  # T0+6000: ep2 ended T0+3900 (+1800 = 5700): false
    {"alert_id": "a10", "patient": "p3", "rule": "hr_high", "state": "firing",
     "event_time": "2026-11-25T12:00:05Z"},  # in p2's artefact, but p3: false, not artefact
]


def valid_spo2(alert: dict) -> bool:
    return alert["rule"] == "spo2_low"


@pytest.fixture
def labels(tmp_path) -> list[Label]:
    path = tmp_path / "labels.csv"
    path.write_text(LABELS_CSV)
    return read_labels(str(path))


def test_module_examples_hold():
    res = doctest.testmod(alarm_eval, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


def test_read_labels_iso_and_seconds(labels):
    assert labels == [
        Label("p1", "episode", "tachycardia", T0 * NS, (T0 + 600) * NS),
        Label("p1", "episode", "bradycardia", (T0 + 3600) * NS, (T0 + 3900) * NS),
        Label("p1", "episode", "tachycardia", (T0 + 10_000) * NS, (T0 + 10_100) * NS),
        Label("p2", "episode", "tachycardia", T0 * NS, (T0 + 300) * NS),
        Label("p2", "artefact", "spike", (T0 + 7200) * NS, (T0 + 7210) * NS),
    ]
    (frac,) = parse_labels(["start,end,patient,type,kind", "0.5,1.25,p,x,episode"])
    assert (frac.start_ns, frac.end_ns) == (500_000_000, 1_250_000_000)


def test_hand_worked_report(labels):
    rep = evaluate(ALERTS, labels, patient_days={"p1": 1.0, "p2": 0.5, "p3": 0.5},
                   valid=valid_spo2)
    # firing: a3 a1 a4 a5 a6 a7 a8 a10 = 8; the realert and the resolution are not alerts
    assert (rep.alerts, rep.other_events) == (8, 2)
    # matched: a1 a3 (ep1), a4 (ep2), a5 (p2) = 4; valid: a7; false: a6 a8 a10
    assert (rep.matched, rep.valid, rep.false_alerts, rep.artefact_alerts) == (4, 1, 3, 1)
    # episodes: p1 tachy, p1 brady, p1 tachy (missed), p2 tachy -> 3 of 4 detected
    assert (rep.episodes, rep.detected) == (4, 3)
    assert rep.recall == 0.75
    assert rep.episodes_by_type == {"bradycardia": 1, "tachycardia": 3}
    assert rep.recall_by_type == {"bradycardia": 1.0, "tachycardia": pytest.approx(2 / 3)}
    assert rep.precision == 5 / 8                       # (4 matched + 1 valid) / 8
    assert rep.alerts_per_episode == pytest.approx(4 / 3)  # 4 matched / 3 detected
    assert rep.patient_days == 2.0
    assert rep.false_alerts_per_patient_day == 1.5      # 3 false / 2 patient-days
    assert rep.median_delay_s == 120.0                  # of 120, 60, 400
    assert rep.median_delay_s_by_type == {"bradycardia": 60.0, "tachycardia": 260.0}
    assert rep.by_rule == {
        "hr_high": {"alerts": 6, "matched": 3, "valid": 0, "false": 3, "artefact": 1},
        "hr_low": {"alerts": 1, "matched": 1, "valid": 0, "false": 0, "artefact": 0},
        "spo2_low": {"alerts": 1, "matched": 0, "valid": 1, "false": 0, "artefact": 0},
    }
    doc = rep.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["precision"] == 0.625 and doc["by_rule"]["hr_low"]["matched"] == 1
    text = "\n".join(rep.lines())
    assert "recall: 0.750 (3 of 4 episodes)" in text
    assert "false alerts per patient-day: 1.50 (over 2.00 patient-days)" in text
    assert "median detection delay: 120 s" in text


def test_without_a_validity_judgement_every_unmatched_alert_is_false(labels):
    rep = evaluate(ALERTS, labels, patient_days=2.0)
    assert (rep.valid, rep.false_alerts) == (0, 4)
    assert rep.precision == 0.5                         # 4 matched / 8
    assert rep.false_alerts_per_patient_day == 2.0


def test_match_window_bounds_are_inclusive_and_before_gives_negative_delay():
    ep = [Label("p", "episode", "t", 1000 * NS, 2000 * NS)]

    def at(s: float) -> dict:
        return {"patient": "p", "rule": "r", "state": "firing", "event_ns": round(s * NS)}

    # end + after exactly (2000 + 60) matches; one ns later does not
    rep = evaluate([at(2060), {**at(2060), "event_ns": 2060 * NS + 1}], ep,
                   patient_days=1, match_after_s=60)
    assert (rep.matched, rep.false_alerts, rep.median_delay_s) == (1, 1, 1060.0)
    # start - before exactly (1000 - 120) matches, and the delay is negative as it is
    rep = evaluate([at(880), at(879.999)], ep, patient_days=1, match_before_s=120)
    assert (rep.matched, rep.median_delay_s) == (1, -120.0)


def test_one_alert_in_two_overlapping_episodes_is_one_matched_alert_detecting_both():
    eps = [Label("p", "episode", "a", 0, 100 * NS), Label("p", "episode", "b", 50 * NS, 200 * NS)]
    rep = evaluate([{"patient": "p", "rule": "r", "state": "firing", "event_ns": 80 * NS}],
                   eps, patient_days=1)
    assert (rep.alerts, rep.matched, rep.detected, rep.recall) == (1, 1, 2, 1.0)
    assert rep.alerts_per_episode == 0.5
    assert rep.median_delay_s_by_type == {"a": 80.0, "b": 30.0}


def test_nothing_to_divide_by_is_none_not_a_made_up_number():
    rep = evaluate([{"patient": "p", "rule": "r", "state": "realert", "event_ns": 0}], [],
                   patient_days=0.0)
    assert (rep.alerts, rep.other_events) == (0, 1)
    assert (rep.recall, rep.precision, rep.alerts_per_episode,
            rep.false_alerts_per_patient_day, rep.median_delay_s) == (None,) * 5
    assert "precision: n/a" in rep.lines()
    ep = [Label("p", "episode", "t", 0, NS)]
    rep = evaluate([], ep, patient_days=1.0)
    assert (rep.recall, rep.recall_by_type, rep.median_delay_s_by_type) == (0.0, {"t": 0.0},
                                                                           {"t": None})


def test_an_alert_without_a_readable_time_is_an_error():
    with pytest.raises(ReplayFormatError) as info:
        evaluate([{"patient": "p", "state": "firing", "event_time": "10:00"}], [], patient_days=1)
    assert info.value.reason == "bad_alert"


def test_patient_days_from_pairs():
    day = 86_400 * NS
    days = patient_days_from([("a", 2 * day), ("b", 7), ("a", day // 2), ("a", day)])
    assert days == {"a": 1.5, "b": 0.0}


@pytest.mark.parametrize("text, reason, where", [
    ("patient,kind,type,start\np,episode,t,0\n", "bad_header", "line 1"),
    ("patient,kind,type,start,end\n#\np,event,t,0,1\n", "bad_row", "line 3"),
    ("patient,kind,type,start,end\np,episode,t,0\n", "bad_row", "line 2"),
    ("patient,kind,type,start,end\n,episode,t,0,1\n", "bad_row", "line 2"),
    ("patient,kind,type,start,end\np,episode,t,2026-11-25T10:00:00,1\n", "bad_time", "line 2"),
    ("patient,kind,type,start,end\np,episode,t,10,9.5\n", "bad_time", "line 2"),
])
def test_bad_labels_file_names_file_and_line(tmp_path, text, reason, where):
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(ReplayFormatError) as info:
        read_labels(str(path))
    assert info.value.reason == reason
    assert info.value.detail.startswith(f"{path}: {where}: ")


def test_unreadable_labels_file(tmp_path):
    with pytest.raises(ReplayFormatError) as info:
        read_labels(str(tmp_path / "none.csv"))
    assert info.value.reason == "unreadable"
