"""``vitalstream outreach consume``: read the outreach stream as a care-team tool would.

    vitalstream outreach consume --group G --consumer C [--claim-idle-s S] [--count N]
                                 [--once] [--json] [--nudges]

One line per message (``--json``: the message itself), each acknowledged once printed; the
group is created on first use and sees the backlog. Messages off the schema, or delivered
more than 5 times, go to ``<prefix>:outreach:dead`` (``sinks/outreach_consumer.py``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

BLOCK_MS = 1000  # below the client's 2-s socket timeout (sinks.redis_streams.connect)


def _line(msg: dict[str, Any]) -> str:
    if msg.get("schema") == "vitalstream.nudge/1":
        return (f"{msg['kind']:<16} {msg['channel']:<9} {msg['patient']:<12} {msg['strategy']:<22} "
                f"{msg['reason']}")
    return (f"{msg['priority']:<6} {msg['patient']:<12} {msg['rule']:<22} {msg['reason']:<14} "
            f"{msg['explanation']}")


def cmd_consume(args: argparse.Namespace) -> int:
    from vitalstream.sinks.alarm_state import RedisAlarmState, nudge_schema
    from vitalstream.sinks.outreach_consumer import OutreachConsumer
    from vitalstream.sinks.redis_streams import connect
    from vitalstream.stream.alarms import prefix_of
    from vitalstream.stream.cli import _settings
    from vitalstream.errors import VitalstreamError

    if args.count <= 0 or args.claim_idle_s < 0:
        raise VitalstreamError("outreach", None, "bad_value",
                               "--count must be > 0 and --claim-idle-s >= 0")
    s = _settings(args)
    client = connect(s.redis.url)
    if args.nudges:
        from vitalstream.sinks.profiles import ProfileStore

        stream, schema = ProfileStore(client).nudge_stream, nudge_schema()
    else:
        stream, schema = RedisAlarmState(client, prefix_of(s.redis.alerts_stream)).outreach, None
    consumer = OutreachConsumer(client, stream, args.group, args.consumer,
                                claim_idle_ms=int(args.claim_idle_s * 1000), schema=schema)
    consumer.ensure_group()

    def show(m) -> None:
        # flush: a pipe reader (a script, a test) sees each message before its ack
        print(json.dumps(m.message) if args.json else _line(m.message), flush=True)

    consumer.run(show, count=args.count, block_ms=BLOCK_MS, once=args.once)
    return 0


def add_parser(sub: Any) -> None:
    from vitalstream.stream.cli import _add_service_opts

    o = sub.add_parser("outreach", help="the outreach stream: consume it with a consumer group")
    osub = o.add_subparsers(dest="outreach_command", required=True, metavar="ACTION")
    c = osub.add_parser("consume", help="print each outreach message as one line and ack it")
    c.add_argument("--group", required=True, help="consumer group (one per tool)")
    c.add_argument("--consumer", required=True, help="this consumer's name within the group "
                   "(keep it across restarts: its pending messages come first)")
    c.add_argument("--claim-idle-s", type=float, default=60.0,
                   help="take over messages another consumer left unacked this long (default 60)")
    c.add_argument("--count", type=int, default=10, help="messages per read (default 10)")
    c.add_argument("--once", action="store_true", help="stop when nothing is left")
    c.add_argument("--json", action="store_true", help="print each message as JSON")
    c.add_argument("--nudges", action="store_true",
                   help="the nudge stream (reminders, care-team tasks) instead of the alarms'")
    c.add_argument("--config")
    _add_service_opts(c)
    c.set_defaults(func=cmd_consume)
