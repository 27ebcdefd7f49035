"""Child process of pipeline_bench.py: runs one consumer (vitalstream or naive) until idle.

Usage: ``python pipeline_consumer.py '<json config>'``. Prints to stdout
``READY <wall ns>`` just before connecting, ``STATE <json>`` on SIGUSR1 (state
size per patient, measured in the thread that owns the state), and finally
``RESULT <json>`` with totals, CPU seconds and peak RSS of this process.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline_procfs import peak_rss_mib
from vitalstream.operators.anomaly.sizing import deep_sizeof


def _emit(tag: str, payload: Any) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload) if not isinstance(payload, int) else payload}\n")
    sys.stdout.flush()


def _sampled_set_bytes(keys: list, total: int) -> int:
    """Deep size of ``total`` keys extrapolated from a sample (a full walk takes seconds)."""
    if not keys:
        return 0
    sample = keys[:2000]
    per_key = deep_sizeof(sample) / len(sample)
    return int(per_key * total + total * 8 * 1.5)  # + set slots at ~2/3 load


def _on_usr1(measure: Callable[[], dict]) -> None:
    def handler(signum, frame) -> None:
        for _ in range(5):  # the naive loop mutates its dicts from paho's thread
            try:
                _emit("STATE", measure())
                return
            except RuntimeError:
                time.sleep(0.01)
    signal.signal(signal.SIGUSR1, handler)


def run_vitalstream(cfg: dict) -> dict:
    from vitalstream.stream import settings as config
    from vitalstream.stream.app import Pipeline

    settings = config.load(env={}, overrides={
        ("mqtt", "url"): cfg["mqtt_url"], ("mqtt", "client_id"): cfg["client_id"],
        ("redis", "url"): cfg["redis_url"], ("influx", "url"): cfg["influx_url"],
        ("influx", "spool_dir"): cfg["spool_dir"], ("pipeline", "metrics_port"): None,
        ("pipeline", "workers"): cfg["workers"], ("pipeline", "rule_delay_s"): cfg["rule_delay_s"]})
    from dataclasses import replace
    # state_dir: the benchmark measures the flow without durable snapshots unless asked
    settings = replace(settings, rules_path=cfg["rules_path"],
                       pipeline=replace(settings.pipeline, metrics_port=None,
                                        state_dir=cfg.get("state_dir")),
                       # "vitalstream-nocare": the same pipeline without the care stage
                       care=replace(settings.care, enabled=cfg["system"] != "vitalstream-nocare"))
    pipe = Pipeline(settings, idle_stop_s=cfg["idle_stop_s"])

    def measure() -> dict:
        snaps = [h.snapshot() for h in pipe.live.hosts]
        patients = sum(len(s.patients) for s in snaps)
        pickled = sum(len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in snaps)
        deep = deep_sizeof(snaps)
        pending = sum(len(st.pending) for s in snaps for st in s.patients.values())
        windows = sum(len(st.window.open) for s in snaps for st in s.patients.values())
        keys, n_keys = [], 0
        for ing in pipe.live.ingests:
            for b in ing.dedup.state.buckets.values():
                n_keys += len(b)
                if len(keys) < 2000:
                    keys.extend(list(b)[:2000])
        return {"patients": patients, "pickle_bytes_per_patient": pickled / max(1, patients),
                "deep_bytes_per_patient": deep / max(1, patients),
                "pending_readings": pending, "open_windows": windows,
                "dedup_keys": n_keys, "dedup_bytes_est": _sampled_set_bytes(keys, n_keys),
                "rss_mib": peak_rss_mib(os.getpid())}

    _on_usr1(measure)
    _emit("READY", time.time_ns())
    totals = pipe.run()
    return {"totals": totals}


def run_naive(cfg: dict) -> dict:
    from loadgen import VITALS
    from naive_baseline import NaiveLoop

    thresholds = {v[0]: (v[6], v[7]) for v in VITALS}
    loop = NaiveLoop(cfg["mqtt_url"], cfg["redis_url"], cfg["influx_url"], thresholds,
                     client_id=cfg["client_id"])

    def measure() -> dict:
        s = loop.state
        devices = {k[0] for k in list(s.windows)}
        deep = deep_sizeof([dict(s.windows), dict(s.firing)])
        keys = list(s.seen)[:2000]
        return {"patients": len(devices), "deep_bytes_per_patient": deep / max(1, len(devices)),
                "open_windows": len(s.windows), "dedup_keys": len(s.seen),
                "dedup_bytes_est": _sampled_set_bytes(keys, len(s.seen)),
                "rss_mib": peak_rss_mib(os.getpid())}

    _on_usr1(measure)
    _emit("READY", time.time_ns())
    stats = loop.run(cfg["idle_stop_s"])
    return {"totals": stats.__dict__}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    t0 = time.monotonic()
    out = run_vitalstream(cfg) if cfg["system"].startswith("vitalstream") else run_naive(cfg)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.update(cpu_s=ru.ru_utime + ru.ru_stime, peak_rss_mib=ru.ru_maxrss / 1024,
               wall_s=time.monotonic() - t0)
    _emit("RESULT", out)


if __name__ == "__main__":
    main()
