"""``vitalstream demo``: services, ~200 simulated patients, the pipeline, live in the terminal.

Starts private mosquitto, Redis and VictoriaMetrics (an InfluxDB-v2-write-compatible
store) on free ports under ``./vitalstream-demo/`` unless ``--use-running`` is
given, publishes a simulated ward in compressed time from a child process (the
load generator gets its own core), runs the pipeline in this process and prints
throughput, open windows and alerts as they fire, and the outreach messages the alarm
lifecycle sends for them (``PAGE``: what a care team's pager or phone would get); at the
end, a summary with where the data is, the commands to acknowledge an alarm, and how the
alerts compare with the simulator's ground truth.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from vitalstream.stream import settings as config
from vitalstream.model import Alert, to_datetime
from vitalstream.signals import spec
from vitalstream.stream.bounded import PipelineRun, settings_for

_print_lock = threading.Lock()


def _say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _alert_line(a: Alert) -> str:
    try:
        unit = spec(a.signal).unit
    except KeyError:  # "bp_diastolic+bp_systolic" (the crisis rule), "news2" (a score)
        unit = "mm[Hg]" if "+" in a.signal else ""
    t = to_datetime(a.event_ns).strftime("%H:%M:%SZ")
    mark = {"firing": "ALERT ", "realert": "AGAIN ", "resolved": "  ok  ", "grouped": "  +   ",
            "escalated": "HIGHER"}.get(a.state, a.state)
    why = f"  {a.explanation}" if a.explanation else ""
    return (f"  {mark} {a.state:<9} {a.rule:<20} {a.patient:<10} {a.signal:<12} "
            f"{a.value:>7.1f} {unit:<7} at {t}  ({a.severity}){why}")


def _notice_line(m: dict) -> str:
    value = "" if m.get("value") is None else f" {m['value']:.4g} {m.get('unit', '')}".rstrip()
    tier = f" -> {m['tier']}" if m.get("tier") else ""
    return (f"  PAGE   {m['priority']:<6} {m['reason']:<15} {m['rule']:<20} {m['patient']:<10}"
            f"{value}{tier}  {m.get('explanation', '')}  [id {m['alert_id']}]")


class _Pages(threading.Thread):
    """Follows the outreach stream and prints each message as it is sent."""

    def __init__(self, redis_url: str, stream: str) -> None:
        super().__init__(name="demo-pages", daemon=True)
        import redis

        self.r = redis.Redis.from_url(redis_url)
        self.stream = stream
        self.last = self.r.xinfo_stream(stream)["last-generated-id"] if self.r.exists(stream) else "0"
        self.reasons: collections.Counter = collections.Counter()
        self.open: dict[str, dict] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                got = self.r.xread({self.stream: self.last}, block=500, count=100) or []
            except Exception:  # the demo's services stop under it at the end
                return
            for _, entries in got:
                for entry, fields in entries:
                    self.last = entry
                    m = json.loads(fields[b"message"])
                    self.reasons[m["reason"]] += 1
                    self.open[m["alert_id"]] = m
                    _say(_notice_line(m))


def _services(args: argparse.Namespace, stack: ExitStack, workdir: Path):
    if args.use_running:
        s = config.load(overrides={("mqtt", "url"): args.mqtt_url, ("redis", "url"): args.redis_url,
                                   ("influx", "url"): args.influx_url})
        return s.mqtt.url, s.redis.url, s.influx.url
    from vitalstream.stream.embedded import Mosquitto, RedisServer, VictoriaMetrics

    _say(f"starting mosquitto, redis-server and victoria-metrics under {workdir}/ ...")
    # as deploy/mosquitto.conf: mosquitto's default of 1000 queued messages per client drops
    # QoS 1 messages once the pipeline is a second behind a 2,600 readings/s ward
    mq = stack.enter_context(Mosquitto(workdir / "mosquitto", extra_config="max_queued_messages 100000"))
    rs = stack.enter_context(RedisServer(workdir / "redis"))
    vm = stack.enter_context(VictoriaMetrics(workdir / "victoria-metrics"))
    return mq.url, rs.url, vm.url


def run_demo(args: argparse.Namespace) -> int:
    workdir = Path("vitalstream-demo").resolve()
    workdir.mkdir(exist_ok=True)
    truth_path = workdir / "ground-truth.jsonl"
    with ExitStack() as stack:
        mqtt_url, redis_url, influx_url = _services(args, stack, workdir)
        # Compressed time: device stamps run ahead of the wall clock, so the
        # receive-time skew check is off (it is on in `vitalstream run`).
        settings = settings_for(mqtt_url, redis_url, influx_url, workdir / "spool", tag="demo",
                                max_clock_skew_s=None, allowed_lateness_s=30.0, rule_delay_s=5.0)
        alerts: list[Alert] = []
        site = workdir / "site.yaml"  # what `vitalstream alerts ...` needs to find this run
        site.write_text(f"redis: {{url: '{redis_url}', alerts_stream: '{settings.redis.alerts_stream}'}}\n")
        pages = _Pages(redis_url, settings.redis.alerts_stream.rsplit(":", 1)[0] + ":outreach")
        pages.start()
        console = _console(stack, settings, args)
        run = PipelineRun(settings, idle_stop_s=5.0,
                          on_alert=lambda a: (alerts.append(a), _say(_alert_line(a))))
        run.start()
        home = _home_history(mqtt_url)
        event_s = args.duration * args.time_scale
        _say(f"simulating {args.patients} patients, {event_s / 60:.0f} min of physiology in "
             f"{args.duration:.0f} s (x{args.time_scale:g}), mixed JSON/SenML, QoS 1")
        sim = subprocess.Popen(
            [sys.executable, "-m", "vitalstream", "simulate", "--patients", str(args.patients),
             "--duration", str(event_s), "--time-scale", str(args.time_scale), "--codec", "mixed",
             "--seed", str(args.seed), "--ground-truth", str(truth_path), "--mqtt-url", mqtt_url,
             "--no-progress"], stdout=subprocess.PIPE, text=True)
        _live_view(run, sim)
        totals = run.join(timeout_s=args.duration * 4 + 120)
        time.sleep(1.0)  # the lifecycle's last messages
        pages.stopping.set()
        sim_stats = json.loads(sim.stdout.read() or "{}")
        _summary(totals, sim_stats, alerts, truth_path, settings, mqtt_url, redis_url, influx_url)
        _pages_summary(pages, site)
        _care_summary(totals, home, site, redis_url)
        if console is not None:
            _say(f"\ncare-team console: {console.url}/alerts  (login {DEMO_LOGIN[0]} / "
                 f"{DEMO_LOGIN[1]})")
        if not args.use_running and sys.stdin.isatty():
            _say("\nservices stay up for a look around; press Ctrl-C to stop them.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


DEMO_LOGIN = ("nurse", "vitalstream-demo")


def _console(stack: ExitStack, settings, args: argparse.Namespace):
    """The care-team console on this run's stores: two wards, a nurse who sees both."""
    if args.no_console:
        return None
    import dataclasses
    import socket

    from vitalstream.stream.console.server import ConsoleServer, build

    s = dataclasses.replace(settings, console=dataclasses.replace(settings.console,
                                                                  series="victoria-metrics"))
    console = build(s, instance="demo")
    width = max(4, len(str(args.patients)))
    ids = [f"p{i + 1:0{width}d}" for i in range(args.patients)]
    half = (len(ids) + 1) // 2
    console.cohorts.put("ward-a", ids[:half], "demo: first half of the simulated patients")
    console.cohorts.put("ward-b", ids[half:], "demo: second half")
    console.cohorts.put("home-care", HOME_PATIENTS, "demo: home blood-pressure programme")
    console.accounts.put_user(DEMO_LOGIN[0], "nurse", ["ward-a", "ward-b", "home-care"],
                              DEMO_LOGIN[1])
    console.accounts.put_user("viewer", "viewer", ["ward-a"], "vitalstream-demo")
    port = args.console_port
    with socket.socket() as probe:  # the usual port if free, else any
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            port = 0
    server = stack.enter_context(ConsoleServer(console, "127.0.0.1", port))
    _say(f"care-team console: {server.url}/alerts  (login {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}; "
         f"'viewer' sees ward-a only)")
    return server


def _live_view(run: PipelineRun, sim: subprocess.Popen) -> None:
    live = run.pipeline.live
    last, t0, last_t = 0, time.monotonic(), time.monotonic()
    _say("")
    while run._thread.is_alive():
        time.sleep(1.0)
        tot = live.totals()
        now = time.monotonic()
        rate = (tot["readings"] - last) / (now - last_t)
        last, last_t = tot["readings"], now
        _say(f"t+{now - t0:4.0f}s | {rate:8,.0f} readings/s | {tot['readings']:>9,} stored | "
             f"{tot['open_windows']:>5,} open windows | {tot['patients']:>4} patients | "
             f"{tot['dead_letters']:>4} dead letters | {tot['alerts']:>4} alert events"
             + ("" if sim.poll() is None else " | simulator done, draining"))


def _summary(totals, sim_stats, alerts, truth_path, settings, mqtt_url, redis_url, influx_url):
    truth = [json.loads(x) for x in truth_path.read_text().splitlines() if x.strip()]
    episodes = [g for g in truth if g["type"] == "episode"]
    firing = [a for a in alerts if a.state == "firing"]
    caught = sum(1 for ep in episodes if any(
        a.patient == ep["patient"] and a.rule in ep["rules"]
        and ep["onset_ns"] <= a.event_ns <= ep["recovered_ns"] for a in firing))
    episode_patients = {ep["patient"] for ep in episodes}
    stray = [a for a in firing if a.patient not in episode_patients]
    by_rule = collections.Counter(a.rule for a in firing)
    r = settings.redis
    port = influx_url.rsplit(":", 1)[-1].strip("/")
    _say("\n== summary ==")
    _say(f"messages published {sim_stats.get('acked', '?'):,} | received {totals['messages']:,} | "
         f"acked after storage {totals['acked']:,}")
    _say(f"readings stored {totals['readings']:,} | duplicates dropped {totals['duplicates']:,} | "
         f"dead letters {totals['dead_letters']:,} | late for window {totals['late_window']:,}")
    _say(f"window aggregates {totals['aggregates']:,} | alert episodes {len(firing)} "
         f"({', '.join(f'{k} {v}' for k, v in by_rule.most_common()) or 'none'})")
    _say(f"ground truth: {caught}/{len(episodes)} injected episodes alerted; "
         f"{len(stray)} alerts for patients without an episode")
    _say("\nwhere the data is:")
    _say(f"  MQTT broker           {mqtt_url}  (topics vitalstream/<device>/json|senml)")
    _say(f"  InfluxDB-compatible   {influx_url}  measurements vitals, vitals_1m")
    _say(f"    e.g. curl -s '{influx_url}/api/v1/export?match[]=vitals_1m_mean{{signal=\"heart_rate\"}}' | head -3")
    _say(f"  Redis                 {redis_url}  streams {r.alerts_stream}, {r.deadletter_stream}")
    _say(f"    e.g. redis-cli -u {redis_url} XRANGE {r.alerts_stream} - + COUNT 3")
    _say(f"  ground truth          {truth_path}")
    del port


HOME_PATIENTS = [f"h{i:03d}" for i in range(1, 13)]  # home-care programme, apart from the ward
HOME_HYPERTENSIVE = frozenset(HOME_PATIENTS[::3])


def _home_history(mqtt_url: str) -> list[str]:
    """A home-care programme's last six days of cuff readings (device times in the past),
    so that the care stage has weeks-scale data to tag while the ward runs live."""
    from urllib.parse import urlsplit

    import paho.mqtt.publish as mqtt_publish

    from vitalstream.simulators.history import home_history

    msgs = home_history(HOME_PATIENTS, days=6, end_ns=time.time_ns(), seed=13,
                        hypertensive=HOME_HYPERTENSIVE)
    u = urlsplit(mqtt_url)
    for i in range(0, len(msgs), 100):
        mqtt_publish.multiple([{"topic": t, "payload": b, "qos": 1} for t, b in msgs[i:i + 100]],
                              hostname=u.hostname, port=u.port or 1883)
    _say(f"home care: {len(HOME_PATIENTS)} programme patients sent their last 6 days of blood "
         f"pressure ({len(msgs)} messages); the care stage tags them as the evidence comes in")
    return HOME_PATIENTS


def _care_summary(totals: dict, home: list[str], site: Path, redis_url: str) -> None:
    import redis

    from vitalstream.sinks.profiles import ProfileStore

    store = ProfileStore(redis.Redis.from_url(redis_url))
    cohort = [pid for pid, _ in store.cohort("hypertension")]
    _say(f"\ncare stage: {totals.get('tag_changes', 0)} profile tag changes, "
         f"{totals.get('nudges', 0)} nudges sent, {totals.get('nudges_suppressed', 0)} suppressed")
    _say(f"  cohort hypertension: {', '.join(cohort) or 'none yet'} "
         f"(true: {', '.join(sorted(HOME_HYPERTENSIVE))})")
    example = cohort[0] if cohort else home[0]
    _say(f"  vitalstream profile show {example} --config {site}")
    _say(f"  vitalstream cohort list hypertension --config {site}")


def _pages_summary(pages: _Pages, site: Path) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in pages.reasons.most_common()) or "none"
    _say(f"\noutreach messages sent: {counts}")
    example = next((m for m in pages.open.values() if m["priority"] == "high"),
                   next(iter(pages.open.values()), None))
    _say("the alarms, and what a nurse does with them:")
    _say(f"  vitalstream alerts list --config {site}")
    if example is not None:
        aid = example["alert_id"]
        _say(f"  vitalstream alerts ack {aid} --by nurse-1 --reason 'seen at bedside' --config {site}")
        _say(f"  vitalstream alerts history {aid} --config {site}")
