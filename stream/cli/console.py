"""``vitalstream console``: the care-team web console, and its users and cohorts.

    vitalstream console [--host H] [--port P]          # serve (http://127.0.0.1:8080)
    vitalstream console create-user NAME --role admin --cohort '*'   # asks the password
    vitalstream console cohort NAME [PATIENT ...] [--description TEXT]
    vitalstream console users
    vitalstream console token NAME --label TOOL          # an API token (printed once)

``--password-stdin`` reads the password from standard input (for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace
from typing import Any

from vitalstream.errors import ConfigError


def _settings(args: argparse.Namespace):
    from vitalstream.stream.cli import _settings as base

    s = base(args)
    c = s.console
    if getattr(args, "host", None):
        c = replace(c, host=args.host)
    if getattr(args, "port", None) is not None:
        c = replace(c, port=args.port)
    return replace(s, console=c)


def cmd_serve(args: argparse.Namespace) -> int:
    from vitalstream.stream.console.server import build, serve

    s = _settings(args)
    console = build(s)
    if not console.accounts.users():
        print("vitalstream console: no users yet: create one with "
              "`vitalstream console create-user NAME --role admin --cohort '*'`", file=sys.stderr)
    print(f"vitalstream console on http://{s.console.host}:{s.console.port}  "
          f"(API: /openapi.json, /api/docs)", flush=True)
    serve(console, s.console.host, s.console.port)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("console", None, "bad_value", "the passwords differ")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    from vitalstream.stream.console.server import accounts

    acc = accounts(_settings(args))
    if acc.user(args.name) is not None and not args.update:
        raise ConfigError("console", None, "exists", f"user {args.name!r} exists (--update to change)")
    u = acc.put_user(args.name, args.role, args.cohort or [], _password(args))
    print(f"user {u.username}: {u.role}, cohorts {', '.join(u.cohorts) or '(none)'}")
    return 0


def cmd_cohort(args: argparse.Namespace) -> int:
    from vitalstream.sinks.redis_streams import connect
    from vitalstream.stream.console.cohorts import Cohorts
    from vitalstream.stream.console.server import prefix

    s = _settings(args)
    co = Cohorts(connect(s.redis.url), prefix(s))
    co.put(args.name, args.patients, args.description or "")
    print(f"cohort {args.name}: {len(co.members().get(args.name, []))} patients")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from vitalstream.stream.console.server import accounts

    for u in accounts(_settings(args)).users():
        print(f"{u.username:<20} {u.role:<10} {','.join(u.cohorts) or '-'}"
              f"{'  (disabled)' if u.disabled else ''}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from vitalstream.stream.console.server import accounts

    print(accounts(_settings(args)).create_token(args.name, args.label))
    return 0


def add_console_commands(sub: Any) -> None:
    from vitalstream.stream.cli import _add_service_opts

    co = sub.add_parser("console", help="the care-team web console (and its users, cohorts)")
    co.add_argument("--config")
    co.add_argument("--host", help="listen address (default 127.0.0.1)")
    co.add_argument("--port", type=int, help="listen port (default 8080) [VITALSTREAM_CONSOLE_PORT]")
    _add_service_opts(co)
    co.set_defaults(func=cmd_serve)
    csub = co.add_subparsers(dest="console_command", metavar="ACTION")

    def parser(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=help_text)
        p.add_argument("--config")
        _add_service_opts(p)
        p.set_defaults(func=func)
        return p

    parser("serve", "serve the console (the default)", cmd_serve)
    cu = parser("create-user", "create (or --update) a console user", cmd_create_user)
    cu.add_argument("name")
    cu.add_argument("--role", required=True, choices=("viewer", "nurse", "physician", "admin"))
    cu.add_argument("--cohort", action="append", help="a cohort the user sees (repeat; '*': all)")
    cu.add_argument("--password-stdin", action="store_true")
    cu.add_argument("--update", action="store_true")
    ch = parser("cohort", "create a cohort and put patients in it", cmd_cohort)
    ch.add_argument("name")
    ch.add_argument("patients", nargs="*")
    ch.add_argument("--description")
    parser("users", "list console users", cmd_users)
    tk = parser("token", "create an API token for a user (printed once)", cmd_token)
    tk.add_argument("name")
    tk.add_argument("--label", required=True, help="what it is for (to revoke it by)")
