"""The ``vitalstream`` command line.

    vitalstream demo                 # services + simulator + pipeline, live view
    vitalstream run --config site.yaml
    vitalstream simulate --patients N --rate R --duration D --seed S --ground-truth FILE
    vitalstream decode ble --uuid 2A37 --hex '1E 55 32 00 21 00'
    vitalstream decode senml|json|omh FILE
    vitalstream import FILE          # Open mHealth data points into the pipeline
    vitalstream replay FILE          # shadow mode: recorded readings through the live flow
    vitalstream alerts serve|list|ack|snooze|resolve|history   # the alarm lifecycle
    vitalstream outreach consume --group G --consumer C   # read and ack outreach messages
    vitalstream console [create-user|cohort|users|token]   # the care-team web console
    vitalstream profile show|tag, cohort list|add|remove    # health profiles (chronic care)
    vitalstream identity link|unlink|show                  # one identity per person
    vitalstream experiment report NAME                     # nudge experiments per variant
    vitalstream news2 [FILE|-]       # NEWS2 (RCP 2017) of JSON-line observations
    vitalstream bp-class --guideline acc-aha-2017|china-2018|esc-esh-2018 [FILE|-]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from vitalstream import __version__
from vitalstream.stream import settings as config_mod
from vitalstream.stream.settings import DEFAULT_STATE_DIR
from vitalstream.errors import VitalstreamError

_SERVICE_OPTS = [
    ("--mqtt-url", ("mqtt", "url"), "MQTT broker, e.g. mqtt://user:pass@127.0.0.1:1883 [VITALSTREAM_MQTT_URL]"),
    ("--redis-url", ("redis", "url"), "Redis, e.g. redis://127.0.0.1:6379/0 [VITALSTREAM_REDIS_URL]"),
    ("--influx-url", ("influx", "url"), "InfluxDB v2 API base URL [VITALSTREAM_INFLUX_URL]"),
    ("--influx-token", ("influx", "token"), "InfluxDB token [VITALSTREAM_INFLUX_TOKEN]"),
    ("--influx-org", ("influx", "org"), "InfluxDB organisation [VITALSTREAM_INFLUX_ORG]"),
    ("--influx-bucket", ("influx", "bucket"), "InfluxDB bucket [VITALSTREAM_INFLUX_BUCKET]"),
]


def _add_service_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("services (option > environment > config file > default)")
    for flag, _, help_text in _SERVICE_OPTS:
        g.add_argument(flag, help=help_text)


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    for flag, key, _ in _SERVICE_OPTS:
        out[key] = getattr(args, flag[2:].replace("-", "_"), None)
    return out


_RUN_OPTS = (("workers", ("pipeline", "workers"), "--workers"),
             ("metrics_port", ("pipeline", "metrics_port"), "--metrics-port"),
             ("shared_group", ("mqtt", "shared_group"), "--shared-group"),
             ("client_id", ("mqtt", "client_id"), "--client-id"),
             ("state_dir", ("pipeline", "state_dir"), "--state-dir"),
             ("identity", ("pipeline", "identity"), "--identity"))


def _settings(args: argparse.Namespace):
    ov = _overrides(args)
    names = {key: flag for flag, key, _ in _SERVICE_OPTS}
    for name, key, flag in _RUN_OPTS:
        if getattr(args, name, None) is not None:
            ov[key] = getattr(args, name)
            names[key] = flag
    s = config_mod.load(getattr(args, "config", None), overrides=ov, option_names=names)
    if getattr(args, "no_state", False):
        from dataclasses import replace

        s = replace(s, pipeline=replace(s.pipeline, state_dir=None))
    return s


def cmd_run(args: argparse.Namespace) -> int:
    if args.runtime == "faust":
        return _run_faust(args)
    from vitalstream.stream.app import Pipeline

    addresses = args.addresses.split(",") if args.addresses else None
    pipeline = Pipeline(_settings(args), idle_stop_s=args.idle_stop, process_id=args.process_id,
                        addresses=addresses)
    totals = pipeline.run()
    print(json.dumps(totals), file=sys.stderr)
    return 0


def _run_faust(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vitalstream.stream.assembly import window_size_ns
    from vitalstream.sinks.influx import InfluxWriter
    from vitalstream.sinks.redis_streams import RedisOutreach
    from vitalstream.stream.faust_app import FaustRuntime
    from vitalstream.stream.store import OutcomeWriter, ResultWriter

    s = _settings(args)
    raw = InfluxWriter(replace(s.influx, spool_dir=f"{s.influx.spool_dir}/faust-raw"))
    res = InfluxWriter(replace(s.influx, spool_dir=f"{s.influx.spool_dir}/faust-results"))
    rt = FaustRuntime(s, broker=args.kafka_url, outcome_writer=OutcomeWriter(raw, RedisOutreach(s.redis)),
                      result_writer=ResultWriter(res, RedisOutreach(s.redis),
                                                 window_size_ns(s)))
    sys.argv = ["vitalstream", "worker", "--loglevel", "info" if args.verbose else "warning"]
    rt.app.main()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vitalstream.stream.cli.demo import run_demo

    return run_demo(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from vitalstream.simulators.publisher import simulate_main

    # option > environment > default, validated like every other URL
    args.mqtt_url = config_mod.load(overrides={("mqtt", "url"): args.mqtt_url},
                                    option_names={("mqtt", "url"): "--mqtt-url"}).mqtt.url
    return simulate_main(args)


def cmd_decode(args: argparse.Namespace) -> int:
    if args.format == "ble":
        from vitalstream.connectors.ble.gatt import decode_ble_hex

        if not args.uuid or not args.hex:
            return _user_error("decode ble needs --uuid and --hex")
        print(json.dumps(decode_ble_hex(args.uuid, args.hex), indent=2))
        return 0
    if not args.file:
        return _user_error(f"decode {args.format} needs a FILE")
    payload = Path(args.file).read_bytes()
    from vitalstream.connectors.codecs import default_codecs
    from vitalstream.operators.normalise import Normaliser

    # SenML relative times (RFC 8428 4.5.3) and missing JSON device ids resolve against now
    now = time.time_ns()
    device = args.device or "cli"
    n = Normaliser(max_clock_skew_ns=None)
    out = []
    for item in default_codecs()[args.format](payload, device, now):
        if isinstance(item, VitalstreamError):
            out.append({"error": item.reason, "step": item.step, "detail": item.detail})
            continue
        try:
            out.append(_reading_json(n.normalise(item, now)))
        except VitalstreamError as err:
            out.append({"error": err.reason, "step": err.step, "detail": err.detail})
    print(json.dumps(out, indent=2))
    return 0


def _reading_json(r) -> dict:
    from vitalstream.model import to_datetime

    return {"patient": r.patient, "device": r.device, "signal": r.signal.value, "value": r.value,
            "unit": r.unit, "time": to_datetime(r.event_ns).isoformat(), "event_ns": r.event_ns,
            "quality": int(r.quality), "source": r.source}


def cmd_import(args: argparse.Namespace) -> int:
    from vitalstream.stream.importer import import_file

    totals = import_file(Path(args.file), _settings(args))
    print(json.dumps(totals))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vitalstream", description=(
        "Streaming processor for wearable telemetry: MQTT readings in; event-time window "
        "aggregates and raw series to InfluxDB; clinical alerts to a Redis Streams outreach queue."))
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--version", action="version", version=f"vitalstream {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # -v after the subcommand too (``vitalstream run -v``): every subparser gets it,
    # defaulting to "not given" so it does not undo a -v given before the subcommand.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log at INFO level")
    _add_parser = sub.add_parser

    def add_parser(*a, **kw):
        kw["parents"] = [*kw.get("parents", ()), verbose]
        return _add_parser(*a, **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    d = sub.add_parser("demo", help="start services, simulate ~200 patients, run the pipeline live")
    d.add_argument("--patients", type=int, default=200)
    d.add_argument("--duration", type=float, default=60.0, help="wall seconds to publish (default 60)")
    d.add_argument("--time-scale", type=float, default=20.0,
                   help="event seconds per wall second (default 20: 20 min of physiology)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--console-port", type=int, default=8080,
                   help="the care-team console's port (default 8080; any free one if taken)")
    d.add_argument("--no-console", action="store_true", help="do not start the console")
    d.add_argument("--use-running", action="store_true",
                   help="use the given/default service URLs instead of starting private ones")
    _add_service_opts(d)
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the pipeline against real services until SIGTERM/SIGINT")
    r.add_argument("--config", help="site YAML (see deploy/site.yaml)")
    r.add_argument("-w", "--workers", type=int, help="bytewax worker threads in this process")
    r.add_argument("--shared-group", help="MQTT shared-subscription group (several processes)")
    r.add_argument("--client-id", help="MQTT client id (persistent session identity)")
    r.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 9108)")
    r.add_argument("--runtime", choices=["bytewax", "faust"], default="bytewax",
                   help="bytewax (default: reads MQTT) or faust-streaming (reads a Kafka topic "
                        "'vitalstream.mqtt' fed by an MQTT->Kafka bridge)")
    r.add_argument("--kafka-url", default="kafka://localhost:9092", help="faust runtime broker")
    st = r.add_mutually_exclusive_group()
    st.add_argument("--state-dir", help="durable per-patient state (open windows, rule phases, "
                    "baselines), created on first run and resumed on every start "
                    f"[VITALSTREAM_STATE_DIR, config state.dir; default {DEFAULT_STATE_DIR}]")
    st.add_argument("--no-state", action="store_true",
                    help="keep no state: a stop writes the windows still open, flagged partial")
    r.add_argument("--identity", choices=["payload", "registry"],
                   help="patient of a reading: the payload's (else the device id), or the device "
                        "registry by event time, quarantining unmapped devices (default payload)")
    r.add_argument("-i", "--process-id", type=int, help="this process's index in a cluster")
    r.add_argument("-a", "--addresses",
                   help="cluster: comma-separated host:port of every process, in index order")
    r.add_argument("--idle-stop", type=float, default=None,
                   help="stop after this many seconds without messages (bounded runs)")
    _add_service_opts(r)
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("simulate", help="publish realistic readings with ground truth",
                       description="Publish simulated patients' readings over MQTT (QoS 1) and "
                       "write the ground truth (profiles, injected episodes, malformed messages).")
    from vitalstream.simulators.publisher import add_simulate_arguments

    add_simulate_arguments(s)
    s.set_defaults(func=cmd_simulate, mqtt_url=None)

    dc = sub.add_parser("decode", help="decode a payload and print readings as JSON")
    dc.add_argument("format", choices=["ble", "json", "senml", "omh"])
    dc.add_argument("file", nargs="?", help="payload file (json, senml, omh)")
    dc.add_argument("--uuid", help="GATT characteristic, e.g. 2A37")
    dc.add_argument("--hex", help="characteristic value as hex (spaces allowed)")
    dc.add_argument("--device", help="device id the payload came from")
    dc.set_defaults(func=cmd_decode)

    im = sub.add_parser("import", help="import Open mHealth data points (file) into the pipeline")
    im.add_argument("file")
    im.add_argument("--config")
    _add_service_opts(im)
    im.set_defaults(func=cmd_import)

    from vitalstream.stream.cli.devices import add_device_commands

    add_device_commands(sub)
    from vitalstream.stream.cli.clinical import add_clinical_commands

    add_clinical_commands(sub)
    from vitalstream.stream.cli.replay import add_replay_command

    add_replay_command(sub)
    from vitalstream.stream.cli.alerts import add_alert_commands

    add_alert_commands(sub)
    from vitalstream.stream.cli.outreach import add_parser as add_outreach_parser

    add_outreach_parser(sub)
    from vitalstream.stream.cli.console import add_console_commands

    add_console_commands(sub)
    from vitalstream.stream.cli.care import add_care_commands

    add_care_commands(sub)
    from vitalstream.stream.cli.care_sim import add_care_sim_commands

    add_care_sim_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except VitalstreamError as err:
        return _user_error(str(err))
    except OSError as err:  # a file named on the command line (or in a config) is missing
        where = f"{err.filename}: " if err.filename else ""
        return _user_error(f"{where}{err.strerror or err}")
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        import redis.exceptions

        if isinstance(err, redis.exceptions.ConnectionError):
            return _user_error(f"redis: cannot connect: {err}")
        raise


def _user_error(line: str) -> int:
    """A user's mistake or an unreachable service: one line, exit 2 (no traceback)."""
    print(f"vitalstream: {line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
