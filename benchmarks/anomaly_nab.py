"""Numenta Anomaly Benchmark runner for benchmarks/anomaly_eval.py (needs a local
checkout: data/<category>/<file>.csv with ``timestamp,value`` and
labels/combined_windows.json). Univariate detectors without priors (the series
are not vital signs): half-life = 100 median sampling intervals of the file,
warm-up 30 readings, alert = 2 consecutive anomalous readings. No clinical
threshold baseline exists here; the figures are absolute."""

from __future__ import annotations

import csv
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from anomaly_scenarios import Episode, S
from anomaly_scoring import SustainedAlerts, evaluate

from vitalstream.operators.anomaly import Context, EwZScore, RollingQuantileScore


def _ns(text: str) -> int:
    dt = datetime.fromisoformat(text.strip().replace(" ", "T")).replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * S + dt.microsecond * 1000


def run_nab(root: Path, max_files: int | None = None) -> dict:
    labels_path = root / "labels" / "combined_windows.json"
    if not labels_path.exists():
        return {"skipped": f"no {labels_path}"}
    labels = json.loads(labels_path.read_text())
    files = sorted(labels)[:max_files]
    series = {}
    for rel in files:
        path = root / "data" / rel
        if not path.exists():
            continue
        with open(path, newline="") as fh:
            series[rel] = [(_ns(r["timestamp"]), float(r["value"])) for r in csv.DictReader(fh)]
    episodes = [Episode(rel, "value", rel.split("/")[0], _ns(a), _ns(b))
                for rel in series for a, b in labels[rel]]
    days = sum((s[-1][0] - s[0][0]) / (86400 * S) for s in series.values() if s)
    res = {"files": len(series), "episodes": len(episodes), "series_days": round(days, 1),
           "detectors": {}}
    ctx = Context()
    for kind in ("ewz", "quantile"):
        al = SustainedAlerts({}, default_k=2)
        for rel, pts in series.items():
            gaps = [b[0] - a[0] for a, b in zip(pts, pts[1:]) if b[0] > a[0]]
            step_s = statistics.median(gaps) / S if gaps else 60.0
            cfg = EwZScore(half_life_s=100 * step_s) if kind == "ewz" else RollingQuantileScore()
            det = cfg.build()
            for t, v in pts:
                s = det.process(v, t, ctx)
                al.feed(rel, "value", ("value",), t, s.is_anomaly)
        res["detectors"][kind] = evaluate(al.alerts, episodes, max(days, 1e-9))
    return res
