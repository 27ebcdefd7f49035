"""Event-level scoring for benchmarks/anomaly_eval.py.

- Alert: a detector's ``is_anomaly`` held for ``k`` consecutive scored readings
  of one patient-signal (k = 3 for 1/min signals, 2 for sparser ones, 1 for
  window-level detectors). The alert's time is that k-th reading; the run must
  break before another alert can start.
- An episode is detected when an alert of its signal (or of a multivariate
  detector using that signal) starts within [start, end + grace].
- An alert starting outside every such window of its patient-signal is a false
  alert; precision = alerts inside windows / all alerts.
- Detection delay = first matching alert time - episode start.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from anomaly_scenarios import Episode

GRACE_NS = 15 * 60 * 10**9


@dataclass(frozen=True)
class AlertEvent:
    patient: str
    signals: tuple[str, ...]  # signals this alert speaks for
    t_ns: int


class SustainedAlerts:
    """Turns a (patient, key) stream of is_anomaly flags into alert onsets."""

    def __init__(self, k_for: dict[str, int], default_k: int = 3) -> None:
        self.k_for, self.default_k = k_for, default_k
        self.run: dict[tuple[str, str], int] = defaultdict(int)
        self.alerts: list[AlertEvent] = []

    def feed(self, patient: str, key: str, signals: tuple[str, ...], t_ns: int,
             anomalous: bool) -> None:
        run_key = (patient, key)
        if not anomalous:
            self.run[run_key] = 0
            return
        self.run[run_key] += 1
        if self.run[run_key] == self.k_for.get(key, self.default_k):
            self.alerts.append(AlertEvent(patient, signals, t_ns))


def evaluate(alerts: list[AlertEvent], episodes: list[Episode], patient_days: float) -> dict:
    by_ps = defaultdict(list)
    for e in episodes:
        by_ps[(e.patient, e.signal)].append(e)
    first_hit: dict[Episode, int] = {}
    true_alerts = 0
    for a in alerts:
        hit = False
        for sig in a.signals:
            for e in by_ps.get((a.patient, sig), ()):
                if e.start_ns <= a.t_ns <= e.end_ns + GRACE_NS:
                    hit = True
                    if e not in first_hit or a.t_ns < first_hit[e]:
                        first_hit[e] = a.t_ns
        true_alerts += hit
    n_alerts = len(alerts)
    precision = true_alerts / n_alerts if n_alerts else 0.0
    recall = len(first_hit) / len(episodes) if episodes else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_kind = {}
    for kind in sorted({e.kind for e in episodes}):
        eps = [e for e in episodes if e.kind == kind]
        delays = [(first_hit[e] - e.start_ns) / 60e9 for e in eps if e in first_hit]
        per_kind[kind] = {"episodes": len(eps), "recall": round(len(delays) / len(eps), 3),
                          "median_delay_min": round(statistics.median(delays), 1) if delays
                          else None}
    delays = [(first_hit[e] - e.start_ns) / 60e9 for e in first_hit]
    return {"alerts": n_alerts, "false_alerts": n_alerts - true_alerts,
            "false_alerts_per_patient_day": round((n_alerts - true_alerts) / patient_days, 3),
            "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            "median_delay_min": round(statistics.median(delays), 1) if delays else None,
            "per_episode_type": per_kind}
