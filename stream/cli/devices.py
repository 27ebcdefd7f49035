"""``vitalstream devices assign|unassign|list|history`` and ``vitalstream quarantine replay``.

    vitalstream devices assign AA:BB:CC:DD:EE:01 p0002 --start 2026-11-25T09:00:00Z
    vitalstream devices assign cuff-7 p0003 --user 2          # one user of a shared cuff
    vitalstream devices unassign AA:BB:CC:DD:EE:01 --at 2026-11-26T08:00:00+01:00
    vitalstream devices list [--json]
    vitalstream devices history AA:BB:CC:DD:EE:01
    vitalstream quarantine replay                              # after a retroactive assign

Times are ISO-8601 with a zone (a naive time is refused: whose 9 o'clock?),
integer nanoseconds since the epoch, or ``now``. Changes reach a running
pipeline within about half a second (``RegistryResolver``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from vitalstream.stream import settings as config_mod
from vitalstream.errors import ConfigError
from vitalstream.timeutil import parse_iso8601_ns, to_datetime

DEFAULT_PREFIX = "vitalstream:devices"
_OPTS = (("--redis-url", ("redis", "url"), "Redis [VITALSTREAM_REDIS_URL]"),
         ("--influx-url", ("influx", "url"), "InfluxDB v2 API base URL (replay)"),
         ("--influx-token", ("influx", "token"), "InfluxDB token (replay)"),
         ("--influx-org", ("influx", "org"), "InfluxDB organisation (replay)"),
         ("--influx-bucket", ("influx", "bucket"), "InfluxDB bucket (replay)"))


def parse_time_ns(text: str, now_ns: int | None = None) -> int:
    """
    >>> parse_time_ns("2026-11-25T10:00:00+01:00"), parse_time_ns("1795600800000000000")
    (1795597200000000000, 1795600800000000000)
    """
    t = text.strip()
    if t == "now":
        return time.time_ns() if now_ns is None else now_ns
    if t.lstrip("-").isdigit():
        return int(t)
    try:
        return parse_iso8601_ns(t)
    except ValueError as exc:
        raise ConfigError("cli", None, "bad_time",
                          f"{text!r}: {exc} (ISO-8601 with Z or an offset, integer ns, or now)") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="site YAML")
    p.add_argument("--registry-prefix", default=DEFAULT_PREFIX, help="Redis key prefix of the registry")
    for flag, _, text in _OPTS:
        p.add_argument(flag, help=text)


def _settings(args: argparse.Namespace):
    ov = {key: getattr(args, flag[2:].replace("-", "_"), None) for flag, key, _ in _OPTS}
    return config_mod.load(getattr(args, "config", None), overrides=ov)


def _registry(args: argparse.Namespace):
    from vitalstream.connectors.registry import DeviceRegistry
    from vitalstream.sinks.redis_streams import connect

    return DeviceRegistry(connect(_settings(args).redis.url), prefix=args.registry_prefix)


def _row(a) -> dict:
    d = a.to_dict()
    d["start"] = to_datetime(a.start_ns).isoformat()
    d["end"] = None if a.end_ns is None else to_datetime(a.end_ns).isoformat()
    return d


def _print_rows(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        who = r["device"] + (f" user {r['user']}" if r["user"] is not None else "")
        print(f"{who}\t{r['patient']}\t{r['start']}\t{r['end'] or 'open'}")


def cmd_assign(args: argparse.Namespace) -> int:
    end = parse_time_ns(args.end) if args.end else None
    _registry(args).assign(args.device, args.patient, parse_time_ns(args.start), end, user=args.user)
    return 0


def cmd_unassign(args: argparse.Namespace) -> int:
    _registry(args).unassign(args.device, parse_time_ns(args.at), user=args.user)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _print_rows([_row(a) for a in _registry(args).list()], args.json)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    _print_rows([_row(a) for a in _registry(args).history(args.device, args.user)], args.json)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from vitalstream.stream.quarantine import replay_quarantine

    stats = replay_quarantine(_settings(args), _registry(args))
    print(json.dumps(asdict(stats)))
    return 0


def add_device_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``devices`` and ``quarantine`` to the ``vitalstream`` sub-commands."""
    dev = sub.add_parser("devices", help="device -> patient registry (by event time)")
    dsub = dev.add_subparsers(dest="devices_command", required=True, metavar="ACTION")

    a = dsub.add_parser("assign", help="assign a device (or one user of it) to a patient")
    a.add_argument("device", help="MAC, serial, vendor id or topic id")
    a.add_argument("patient")
    a.add_argument("--user", type=int, help="user index of a shared device (BP cuff 1..4)")
    a.add_argument("--start", default="now", help="ISO-8601 with zone, ns, or now (default)")
    a.add_argument("--end", help="ISO-8601 with zone or ns (default: open-ended)")
    _common(a)
    a.set_defaults(func=cmd_assign)

    u = dsub.add_parser("unassign", help="end a device's current assignment")
    u.add_argument("device")
    u.add_argument("--user", type=int)
    u.add_argument("--at", default="now", help="ISO-8601 with zone, ns, or now (default)")
    _common(u)
    u.set_defaults(func=cmd_unassign)

    ls = dsub.add_parser("list", help="every assignment interval")
    ls.add_argument("--json", action="store_true")
    _common(ls)
    ls.set_defaults(func=cmd_list)

    h = dsub.add_parser("history", help="assignment intervals of one device")
    h.add_argument("device")
    h.add_argument("--user", type=int)
    h.add_argument("--json", action="store_true")
    _common(h)
    h.set_defaults(func=cmd_history)

    q = sub.add_parser("quarantine", help="readings of unmapped devices")
    qsub = q.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    r = qsub.add_parser("replay", help="replay readings of now-assigned devices as historical data")
    _common(r)
    r.set_defaults(func=cmd_replay)
