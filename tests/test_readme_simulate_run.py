"""The README's `vitalstream simulate` then `vitalstream run`, as a user runs them (issue 9, defect 3).

Two processes, as in two terminals: `run` first (default settings, so the
pipeline's clock-skew check is on), then the README's `simulate` line with fewer
patients. Afterwards the stores are compared with the simulator's ground truth:
every valid reading stored at its device time, none clock-corrected, every
re-sent reading dropped by dedup, one alert per injected episode. With a fixed
simulator start far from now, every device time was replaced by the receive
time and dedup found no duplicates at all.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from vitalstream.model import Quality
from vitalstream.simulators.truth import (
    check_alerts,
    expected_series,
    of_type,
    read_ground_truth,
    scenario_of,
)
from vitalstream.stream.embedded import RedisServer, VictoriaMetrics

README = Path(__file__).resolve().parent.parent / "README.md"
PATIENTS = 50  # the README says 200; 50 keeps the run short and still has episodes
IDLE_STOP_S = 10.0


def _readme_simulate_argv() -> list[str]:
    """The `vitalstream simulate` line of the README's "Running it" block, as argv."""
    text = README.read_text()
    block = text[text.index("## Running it"):]
    line = next(x for x in block.splitlines() if x.startswith("vitalstream simulate "))
    argv = shlex.split(line.split("#", 1)[0])[1:]
    assert "--patients" in argv and "--ground-truth" in argv, line
    return argv


def _with(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return argv[:i + 1] + [value] + argv[i + 2:]


def _export_all(vm: VictoriaMetrics, match: str) -> list[dict]:
    """Like ``vm.export`` but up to a day ahead: export stops at now by default, and the
    end of a centred simulated period is still up to 270 s in the future."""
    vm.flush()
    q = urllib.parse.urlencode({"match[]": match, "start": "0", "end": str(time.time() + 86_400)})
    with urllib.request.urlopen(f"{vm.url}/api/v1/export?{q}", timeout=30) as resp:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def _totals(stderr: str) -> dict:
    """`run` prints its totals as the last JSON line on stderr."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no totals on stderr:\n{stderr[-3000:]}")


@pytest.fixture(scope="module")
def readme_run(mosquitto, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme")
    # Private stores: the streams and series names are the defaults a user gets.
    with RedisServer(tmp / "redis") as rs, VictoriaMetrics(tmp / "vm") as vm:
        run_log = tmp / "run.stderr"
        run_cmd = [sys.executable, "-m", "vitalstream", "-v", "run", "--mqtt-url", mosquitto.url,
                   "--redis-url", rs.url, "--influx-url", vm.url, "--metrics-port", "0",
                   "--client-id", f"readme-{uuid.uuid4().hex[:8]}", "--idle-stop", str(IDLE_STOP_S)]
        with open(run_log, "w") as log:
            run = subprocess.Popen(run_cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while "mqtt connected" not in run_log.read_text():
                assert run.poll() is None, run_log.read_text()[-3000:]
                assert time.monotonic() < deadline, "run did not connect"
                time.sleep(0.1)
            time.sleep(0.5)  # the subscription follows the connect
            sim_argv = _readme_simulate_argv()
            sim_argv = _with(_with(sim_argv, "--patients", str(PATIENTS)), "--ground-truth", "gt.jsonl")
            before_ns = time.time_ns()
            sim = subprocess.run([sys.executable, "-m", "vitalstream", *sim_argv, "--mqtt-url",
                                  mosquitto.url, "--no-progress"], cwd=tmp, capture_output=True,
                                 text=True, timeout=300)
            after_ns = time.time_ns()
            assert sim.returncode == 0, sim.stderr
            assert run.wait(timeout=120) == 0, run_log.read_text()[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        truth = read_ground_truth(tmp / "gt.jsonl")
        series = _export_all(vm, '{__name__=~"vitals_value|vitals_quality"}')
        r = redis.Redis.from_url(rs.url)
        alerts = [{k.decode(): v.decode() for k, v in e[1].items()}
                  for e in r.xrange("vitalstream:alerts")]
        dead = r.xlen("vitalstream:deadletter")
        r.close()
    return {"truth": truth, "totals": _totals(run_log.read_text()), "series": series,
            "alerts": alerts, "dead": dead, "sim_stderr": sim.stderr,
            "sim_started": (before_ns, after_ns)}


def _stored(series: list[dict], name: str) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    out: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for s in series:  # one series may come in several export lines
        m = s["metric"]
        if m["__name__"] == name:
            out.setdefault((m["patient"], m["device"], m["signal"]), []).extend(
                zip(s["timestamps"], s["values"]))
    return {k: sorted(v) for k, v in out.items()}


def test_simulator_places_the_period_around_now(readme_run):
    head = readme_run["truth"][0]
    assert head["patients"] == PATIENTS
    assert "warning" not in readme_run["sim_stderr"]  # the README's numbers fit the skew
    # 600 s at x10 is published in 60 s: centred, the period starts 270 s before the command.
    half_ns = round((head["duration_s"] - head["duration_s"] / head["time_scale"]) / 2 * 10**9)
    before_ns, after_ns = readme_run["sim_started"]
    assert before_ns - half_ns - 10**6 <= head["start_ns"] <= after_ns - half_ns


def test_every_valid_reading_stored_at_its_device_time(readme_run):
    expected = expected_series(scenario_of(readme_run["truth"]).valid_readings())
    stored = _stored(readme_run["series"], "vitals_value")
    assert stored.keys() == expected.keys()
    for key, want in expected.items():
        got = stored[key]
        # A clock-corrected reading would sit at its receive time instead.
        assert [t for t, _ in got] == [t for t, _ in want], key
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-11), key


def test_no_reading_clock_corrected(readme_run):
    quality = [int(v) for s in readme_run["series"] if s["metric"]["__name__"] == "vitals_quality"
               for v in s["values"]]
    assert not [q for q in quality if q & Quality.CLOCK_CORRECTED]


def test_dedup_drops_every_resent_reading(readme_run):
    counts = of_type(readme_run["truth"], "counts")[0]
    assert counts["duplicates"] > 0
    assert readme_run["totals"]["duplicates"] == counts["duplicate_readings"]
    assert readme_run["totals"]["readings"] == counts["valid_readings"]
    assert readme_run["totals"]["acked"] == readme_run["totals"]["messages"] == counts["messages"]


def test_alerts_match_the_injected_episodes(readme_run):
    check = check_alerts(readme_run["truth"], readme_run["alerts"])
    assert check.episodes > 0, "the scenario must inject episodes for this to mean anything"
    assert check.ok, check


def test_every_malformed_message_dead_lettered(readme_run):
    assert readme_run["dead"] == len(of_type(readme_run["truth"], "malformed"))
