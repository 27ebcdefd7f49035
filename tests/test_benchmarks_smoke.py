"""Smoke run of benchmarks/pipeline_bench.py at a tiny size: JSON shape and complete counts.

Not a timing test: rates here are far below any limit. It checks that the
benchmark's line parses, names its workload, reports both systems and their
ratio, and that every valid reading published (duplicates excluded) was found
in VictoriaMetrics, every reading is covered by a 1-minute aggregate, and every
expected alert episode fired - for vitalstream and for the naive baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream.stream.embedded import Mosquitto, RedisServer, VictoriaMetrics

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "pipeline_bench.py"
pytestmark = pytest.mark.services


def _binaries_or_skip() -> None:
    missing = [c.binary_path for c in (Mosquitto, RedisServer, VictoriaMetrics)
               if not os.access(os.environ.get(c.binary_env) or c.binary_path, os.X_OK)]
    if missing:
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        (pytest.fail if ci else pytest.skip)(f"service binaries missing: {missing}")


@pytest.fixture(scope="module")
def bench() -> dict:
    _binaries_or_skip()
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rates", "300", "--step-s", "1.5", "--drain", "400",
         "--devices", "20", "--idle-stop-s", "4", "--publishers", "1"],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "the benchmark prints exactly one JSON line on stdout"
    return json.loads(lines[0])


def test_json_line_names_workload_machine_both_systems_and_ratio(bench):
    assert set(bench) == {"workload", "machine", "vitalstream", "naive", "ratio"}
    wl = bench["workload"]
    assert wl["devices"] == 20 and wl["qos"] == 1 and wl["readings_per_message"] == 1
    assert wl["step_rates_msgs_per_s"] == [300]
    assert bench["machine"]["cores"] == os.cpu_count()
    for key in ("sustained_readings_per_s", "drain_readings_per_s", "alert_latency_p50_first_step",
                "cpu_us_per_reading", "peak_rss_mib"):
        assert key in bench["ratio"]


@pytest.mark.parametrize("system", ["vitalstream", "naive"])
def test_every_valid_reading_of_every_step_is_in_the_store(bench, system):
    res = bench[system]
    assert [s["rate_msgs_per_s"] for s in res["steps"]] == [300]
    for step in res["steps"]:
        # 300 msg/s for 1.5 s: 450 messages, of which the re-sent duplicates carry no new reading
        assert step["messages"] == round(step["rate_msgs_per_s"] * 1.5)
        assert step["readings_expected"] == step["messages"] - step["duplicates"]
        assert step["readings_stored"] == step["readings_expected"]
        assert step["passed"] is True
    assert res["stored_readings_total"] == sum(s["readings_expected"] for s in res["steps"])
    assert res["aggregate_count_sum"] == res["stored_readings_total"]
    assert res["drain"]["readings_stored"] == res["drain"]["readings_expected"]
    assert res["drain"]["messages"] == 400


@pytest.mark.parametrize("system", ["vitalstream", "naive"])
def test_every_expected_alert_fired_once(bench, system):
    fired, expected = bench[system]["alerts_fired_vs_expected"]
    assert fired == expected
    assert bench[system]["sustained_msgs_per_s"] == 300
