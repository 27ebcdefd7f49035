"""``vitalstream run`` keeps its state by default (issue 9, defect 2).

The same command is started, stopped with SIGTERM while a window is open, and started
again: every window then equals the batch aggregate of what was published, none is
missing and none is written twice with different values. The default state directory
(``vitalstream-data/state`` under the working directory) is created on the first run.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import OutMessage
from vitalstream.stream.embedded import VictoriaMetrics, free_port
from vitalstream.testing import metric as _metric

NS = 1_000_000_000
WINDOW_S, LATENESS_S = 60, 30
CLI = [sys.executable, "-m", "vitalstream"]


def _message(device: str, value: float, t_ns: int) -> OutMessage:
    body = {"patient": "p-durable", "readings": [
        {"signal": "heart_rate", "value": value, "unit": "/min", "t_ns": t_ns}]}
    return OutMessage(0.0, f"vitalstream/{device}/json", json.dumps(body).encode())


class _Run:
    """``vitalstream run`` in a subprocess, as a user starts it."""

    def __init__(self, cwd: Path, env: dict, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([*CLI, "run", "--config", "site.yaml", "--metrics-port",
                                      str(self.port), *extra], cwd=cwd, env=env,
                                     stderr=subprocess.PIPE, text=True)

    def wait_acked(self, n: int, mqtt_url: str, timeout_s: float = 30.0,
                   canary: OutMessage | None = None) -> int:
        """Until ``n`` messages were acknowledged; re-publishes ``canary`` until the first
        one arrives (the subscription exists only once the process is up). The count."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = _metric(self.port, "vitalstream_messages_acked_total")
            if got >= n:
                time.sleep(0.5)  # canaries still in flight
                return int(_metric(self.port, "vitalstream_messages_acked_total"))
            if canary is not None and got < 1:
                publish([canary], mqtt_url, progress=False)
            time.sleep(0.3)
        raise AssertionError(f"pipeline acknowledged fewer than {n} messages")

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout_s: float = 60.0) -> dict:
        try:
            _, err = self.proc.communicate(timeout=timeout_s)
        finally:
            self.proc.kill()
        assert self.proc.returncode == 0, err
        return json.loads(err.strip().splitlines()[-1])


def test_sigterm_mid_window_then_the_same_command_completes_every_window(
        mosquitto, redis_server, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.yaml").write_text(
        f"mqtt: {{client_id: vs-durable}}\n"
        f"influx: {{spool_dir: {tmp_path}/spool}}\n"
        f"windows: {{size_s: {WINDOW_S}, allowed_lateness_s: {LATENESS_S}}}\n")
    with VictoriaMetrics(tmp_path / "vm") as vm:
        env = {**os.environ, "VITALSTREAM_MQTT_URL": mosquitto.url,
               "VITALSTREAM_REDIS_URL": redis_server.url, "VITALSTREAM_INFLUX_URL": vm.url}
        env.pop("VITALSTREAM_STATE_DIR", None)
        now = time.time_ns()
        # Part 1: 100 s of readings up to 1 s ago; the last one's window closes at least
        # LATENESS_S after now, so it is open when the process is stopped.
        part1 = [(now - (100 - 2 * i) * NS, 60.0 + i % 30) for i in range(50)]
        canary = _message("d-canary", 70.0, now - 200 * NS)
        run1 = _Run(site, env)
        base = run1.wait_acked(1, mosquitto.url, canary=canary)
        publish([_message("d1", v, t) for t, v in part1], mosquitto.url, progress=False)
        run1.wait_acked(base + len(part1), mosquitto.url)
        last_window_ns = part1[-1][0] - part1[-1][0] % (WINDOW_S * NS)
        totals1 = run1.stop()
        assert totals1["acked"] >= base + len(part1)
        assert (site / "vitalstream-data" / "state").is_dir()  # the documented default
        open_before = [t for r in vm.export('vitals_1m_count{device="d1"}') for t in r["timestamps"]]
        assert last_window_ns // 10**6 not in open_before  # it was still open at the stop

        # Part 2, after the restart: the open window gets more readings, and the next one.
        now2 = time.time_ns()
        part2 = [(max(part1[-1][0] + NS, now2 - 20 * NS) + i * 2 * NS, 90.0 + i) for i in range(15)]
        run2 = _Run(site, env, "--idle-stop", "4")
        run2.wait_acked(1, mosquitto.url, canary=canary)
        publish([_message("d1", v, t) for t, v in part2], mosquitto.url, progress=False)
        run2.wait()
        series = vm.export('{__name__=~"vitals_1m_count|vitals_1m_mean", device="d1"}')

    expected = collections.defaultdict(list)
    for t, v in part1 + part2:
        expected[(t - t % (WINDOW_S * NS)) // 10**6].append(v)
    got: dict[tuple[str, int], set] = collections.defaultdict(set)
    for s in series:
        for t, v in zip(s["timestamps"], s["values"]):
            got[(s["metric"]["__name__"], t)].add(v)
    # written once, or rewritten with the same value (VictoriaMetrics keeps both samples)
    assert all(len(v) == 1 for v in got.values()), got
    assert sorted(t for name, t in got if name == "vitals_1m_count") == sorted(expected)
    for t, vals in expected.items():
        assert got[("vitals_1m_count", t)] == {len(vals)}
        (mean,) = got[("vitals_1m_mean", t)]
        assert mean == pytest.approx(np.mean(vals), rel=1e-10)
    assert len(expected[last_window_ns // 10**6]) > sum(1 for t, _ in part2
                                                        if t - t % (WINDOW_S * NS) == last_window_ns)
