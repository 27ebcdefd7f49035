"""Simulator -> MQTT -> pipeline -> stores, vitalstream against a naive loop, in one run.

    python benchmarks/pipeline_bench.py --quick        # ~2 minutes
    python benchmarks/pipeline_bench.py                # full, ~6-8 minutes

Prints ONE JSON line on stdout ({"workload", "machine", "vitalstream", "naive",
"ratio"}); progress goes to stderr. See benchmarks/README.md for what each
figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import Publishers, Workload, rules_yaml
from pipeline_procfs import cpu_seconds
from pipeline_services import AlertReader, BenchVictoriaMetrics, broker, percentile
from vitalstream.stream.embedded import RedisServer

HERE = Path(__file__).resolve().parent
CATCH_UP_LIMIT_S = 3.0  # all readings of a step stored this soon after its last publish
LOSS_WAIT_S = 30.0  # then keep counting this long to tell "slow" from "lost"


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


class Consumer:
    """The system under test in a child process (pipeline_consumer.py)."""

    def __init__(self, cfg: dict, profile_to: str | None = None, native: bool = False) -> None:
        self.system = cfg["system"]
        with open(cfg["log_path"], "ab") as log_file:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, str(HERE / "pipeline_consumer.py"),
                                          json.dumps(cfg)], stdout=subprocess.PIPE,
                                         stderr=log_file, text=True)
        self.ready = threading.Event()
        self.ready_ns = 0
        self.states: list[dict] = []
        self.result: dict | None = None
        threading.Thread(target=self._read, daemon=True).start()
        self.profiler = None
        if profile_to:
            self.profiler = subprocess.Popen(["py-spy", "record", "--pid", str(self.proc.pid),
                                              "--format", "raw", "-r", "50", "-o", profile_to,
                                              *(["--native"] if native else [])],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _read(self) -> None:
        for line in self.proc.stdout:
            tag, _, body = line.strip().partition(" ")
            if tag == "READY":
                self.ready_ns = int(body)
                self.ready.set()
            elif tag == "STATE":
                self.states.append(json.loads(body))
            elif tag == "RESULT":
                self.result = json.loads(body)

    def measure_state(self) -> None:
        os.kill(self.proc.pid, 10)  # SIGUSR1

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def wait(self, timeout_s: float) -> dict:
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)
        if self.profiler is not None:
            self.profiler.wait(10)
        time.sleep(0.2)  # let the reader thread take the last line
        if self.result is None:
            raise RuntimeError(f"consumer exited {self.proc.returncode} without a result")
        return self.result


def _latency(reader: AlertReader, start_ns: int, end_ns: int) -> dict:
    lat = [(a.arrival_ns - a.event_ns) / 1e6 for a in reader.firing_between(start_ns, end_ns)]
    return {"n": len(lat), "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99)}


def _wait_stored(vm: BenchVictoriaMetrics, start_s: float, end_s: float, expected: int,
                 limit_s: float) -> tuple[int, float | None]:
    """(stored count, seconds after end_s when it reached expected, or None)."""
    while True:
        stored = vm.count_between("vitals_value", start_s, end_s)
        waited = time.time() - end_s
        if stored >= expected:
            return stored, waited
        if waited > limit_s:
            return stored, None
        time.sleep(0.2)


def run_ladder(args, pubs: Publishers, vm, reader: AlertReader, consumer: Consumer) -> list[dict]:
    steps = []
    for i, rate in enumerate(args.rates):
        n = rate * args.step_s
        t0 = time.time() + 0.5 + n / 100_000  # time for the publishers to pre-frame payloads
        if i == 0:  # state size at steady load, mid-step, measured in the consumer's own thread
            threading.Timer(t0 - time.time() + args.step_s * 0.6, consumer.measure_state).start()
        rep = pubs.step(rate, args.step_s, t0)
        end = rep["end_wall"]
        expected = (rep["messages"] - rep["duplicates"]) * args.readings_per_message
        # Later records of a pack are stamped up to K ms before their publish time.
        lo = t0 - 0.01 - args.readings_per_message / 1000
        stored, catch_up = _wait_stored(vm, lo, end, expected, CATCH_UP_LIMIT_S)
        reached, complete_after = catch_up is not None and catch_up <= CATCH_UP_LIMIT_S, catch_up
        if catch_up is None:
            stored, complete_after = _wait_stored(vm, lo, end, expected, LOSS_WAIT_S)
        # Alerts trail the readings by the reorder delay: give them that plus a second.
        delay_s = args.rule_delay_s if consumer.system.startswith("vitalstream") else 0.0
        time.sleep(max(0.0, end + delay_s + 1.0 - time.time()))
        fired_now = len(reader.firing_between(int(lo * 1e9), int(end * 1e9)))
        offered = rep["messages"] / rep["send_s"]
        ok_gen = rep["all_acked"] and offered >= 0.95 * rate
        step = {"rate_msgs_per_s": rate, "offered_msgs_per_s": round(offered),
                "messages": rep["messages"], "duplicates": rep["duplicates"],
                "readings_expected": expected, "readings_stored": stored,
                "catch_up_s": None if complete_after is None else round(complete_after, 2),
                "generator_max_lag_s": round(rep["max_lag_s"], 3),
                "fires_expected": rep["fires_expected"], "window_ns": (int(lo * 1e9), int(end * 1e9))}
        step["alerts_complete"] = fired_now == rep["fires_expected"]
        step["passed"] = bool(ok_gen and reached and stored == expected)
        step["verdict"] = ("ok" if step["passed"] else "generator_limited" if not ok_gen
                           else "duplicates_stored" if stored > expected
                           else "backlog_grew" if stored == expected else "lost_readings")
        steps.append(step)
        log(f"  {rate:>6} msg/s: offered {offered:,.0f}, stored {stored}/{expected}, "
            f"catch-up {step['catch_up_s']} s, alerts {fired_now}/{rep['fires_expected']} "
            f"-> {step['verdict']}")
        if not step["passed"]:
            break
    return steps


def run_system(system: str, args, wl: Workload, workdir: Path) -> dict:
    log(f"== {system}: fresh mosquitto, redis, victoria-metrics")
    rules = workdir / "bench-rules.yaml"
    rules.write_text(rules_yaml())
    with broker(args.broker_inflight) as mq, RedisServer() as rs, BenchVictoriaMetrics() as vm:
        services = {"mosquitto": mq.pid, "redis": rs.pid, "victoria-metrics": vm.pid}
        svc_cpu0 = {k: cpu_seconds(p) for k, p in services.items()}
        reader = AlertReader(rs.url)
        pubs = Publishers(wl, mq.host, mq.port, args.publishers)
        cfg = {"system": system, "mqtt_url": mq.url, "redis_url": rs.url, "influx_url": vm.url,
               "client_id": f"bench-{system}", "idle_stop_s": args.idle_stop_s,
               "rules_path": str(rules), "workers": args.workers,
               "rule_delay_s": args.rule_delay_s, "spool_dir": str(workdir / f"spool-{system}"),
               "log_path": str(workdir / f"{system}.log")}
        profile = str(Path(args.profile) / f"{system}.txt") if args.profile else None
        consumer = Consumer(cfg, profile, args.profile_native)
        consumer.ready.wait(60)
        time.sleep(1.5)  # connect + subscribe
        ladder_t0, cpu0 = time.time(), consumer.cpu_s()
        try:
            steps = run_ladder(args, pubs, vm, reader, consumer)
        except Exception:
            log("ladder failed; broker log:\n" + mq.log_tail())
            raise
        ladder_end, ladder_cpu = time.time(), consumer.cpu_s() - cpu0
        res = consumer.wait(args.idle_stop_s + 60)
        log(f"  consumer done: {res['totals']}")
        for st in steps:  # alerts trail the readings by the rule delay: count them now
            lo, hi = st.pop("window_ns")
            st["fires_seen"] = len(reader.firing_between(lo, hi))
            st["alert_latency"] = _latency(reader, lo, hi)
            log(f"  {st['rate_msgs_per_s']:>6} msg/s: alerts {st['fires_seen']}/"
                f"{st['fires_expected']}, latency {st['alert_latency']}")
        stored_total = vm.count_between("vitals_value", ladder_t0, ladder_end)
        agg_sum = vm.sum_between("vitals_1m_count", ladder_t0 - 120, ladder_end + 60)
        # Drain ceiling: fill the offline persistent session's queue, then time the consumer.
        drain = {"messages": args.drain}
        burst_t0 = time.time()
        brep = pubs.burst(args.drain)
        burst_end = brep["end_wall"]
        expected = (brep["messages"] - brep["duplicates"]) * args.readings_per_message
        cfg2 = dict(cfg, idle_stop_s=3.0)
        dcons = Consumer(cfg2)
        dcons.ready.wait(60)
        t_ready = dcons.ready_ns / 1e9
        lo = burst_t0 - 0.01 - args.readings_per_message / 1000
        stored, _ = _wait_stored(vm, lo, burst_end, expected, 30 + args.drain / 1000)
        t_done = time.time()
        dres = dcons.wait(60)
        drain.update(readings_expected=expected, readings_stored=stored,
                     seconds=round(t_done - t_ready, 2),
                     msgs_per_s=round(brep["messages"] / (t_done - t_ready)),
                     readings_per_s=round(stored / (t_done - t_ready)),
                     consumer_cpu_s=round(dres["cpu_s"], 2),
                     peak_rss_mib=round(dres["peak_rss_mib"], 1),
                     late_for_rules=dres["totals"].get("late_rules"))
        time.sleep(0.5)  # the alert reader's last XREAD
        drain["alerts_fired_vs_expected"] = [
            len(reader.firing_between(int(lo * 1e9), int(burst_end * 1e9))),
            brep["fires_expected"]]
        log(f"  drain: {stored}/{expected} readings in {drain['seconds']} s "
            f"= {drain['readings_per_s']:,} readings/s")
        svc_cpu = {k: round(cpu_seconds(p) - svc_cpu0[k], 2) for k, p in services.items()}
        gen_cpu = round(pubs.cpu_s(), 2)
        pubs.close()
        reader.stop()
    passed = [s for s in steps if s["passed"]]
    best = passed[-1] if passed else None
    k = args.readings_per_message
    ladder_cpu = round(ladder_cpu, 2)
    total_readings = sum(s["readings_stored"] for s in steps)
    return {
        "sustained_msgs_per_s": best["rate_msgs_per_s"] if best else 0,
        "sustained_readings_per_s": best["rate_msgs_per_s"] * k if best else 0,
        # Stricter: the store complete *and* every expected alert fired.
        "sustained_readings_per_s_all_alerts": max(
            [s["rate_msgs_per_s"] * k for s in steps if s["passed"] and s["alerts_complete"]],
            default=0),
        "first_failure": next(({"rate_msgs_per_s": s["rate_msgs_per_s"], "verdict": s["verdict"]}
                               for s in steps if not s["passed"]), None),
        "alert_latency_at_sustained": best["alert_latency"] if best else None,
        "alerts_fired_vs_expected": [sum(s["fires_seen"] for s in steps),
                                     sum(s["fires_expected"] for s in steps)],
        "alert_latency_at_first_step": steps[0]["alert_latency"] if steps else None,
        "drain": drain,
        "ladder_cpu_s": round(ladder_cpu, 2),
        "ladder_wall_s": round(ladder_end - ladder_t0, 1),
        "cpu_us_per_reading": round(ladder_cpu / max(1, total_readings) * 1e6, 1),
        "consumer_process_cpu_s": round(res["cpu_s"], 2),
        "peak_rss_mib": round(res["peak_rss_mib"], 1),
        "state": consumer.states[0] if consumer.states else None,
        "stored_readings_total": stored_total,
        "aggregate_count_sum": agg_sum,
        "aggregates_cover_all_readings": agg_sum == stored_total,
        "services_cpu_s": svc_cpu,
        "generator_cpu_s": gen_cpu,
        "consumer_totals": res["totals"],
        "steps": steps,
    }


def _minus(a, b):
    return None if a is None else a - b


def _ratio(a, b):
    return None if a is None or b in (None, 0) else round(a / b, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 short steps, small drain (~2 min)")
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="offered msg/s per step, comma-separated")
    ap.add_argument("--step-s", dest="step_s", type=float, default=None)
    ap.add_argument("--drain", type=int, default=None, help="messages queued for the drain test")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--readings-per-message", dest="readings_per_message", type=int, default=1)
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--workers", "-w", type=int, default=1, help="bytewax workers")
    ap.add_argument("--rule-delay-s", dest="rule_delay_s", type=float, default=2.0,
                    help="vitalstream reorder buffer before rules (pipeline default 2 s)")
    ap.add_argument("--broker-inflight", dest="broker_inflight", type=int, default=None,
                    help="mosquitto max_inflight_messages (default: mosquitto's own, 20)")
    ap.add_argument("--idle-stop-s", dest="idle_stop_s", type=float, default=12.0,
                    help="consumer stops after this much silence; must exceed the gap between steps")
    ap.add_argument("--systems", default="vitalstream,naive",
                    help="vitalstream, naive, vitalstream-nocare (the pipeline without its care stage)")
    ap.add_argument("--profile", default=None, help="directory: py-spy raw profiles of the ladder")
    ap.add_argument("--profile-native", dest="profile_native", action="store_true",
                    help="py-spy --native (shows time inside bytewax's Rust code)")
    args = ap.parse_args(argv)
    if args.rates is None:
        args.rates = [3000, 6000, 10000] if args.quick else [3000, 4500, 6000, 8000, 10000, 12500, 15000, 20000]
    if args.step_s is None:
        args.step_s = 6.0 if args.quick else 12.0
    if args.drain is None:
        args.drain = 20_000 if args.quick else 60_000
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    wl = Workload(devices=args.devices, readings_per_message=args.readings_per_message)
    out: dict = {"workload": dict(wl.describe(), step_rates_msgs_per_s=args.rates,
                                  step_s=args.step_s, drain_messages=args.drain,
                                  publisher=f"{args.publishers} processes, raw-socket MQTT 3.1.1 "
                                            "QoS 1, pre-framed, paced, every PUBACK counted",
                                  broker="mosquitto, max_queued_messages 0 (unlimited), "
                                         f"max_inflight_messages {args.broker_inflight or 'default (20)'}",
                                  stores="VictoriaMetrics (InfluxDB v2 write API), Redis streams",
                                  rules="one threshold per vital, for_s 0 (fires on one reading)",
                                  vitalstream=f"bytewax {args.workers} worker(s), rule reorder "
                                              f"delay {args.rule_delay_s} s, 64 shards",
                                  pass_rule=f"every valid reading of the step in the store within "
                                            f"{CATCH_UP_LIMIT_S} s of its last publish; the "
                                            "'_all_alerts' figure also needs every expected alert "
                                            "in Redis rule_delay + 1 s after it"),
                     "machine": {"cores": os.cpu_count(), "note": "generator, broker, consumer "
                                 "and both stores share these cores; single run, differences "
                                 "under ~10% are noise"}}
    with tempfile.TemporaryDirectory(prefix="vitalstream-bench-") as tmp:
        for system in args.systems.split(","):
            out[system] = run_system(system, args, wl, Path(tmp))
    v, n, nc = out.get("vitalstream"), out.get("naive"), out.get("vitalstream-nocare")
    if v and nc:
        out["care_stage_ratio"] = {
            "note": "vitalstream (care stage on) / vitalstream-nocare, same run",
            "sustained_readings_per_s": _ratio(v["sustained_readings_per_s"], nc["sustained_readings_per_s"]),
            "drain_readings_per_s": _ratio(v["drain"]["readings_per_s"], nc["drain"]["readings_per_s"]),
            "cpu_us_per_reading": _ratio(v["cpu_us_per_reading"], nc["cpu_us_per_reading"]),
        }
    if v and n:
        def lat(d, key, q):
            return (d[key] or {}).get(q)
        out["ratio"] = {
            "note": "vitalstream / naive; >1 is better for throughput, <1 is better for "
                    "latency, CPU and memory",
            "sustained_readings_per_s": _ratio(v["sustained_readings_per_s"], n["sustained_readings_per_s"]),
            "sustained_readings_per_s_all_alerts": _ratio(v["sustained_readings_per_s_all_alerts"],
                                                          n["sustained_readings_per_s_all_alerts"]),
            "drain_readings_per_s": _ratio(v["drain"]["readings_per_s"], n["drain"]["readings_per_s"]),
            "alert_latency_p50_first_step": _ratio(lat(v, "alert_latency_at_first_step", "p50_ms"),
                                                   lat(n, "alert_latency_at_first_step", "p50_ms")),
            "alert_latency_p99_first_step": _ratio(lat(v, "alert_latency_at_first_step", "p99_ms"),
                                                   lat(n, "alert_latency_at_first_step", "p99_ms")),
            "alert_latency_p50_at_sustained": _ratio(lat(v, "alert_latency_at_sustained", "p50_ms"),
                                                     lat(n, "alert_latency_at_sustained", "p50_ms")),
            # vitalstream holds readings args.rule_delay_s in a reorder buffer before rules
            # (the naive loop has none): the same ratio with that delay taken off.
            "alert_latency_p50_first_step_beyond_rule_delay": _ratio(
                _minus(lat(v, "alert_latency_at_first_step", "p50_ms"), args.rule_delay_s * 1000),
                lat(n, "alert_latency_at_first_step", "p50_ms")),
            "alert_latency_p99_first_step_beyond_rule_delay": _ratio(
                _minus(lat(v, "alert_latency_at_first_step", "p99_ms"), args.rule_delay_s * 1000),
                lat(n, "alert_latency_at_first_step", "p99_ms")),
            "cpu_us_per_reading": _ratio(v["cpu_us_per_reading"], n["cpu_us_per_reading"]),
            "peak_rss_mib": _ratio(v["peak_rss_mib"], n["peak_rss_mib"]),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
