"""User errors end in one line naming the file, key or URL and the reason, and exit 2
(issue 9, defect 5): no traceback, whatever the mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vitalstream import __version__
from vitalstream.stream.embedded import free_port

CLI = [sys.executable, "-m", "vitalstream"]


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=90, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})


def _one_line_error(res: subprocess.CompletedProcess, *must_name: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for name in must_name:
        assert name in lines[0], lines[0]
    return lines[0]


def test_mqtt_url_of_another_scheme_is_named(tmp_path):
    res = _run("run", "--mqtt-url", "http://127.0.0.1:1883", "--no-state", cwd=tmp_path)
    _one_line_error(res, "--mqtt-url", "http://127.0.0.1:1883", "mqtt://")


def test_simulate_with_a_bad_mqtt_url_is_named(tmp_path):
    res = _run("simulate", "--patients", "1", "--mqtt-url", "http://x", cwd=tmp_path)
    _one_line_error(res, "--mqtt-url", "http://x")


def test_missing_rules_file_is_named(tmp_path):
    (tmp_path / "site.yaml").write_text("rules: {path: no-such-rules.yaml}\n")
    res = _run("run", "--config", "site.yaml", "--no-state", cwd=tmp_path)
    _one_line_error(res, str(tmp_path / "no-such-rules.yaml"), "No such file")


def test_malformed_rules_file_is_named(tmp_path):
    (tmp_path / "rules.yaml").write_text("rules:\n  - {name: x, signal: heart_rate\n")
    (tmp_path / "site.yaml").write_text("rules: {path: rules.yaml}\n")
    res = _run("run", "--config", "site.yaml", "--no-state", cwd=tmp_path)
    _one_line_error(res, str(tmp_path / "rules.yaml"), "bad_yaml")


def test_bad_rule_is_named_with_its_file(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {name: hot, signal: body_temp, op: '>>', threshold: 38}\n")
    (tmp_path / "site.yaml").write_text("rules: {path: rules.yaml}\n")
    res = _run("run", "--config", "site.yaml", "--no-state", cwd=tmp_path)
    _one_line_error(res, "rules.yaml", "hot", "'>>'")


@pytest.mark.parametrize("body, named", [
    ("windows: {size_s: sixty}\n", ["windows.size_s", "a number", "'sixty'"]),
    ("pipeline: {identity: everyone}\n", ["pipeline.identity", "payload or registry"]),
    ("mqtt: {qos: 3}\n", ["mqtt.qos", "0, 1 or 2"]),
    ("windows: {size_s: 0}\n", ["windows.size_s", "greater than 0"]),
    ("nonsense: {a: 1}\n", ["'nonsense'", "unknown_key"]),
    ("windows: [1, 2\n", ["site.yaml", "bad_yaml"]),
])
def test_config_values_are_validated_when_loaded(tmp_path, body, named):
    (tmp_path / "site.yaml").write_text(body)
    res = _run("run", "--config", "site.yaml", "--no-state", cwd=tmp_path)
    _one_line_error(res, "site.yaml", *named)


def test_environment_values_are_validated_and_named(tmp_path):
    res = subprocess.run([*CLI, "run", "--no-state"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                                            "VITALSTREAM_REDIS_URL": "mysql://db"})
    _one_line_error(res, "VITALSTREAM_REDIS_URL", "mysql://db")


def test_decode_of_a_missing_file_is_named(tmp_path):
    _one_line_error(_run("decode", "senml", "no-such-pack.json", cwd=tmp_path), "no-such-pack.json")


def test_import_of_a_missing_file_is_named(tmp_path):
    _one_line_error(_run("import", "no-such-points.json", cwd=tmp_path), "no-such-points.json")


def test_devices_list_with_redis_down_is_one_line(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    _one_line_error(_run("devices", "list", "--redis-url", url, cwd=tmp_path), "redis")


def test_version_and_verbose_after_the_subcommand(tmp_path):
    res = _run("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"vitalstream {__version__}"
    res = _run("decode", "-v", "ble", "--uuid", "2A37", "--hex", "06 48")
    assert res.returncode == 0, res.stderr
    assert '"hr_bpm": 72' in res.stdout  # 0x48 = 72 /min (GATT Heart Rate Measurement, uint8)
