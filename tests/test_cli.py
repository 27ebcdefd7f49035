"""The ``vitalstream`` command line, run as a user would (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import redis

from vitalstream.stream.embedded import VictoriaMetrics

CLI = [sys.executable, "-m", "vitalstream"]


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, **kw)


def test_help_explains_every_command():
    out = _run("--help").stdout
    for cmd in ("demo", "run", "simulate", "decode", "import"):
        assert cmd in out
    run_help = _run("run", "--help").stdout
    for opt in ("--mqtt-url", "--redis-url", "--influx-url", "--influx-token", "--influx-org",
                "--influx-bucket", "--config", "--workers", "--state-dir", "--no-state"):
        assert opt in run_help
    for var in ("VITALSTREAM_MQTT_URL", "VITALSTREAM_REDIS_URL", "VITALSTREAM_INFLUX_URL"):
        assert var in run_help


def test_decode_ble_heart_rate_characteristic():
    # 0x1E: uint8 HR, sensor contact detected, energy expended and RR present.
    # 0x55 = 85 /min; energy 0x0032 = 50 kJ; RR 0x0021 = 33/1024 s.
    res = _run("decode", "ble", "--uuid", "2A37", "--hex", "1E 55 32 00 21 00")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["hr_bpm"] == 85
    assert doc["energy_expended_kj"] == 50
    assert doc["rr_intervals_s"] == [33 / 1024]


def test_decode_senml_file_resolves_base_fields_and_units(tmp_path):
    pack = [{"bn": "dev-9:", "bt": 1764064800, "bu": "beat/min", "n": "heart_rate", "v": 72},
            {"n": "spo2", "u": "/", "v": 0.97, "t": 1},
            {"n": "bp_systolic", "u": "Pa", "v": 16000}]
    f = tmp_path / "pack.json"
    f.write_text(json.dumps(pack))
    out = json.loads(_run("decode", "senml", str(f), "--device", "dev-9").stdout)
    assert [(r["signal"], r["unit"]) for r in out] == [
        ("heart_rate", "/min"), ("spo2", "%"), ("bp_systolic", "mm[Hg]")]
    assert out[0]["value"] == 72 and out[0]["event_ns"] == 1764064800 * 10**9
    assert abs(out[1]["value"] - 97.0) < 1e-12 and out[1]["event_ns"] == 1764064801 * 10**9
    assert abs(out[2]["value"] - 16000 / 133.322387415) < 1e-9


def test_run_takes_services_from_environment_and_stops_gracefully_on_sigterm(
        mosquitto, redis_server, tmp_path):
    with VictoriaMetrics(tmp_path / "vm") as vm:
        env = {**os.environ, "VITALSTREAM_MQTT_URL": mosquitto.url,
               "VITALSTREAM_REDIS_URL": redis_server.url, "VITALSTREAM_INFLUX_URL": vm.url,
               "VITALSTREAM_STATE_DIR": str(tmp_path / "state")}
        cfg = tmp_path / "site.yaml"
        cfg.write_text(f"mqtt: {{client_id: vs-cli}}\ninflux: {{spool_dir: {tmp_path}/spool}}\n"
                       "pipeline: {max_clock_skew_s: null}\n")
        proc = subprocess.Popen([*CLI, "run", "-v", "--config", str(cfg), "--metrics-port", "0"],
                                env=env, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
        reader.start()
        try:
            from vitalstream.simulators.publisher import publish
            from vitalstream.simulators.scenario import OutMessage

            deadline = time.monotonic() + 30  # until the broker granted the subscription
            while not any("mqtt subscribed" in ln for ln in lines) and time.monotonic() < deadline:
                time.sleep(0.1)
            t0 = 1_764_064_800_000_000_000
            msgs = [OutMessage(0.0, "vitalstream/cli-dev/json", json.dumps(
                {"readings": [{"signal": "heart_rate", "value": 60 + i, "t_ns": t0 + i * 10**9}]}
            ).encode()) for i in range(20)]
            msgs.append(OutMessage(0.0, "vitalstream/cli-dev/json", b"not json"))
            publish(msgs, mosquitto.url, progress=False)
            time.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            reader.join(timeout=10)
            err = "".join(lines)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        totals = json.loads(err.strip().splitlines()[-1])
        assert totals["messages"] == totals["acked"] == 21
        assert totals["readings"] == 20 and totals["dead_letters"] == 1
        rows = vm.export('vitals_value{device="cli-dev"}')
    assert sorted(rows[0]["values"]) == [float(60 + i) for i in range(20)]
    r = redis.Redis.from_url(redis_server.url)
    assert r.xlen("vitalstream:deadletter") >= 1
