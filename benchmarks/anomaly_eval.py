"""Evaluate the anomaly detectors on labelled data against a fixed-threshold baseline.

    python benchmarks/anomaly_eval.py [--nab PATH] [--quick]

Prints ONE JSON line on stdout (a human table goes to stderr). Workload:
(1) synthetic patients with ground-truth episodes and artefacts
(benchmarks/anomaly_scenarios.py), (2) MIMIC-II s00001 and Challenge 2012
records from shared/reference/vitals with injected, labelled episodes, (3) the
Numenta Anomaly Benchmark when ``--nab`` points at a local checkout. Event-level
scoring is defined in benchmarks/anomaly_scoring.py. Baseline, run in the same
process: fixed thresholds HR > 120 /min, SpO2 < 90 %, temp >= 38 Cel,
SBP >= 180 mm[Hg], RR >= 25 /min (NEWS2's 3-point band), with the same validity
filter (no LOW_QUALITY, plausible values) and the same k-sustained alerting.
Costs: microseconds per update (score + learn) and bytes per patient-signal
(``deep_sizeof`` without the shared config), with ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anomaly_nab import run_nab  # noqa: E402
from anomaly_scenarios import S, PatientStream, challenge, mimic, simulator, synthetic  # noqa: E402
from anomaly_scoring import SustainedAlerts, evaluate  # noqa: E402

from vitalstream.model import Quality, WindowAggregate, vital_stats  # noqa: E402
from vitalstream.operators.anomaly import (Context, EwZScore, HalfSpaceTreesScore,  # noqa: E402
                                           PatientAnomalyLogic, RollingQuantileScore,
                                           deep_sizeof)
from vitalstream.operators.anomaly.base import plausible  # noqa: E402

REF = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "vitals"
SIGNALS = ("heart_rate", "spo2", "resp_rate", "body_temp", "bp_systolic")
K_FOR = {"body_temp": 2, "bp_systolic": 2, "vitals": 1}
THRESHOLDS = {"heart_rate": lambda v: v > 120.0, "spo2": lambda v: v < 90.0,
              "body_temp": lambda v: v >= 38.0, "bp_systolic": lambda v: v >= 180.0,
              "resp_rate": lambda v: v >= 25.0}
HST_FEATURES = ("heart_rate", "resp_rate", "spo2")
WINDOW_NS = 5 * 60 * S


def univariate(kind: str, warmup_s: float = 3600.0) -> dict:
    """The shipped configuration (core/data/rules-default.yaml): 1 h minimum baseline age."""
    cls = EwZScore if kind == "ewz" else RollingQuantileScore
    return {s: cls(signal=s, warmup_s=warmup_s) for s in SIGNALS}


def run_threshold(streams: list[PatientStream], k_for: dict) -> SustainedAlerts:
    al = SustainedAlerts(k_for)
    for ps in streams:
        for r in ps.readings:
            sig = r.signal.value
            rule = THRESHOLDS.get(sig)
            if rule is None or r.quality & Quality.LOW_QUALITY or not plausible(sig, r.value):
                continue
            al.feed(ps.patient, sig, (sig,), r.event_ns, rule(r.value))
    return al


def run_logic(streams: list[PatientStream], cfgs: dict, k_for: dict) -> tuple[SustainedAlerts, list]:
    al = SustainedAlerts(k_for)
    logics = []
    for ps in streams:
        logic = PatientAnomalyLogic(ps.patient, cfgs, seed=1)
        for r in ps.readings:
            s = logic.on_reading(r)
            if s is not None:
                al.feed(ps.patient, s.signal, (s.signal,), s.event_ns, s.is_anomaly)
        logics.append(logic)
    return al, logics


def aggregates(ps: PatientStream) -> list[WindowAggregate]:
    acc: dict[tuple[int, str], list[float]] = defaultdict(list)
    for r in ps.readings:
        if r.quality & Quality.LOW_QUALITY or not plausible(r.signal.value, r.value):
            continue
        acc[(r.event_ns // WINDOW_NS, r.signal.value)].append(r.value)
    out = []
    for (w, sig), vs in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] != "steps")):
        out.append(WindowAggregate(ps.patient, type(ps.readings[0].signal)(sig), w * WINDOW_NS,
                                   (w + 1) * WINDOW_NS,
                                   vital_stats(len(vs), min(vs), max(vs), sum(vs) / len(vs), vs[-1])))
    return out


def run_hst(streams: list[PatientStream], k_for: dict) -> tuple[SustainedAlerts, list]:
    al = SustainedAlerts(k_for)
    logics = []
    for ps in streams:
        logic = PatientAnomalyLogic(ps.patient, {"vitals": HalfSpaceTreesScore()}, seed=1)
        scores = [s for agg in aggregates(ps) for s in logic.on_aggregate(agg)] + logic.flush()
        for s in scores:
            al.feed(ps.patient, "vitals", HST_FEATURES, s.event_ns, s.is_anomaly)
        logics.append(logic)
    return al, logics


def dataset(streams: list[PatientStream], params: dict, hst: bool,
            k_for: dict = K_FOR) -> tuple[dict, dict]:
    episodes = [e for ps in streams for e in ps.episodes]
    days = sum(ps.days for ps in streams)
    res = {"params": params, "patients": len(streams), "patient_days": round(days, 2),
           "readings": sum(len(ps.readings) for ps in streams), "episodes": len(episodes),
           "detectors": {}}
    logics = {}
    res["detectors"]["threshold"] = evaluate(run_threshold(streams, k_for).alerts, episodes, days)
    for kind in ("ewz", "quantile"):
        al, logics[kind] = run_logic(streams, univariate(kind), k_for)
        res["detectors"][kind] = evaluate(al.alerts, episodes, days)
    if hst:
        al, logics["hst"] = run_hst(streams, k_for)
        res["detectors"]["hst"] = evaluate(al.alerts, episodes, days)
    return res, logics


def per_update_us(fn, values, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(values)
        best = min(best, (time.perf_counter_ns() - t0) / len(values) / 1000.0)
    return best


def costs(logics: dict) -> dict:
    import random
    rnd = random.Random(0)
    n = 20_000
    vals = [(rnd.gauss(75.0, 6.0), i * 60 * S) for i in range(n)]
    ctx = Context()

    def threshold(vs):
        rule, run = THRESHOLDS["heart_rate"], 0
        for v, _ in vs:
            if plausible("heart_rate", v) and rule(v):
                run += 1
            else:
                run = 0

    def detector(cfg):
        def go(vs):
            det = cfg.build()
            for v, t in vs:
                det.process(v, t, ctx)
        return go

    def hst(vs):
        det = HalfSpaceTreesScore().build()
        for v, t in vs[:5000]:
            det.process({"heart_rate": v, "resp_rate": 15.0, "spo2": 97.0}, t, ctx)

    base_us = per_update_us(threshold, vals)
    out = {"threshold": {"us_per_update": round(base_us, 3), "bytes_per_patient_signal":
                         deep_sizeof(0)}}  # its only per-key state: the run counter
    base_bytes = out["threshold"]["bytes_per_patient_signal"]
    timings = {"ewz": per_update_us(detector(EwZScore("heart_rate")), vals),
               "quantile": per_update_us(detector(RollingQuantileScore("heart_rate")), vals),
               "hst": per_update_us(hst, vals[:5000], 1) * 5000 / 5000}
    for kind, us in timings.items():
        dets = [d for lg in logics.get(kind, []) for d in lg._dets.values()]
        sizes = [deep_sizeof(d, (d.cfg,)) for d in dets] or [0]
        snaps = [deep_sizeof(d.snapshot()) for d in dets] or [0]
        out[kind] = {"us_per_update": round(us, 3), "time_ratio_vs_threshold": round(us / base_us, 1),
                     "bytes_per_patient_signal_max": max(sizes),
                     "bytes_per_patient_signal_mean": round(sum(sizes) / len(sizes)),
                     "snapshot_bytes_max": max(snaps),
                     "bytes_ratio_vs_threshold": round(max(sizes) / base_bytes, 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", type=Path, help="local checkout of numenta/NAB")
    ap.add_argument("--quick", action="store_true", help="fewer synthetic patients and records")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    syn, syn_p = synthetic(n_patients=4 if args.quick else 12)
    out: dict = {"benchmark": "anomaly_eval", "grace_min": 15, "k_sustained": {
        "default": 3, **K_FOR}, "datasets": {}}
    res, logics = dataset(syn, syn_p, hst=True)
    out["datasets"]["synthetic"] = res
    sim, sim_p = simulator(n_patients=12 if args.quick else 24)
    out["datasets"]["simulator"] = dataset(sim, sim_p, hst=False)[0]
    mim, mim_p = mimic(REF)
    out["datasets"]["mimic_s00001"] = dataset(mim, mim_p, hst=True)[0]
    ch, ch_p = challenge(REF, n_records=60 if args.quick else 300)
    # Hourly ICU charting: one reading is already a long window, so k = 1.
    out["datasets"]["challenge2012"] = dataset(ch, ch_p, hst=False,
                                               k_for={s: 1 for s in SIGNALS})[0]
    out["datasets"]["nab"] = run_nab(args.nab) if args.nab else {"skipped": "no --nab PATH"}
    out["cost"] = costs(logics)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, separators=(",", ":")))
    table(out)
    return 0


def table(out: dict) -> None:
    w = sys.stderr.write
    for name, res in out["datasets"].items():
        if "detectors" not in res:
            w(f"{name}: {res}\n")
            continue
        w(f"\n{name}: {res['patients']} patients, {res['patient_days']} patient-days, "
          f"{res['episodes']} episodes\n")
        w(f"{'detector':<10}{'prec':>7}{'recall':>8}{'F1':>7}{'FA/pt-day':>11}{'delay min':>11}"
          "  recall by type\n")
        for det, m in res["detectors"].items():
            types = " ".join(f"{k}={v['recall']}" for k, v in m["per_episode_type"].items())
            w(f"{det:<10}{m['precision']:>7}{m['recall']:>8}{m['f1']:>7}"
              f"{m['false_alerts_per_patient_day']:>11}{str(m['median_delay_min']):>11}  {types}\n")
    w("\ncost per update (us) and bytes per patient-signal:\n")
    for det, c in out["cost"].items():
        w(f"  {det:<10}{json.dumps(c)}\n")
    w(f"elapsed {out['elapsed_s']} s\n")


if __name__ == "__main__":
    sys.exit(main())
