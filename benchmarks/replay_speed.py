"""Speed of ``vitalstream replay``: 100 patient-days of 1/min data, end to end, under a minute?

    python3 benchmarks/replay_speed.py

Generates seeded data with ``benchmarks/alarm_data.py`` (real MIMIC-II segments, 1/min heart
rate, SpO2, respiration and cuff pressure, no hourly stays): 100 patients x 1 day, and 100 x 2
days (about 0.9 M readings, the size issue 10 names). Then times the command itself (process
start, reading the CSV, the flow with the packaged rules and detectors, writing alerts) as a
subprocess, with ``--workers 1`` (the baseline) and with the default workers (patients split
over the cores). Prints one JSON line: seconds, readings per second, and the ratio of each run
against the one-process baseline of the same data in this run. Run it on an idle machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alarm_data import generate  # noqa: E402


def _time(path: Path, workers: int | None) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "vitalstream", "replay", str(path), "--alerts-out",
           str(path.parent / "alerts.jsonl")]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    events = sum(1 for _ in open(path.parent / "alerts.jsonl"))
    return seconds, events


def main() -> int:
    out: dict = {"benchmark": "replay_speed", "target_s": 60}
    with tempfile.TemporaryDirectory() as tmp:
        for days in (1, 2):
            ds = generate(7, minute_patients=100, hourly_patients=0, days_per_minute_patient=days)
            d = Path(tmp) / f"d{days}"
            d.mkdir()
            ds.write(d)
            n = sum(1 for _ in open(d / "readings.csv")) - 1
            base_s, base_events = _time(d / "readings.csv", 1)
            par_s, par_events = _time(d / "readings.csv", None)
            out[f"patient_days_{100 * days}"] = {
                "readings": n, "one_process_s": round(base_s, 1), "default_s": round(par_s, 1),
                "readings_per_s": round(n / par_s), "ratio_vs_one_process": round(par_s / base_s, 3),
                "same_alert_events": base_events == par_events, "under_target": par_s < 60}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
