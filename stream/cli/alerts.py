"""``vitalstream alerts``: the care team's view of the alarm lifecycle, on its Redis state.

    vitalstream alerts serve      # the lifecycle service (vitalstream run starts one itself)
    vitalstream alerts list [--patient P] [--state S] [--json]
    vitalstream alerts ack ID --by WHO [--reason TEXT] [--scope alarm|rule|patient]
    vitalstream alerts snooze ID --minutes N --by WHO --reason TEXT [--scope rule|patient]
    vitalstream alerts resolve ID --by WHO --reason TEXT
    vitalstream alerts assign ID --to USER --by WHO [--reason TEXT]
    vitalstream alerts override PATIENT --rule R --priority high|medium|low|off|default
                                --minutes N --by WHO --reason TEXT
    vitalstream alerts history ID
    vitalstream schema outreach   # the JSON Schema every outreach message follows

Commands are written to the command stream and applied by the running service (within its
poll interval, 0.2 s); ``ID`` is an alarm's id or the id of any alert grouped under it.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from vitalstream.errors import VitalstreamError


def _store(args: argparse.Namespace):
    from vitalstream.sinks.alarm_state import RedisAlarmState
    from vitalstream.sinks.redis_streams import connect
    from vitalstream.stream.alarms import prefix_of
    from vitalstream.stream.cli import _settings

    s = _settings(args)
    return s, RedisAlarmState(connect(s.redis.url), prefix_of(s.redis.alerts_stream))


def cmd_serve(args: argparse.Namespace) -> int:
    from vitalstream.stream.alarms import AlarmService

    s, store = _store(args)
    from vitalstream.stream import assembly

    service = AlarmService(store.r, s.redis.alerts_stream, cfg=assembly.lifecycle(s),
                           prefix=store.prefix)
    try:
        service.run()
    except KeyboardInterrupt:
        service.stop()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, store = _store(args)
    alarms = store.alarms(args.patient, args.state)
    if args.json:
        print(json.dumps(alarms))
        return 0
    for a in alarms:
        print(f"{a['alert_id']}  {a['patient']:<12} {a['rule']:<22} {a['priority']:<6} "
              f"{a['state']:<12} {'present' if a['present'] else 'cleared':<8} "
              f"level {a['level']}  {a['explanation']}")
    return 0


def _command(args: argparse.Namespace, kind: str, **kw: Any) -> int:
    from vitalstream.operators.lifecycle import Command

    _, store = _store(args)
    if store.find(args.id) is None:
        raise VitalstreamError("alerts", None, "unknown_alarm", f"no open alarm {args.id!r}")
    store.submit(Command(kind, args.id, args.by, args.reason or "", time.time_ns(), **kw))
    print(f"{kind} {args.id} by {args.by}: submitted")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    return _command(args, "ack", scope=args.scope)


def cmd_snooze(args: argparse.Namespace) -> int:
    if args.minutes <= 0:
        raise VitalstreamError("alerts", None, "bad_value", "--minutes must be > 0")
    return _command(args, "snooze", scope=args.scope, minutes=args.minutes)


def cmd_resolve(args: argparse.Namespace) -> int:
    return _command(args, "resolve")


def cmd_assign(args: argparse.Namespace) -> int:
    return _command(args, "assign", assignee=args.to)


def cmd_override(args: argparse.Namespace) -> int:
    from vitalstream.operators.lifecycle import Command

    if args.minutes <= 0:
        raise VitalstreamError("alerts", None, "bad_value", "--minutes must be > 0")
    _, store = _store(args)
    store.submit(Command("override", args.patient, args.by, args.reason, time.time_ns(),
                         minutes=args.minutes, rule=args.rule,
                         priority="" if args.priority == "default" else args.priority))
    print(f"override {args.rule} for {args.patient} -> {args.priority} by {args.by}: submitted")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    _, store = _store(args)
    for h in store.history(args.id):
        print(json.dumps(h))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from vitalstream.sinks.alarm_state import outreach_schema

    print(json.dumps(outreach_schema(), indent=2))
    return 0


def add_alert_commands(sub: Any) -> None:
    sc = sub.add_parser("schema", help="print a message schema (outreach: the JSON Schema of "
                        "every outreach message)")
    sc.add_argument("name", choices=("outreach",))
    sc.set_defaults(func=cmd_schema)

    from vitalstream.stream.cli import _add_service_opts

    al = sub.add_parser("alerts", help="the alarm lifecycle: serve, list, ack, snooze, resolve, assign, "
                        "history")
    asub = al.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")

    def parser(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = asub.add_parser(name, help=help_text)
        p.add_argument("--config")
        _add_service_opts(p)
        p.set_defaults(func=func)
        return p

    parser("serve", "run the lifecycle service (re-notification, escalation, acks)", cmd_serve)
    ls = parser("list", "open alarms", cmd_list)
    ls.add_argument("--patient")
    ls.add_argument("--state", choices=("active", "acknowledged"))
    ls.add_argument("--json", action="store_true")
    for name, func, help_text in (("ack", cmd_ack, "acknowledge an alarm"),
                                  ("snooze", cmd_snooze, "silence an alarm's re-notifications for N minutes"),
                                  ("resolve", cmd_resolve, "resolve an alarm by hand"),
                                  ("assign", cmd_assign, "say who has taken an alarm on")):
        p = parser(name, help_text, func)
        p.add_argument("id")
        p.add_argument("--by", required=True, help="who (recorded in the audit)")
        p.add_argument("--reason", required=name not in ("ack", "assign"),
                       help="why (recorded in the audit)")
        if name == "assign":
            p.add_argument("--to", required=True, help="who takes it on")
        if name == "ack":
            p.add_argument("--scope", choices=("alarm", "rule", "patient"), default="alarm")
        if name == "snooze":
            p.add_argument("--minutes", type=float, required=True)
            p.add_argument("--scope", choices=("rule", "patient"), default="rule")
    o = parser("override", "set how one rule pages for one patient, for a time", cmd_override)
    o.add_argument("patient")
    o.add_argument("--rule", required=True)
    o.add_argument("--priority", required=True, choices=("high", "medium", "low", "off", "default"))
    o.add_argument("--minutes", type=float, default=24 * 60)
    o.add_argument("--by", required=True)
    o.add_argument("--reason", required=True)
    h = parser("history", "every notice and audit entry of an alarm", cmd_history)
    h.add_argument("id")
