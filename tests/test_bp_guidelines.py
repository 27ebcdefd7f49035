"""Blood pressure classified by guideline from the mean of repeated readings.

ACC/AHA 2017 (Whelton et al., Hypertension 2018), the 2018 Chinese Guidelines for the
Management of Hypertension, ESC/ESH 2018 (Williams et al., Eur Heart J 2018). Expected
classes are read by hand off each guideline's table, at every boundary on both sides.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vitalstream.operators.bp import GUIDELINES, classify, is_crisis

# (sbp, dbp, class): each threshold just below and at/above, systolic and diastolic alone
ACC_AHA = [
    (119, 79, "normal"), (119.9, 79.9, "normal"),
    (120, 79, "elevated"), (129, 79, "elevated"), (129.9, 79, "elevated"),
    (130, 79, "stage-1"), (139, 79, "stage-1"), (119, 80, "stage-1"), (119, 89, "stage-1"),
    (125, 80, "stage-1"),  # elevated needs DBP < 80
    (140, 79, "stage-2"), (119, 90, "stage-2"), (180, 79, "stage-2"), (119, 120, "stage-2"),
    (180.1, 79, "crisis"), (181, 79, "crisis"), (119, 121, "crisis"), (119, 120.5, "crisis"),
]
CHINA = [
    (119, 79, "normal"), (120, 79, "high-normal"), (119, 80, "high-normal"),
    (139, 89, "high-normal"), (139.9, 89.9, "high-normal"),
    (140, 79, "grade-1"), (119, 90, "grade-1"), (159, 99, "grade-1"),
    (160, 79, "grade-2"), (119, 100, "grade-2"), (179, 109, "grade-2"),
    (180, 79, "grade-3"), (119, 110, "grade-3"),
]
ESC_ESH = [
    (119, 79, "optimal"), (120, 79, "normal"), (119, 80, "normal"), (129, 84, "normal"),
    (130, 79, "high-normal"), (119, 85, "high-normal"), (139, 89, "high-normal"),
    (140, 79, "grade-1"), (119, 90, "grade-1"), (159, 99, "grade-1"),
    (160, 79, "grade-2"), (119, 100, "grade-2"), (179, 109, "grade-2"),
    (180, 79, "grade-3"), (119, 110, "grade-3"),
]


@pytest.mark.parametrize("sbp,dbp,cls", ACC_AHA)
def test_acc_aha_2017_boundaries(sbp, dbp, cls) -> None:
    assert classify([(sbp, dbp)], "acc-aha-2017").category == cls


@pytest.mark.parametrize("sbp,dbp,cls", CHINA)
def test_china_2018_boundaries(sbp, dbp, cls) -> None:
    assert classify([(sbp, dbp)], "china-2018").category == cls


@pytest.mark.parametrize("sbp,dbp,cls", ESC_ESH)
def test_esc_esh_2018_boundaries(sbp, dbp, cls) -> None:
    assert classify([(sbp, dbp)], "esc-esh-2018").category == cls


def test_class_is_from_the_mean_not_one_reading() -> None:
    # 150/95 and 128/78: mean 139/86.5 -> ACC/AHA stage-1 (one reading alone would be stage-2)
    c = classify([(150, 95), (128, 78)], "acc-aha-2017")
    assert (c.sbp_mean, c.dbp_mean, c.category, c.n_readings) == (139.0, 86.5, "stage-1", 2)
    # unrounded mean 129.5 is 120-129 under ACC/AHA: elevated, not stage-1
    assert classify([(129, 70), (130, 70)], "acc-aha-2017").category == "elevated"


def test_same_pressure_differs_by_guideline_130_80_vs_140_90() -> None:
    r = [(134, 82), (136, 84)]  # mean 135/83
    assert [classify(r, g).category for g in ("acc-aha-2017", "china-2018", "esc-esh-2018")] == [
        "stage-1", "high-normal", "high-normal"]


@pytest.mark.parametrize("guideline,sbp,dbp,isolated", [
    ("acc-aha-2017", 130, 79, True), ("acc-aha-2017", 129, 79, False), ("acc-aha-2017", 130, 80, False),
    ("china-2018", 140, 89, True), ("china-2018", 139, 89, False), ("china-2018", 140, 90, False),
    ("esc-esh-2018", 140, 89, True), ("esc-esh-2018", 139, 70, False), ("esc-esh-2018", 150, 90, False),
])
def test_isolated_systolic_hypertension(guideline, sbp, dbp, isolated) -> None:
    assert classify([(sbp, dbp)], guideline).isolated_systolic is isolated


def test_acc_aha_crisis_on_one_reading() -> None:
    assert is_crisis(181, 80) and is_crisis(120, 121) and is_crisis(180.5, 60)
    assert not is_crisis(180, 120) and not is_crisis(150, 95)


@pytest.mark.parametrize("readings", [[], [(120,)], [("120", 80)], [(True, 80)], "120/80",
                                      [(float("nan"), 80)]])
def test_bad_readings_raise_value_error(readings) -> None:
    with pytest.raises(ValueError):
        classify(readings, "acc-aha-2017")


def test_every_guideline_cites_its_source() -> None:
    assert set(GUIDELINES) == {"acc-aha-2017", "china-2018", "esc-esh-2018"}
    assert all("2018" in g.citation for g in GUIDELINES.values())


def _cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vitalstream", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_bp_class_one_line_per_input_and_errors_per_line() -> None:
    lines = [json.dumps({"readings": [[142, 85], [138, 83]]}), "nope",
             json.dumps({"readings": []}), json.dumps({"readings": [[150, 80]]})]
    p = _cli("bp-class", "--guideline", "esc-esh-2018", "-", stdin="\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == 4
    # mean 140/84: ESC/ESH grade 1 (SBP 140-159), isolated systolic (>= 140 and < 90)
    assert {k: out[0][k] for k in ("class", "sbp_mean", "dbp_mean", "isolated_systolic",
                                   "guideline")} == {
        "class": "grade-1", "sbp_mean": 140.0, "dbp_mean": 84.0, "isolated_systolic": True,
        "guideline": "esc-esh-2018"}
    assert "error" in out[1] and "error" in out[2]
    assert out[3]["class"] == "grade-1"


def test_cli_bp_class_missing_file_or_guideline_exits_2(tmp_path) -> None:
    p = _cli("bp-class", "--guideline", "china-2018", str(tmp_path / "absent"), stdin="")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert _cli("bp-class", "-", stdin="").returncode == 2  # --guideline is required
