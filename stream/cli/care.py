"""``vitalstream profile|cohort|identity|experiment``: chronic care from the command line.

    vitalstream profile show p0042 [--json]          # tags with evidence, nudges sent/suppressed
    vitalstream profile tag p0042 hypertension [--clear] [--by nurse]   # a manual tag
    vitalstream cohort list hypertension [--json]     # persons with the tag in effect
    vitalstream cohort add|remove hypertension p0042  # cohort membership = a manual tag
    vitalstream identity link p0042 mrn H123456 --by nurse [--reason ...]
    vitalstream identity link p0042 patient p0977 --by dr.lee    # a merge
    vitalstream identity unlink patient p0977 --by dr.lee         # its split
    vitalstream identity show p0977 | mrn:H123456 [--json]
    vitalstream experiment report bp-reminder-2026 --out reports/

Everything reads and writes the Redis of ``--redis-url`` (or the config's). A
patient id that was merged answers for the person it was merged into.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vitalstream.care import CareEvent
from vitalstream.errors import ConfigError
from vitalstream.stream import settings as config_mod
from vitalstream.timeutil import to_datetime


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="site YAML")
    p.add_argument("--redis-url", help="Redis [VITALSTREAM_REDIS_URL]")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _redis(args: argparse.Namespace):
    from vitalstream.sinks.redis_streams import connect

    s = config_mod.load(getattr(args, "config", None),
                        overrides={("redis", "url"): getattr(args, "redis_url", None)})
    return connect(s.redis.url)


def _stores(args: argparse.Namespace):
    from vitalstream.connectors.persons import PersonRegistry
    from vitalstream.sinks.profiles import ProfileStore

    r = _redis(args)
    return ProfileStore(r), PersonRegistry(r)


def _when(ns: int | None) -> str:
    return "-" if ns is None else to_datetime(ns).strftime("%Y-%m-%d %H:%M UTC")


def cmd_profile_show(args: argparse.Namespace) -> int:
    store, persons = _stores(args)
    person = persons.resolve(args.patient)
    view = store.person(persons.ids(person))
    view["person"] = person
    view["aliases"] = persons.aliases(person)
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"person {person}" + (f" (asked for {args.patient})" if person != args.patient else ""))
    if view["aliases"]:
        print("aliases: " + ", ".join(view["aliases"]))
    print("tags:" if view["tags"] else "tags: none")
    for tag, t in sorted(view["tags"].items()):
        print(f"  {tag:26} {t['source']:8} since {_when(t['start_ns'])}  confidence "
              f"{t['confidence']:.2f}  [{t['id']}]")
        print(f"    rule: {t['rule']}")
        if t.get("guideline"):
            print(f"    guideline: {t['guideline']}")
        for e in t.get("evidence", [])[:6]:
            print(f"    evidence: {e['time'] if e['event_ns'] else ''} {e['signal']} {e['note']}")
    print("nudges:" if view["nudges"] else "nudges: none")
    for n in view["nudges"][-20:]:
        if n["status"] == "sent":
            print(f"  sent       {_when(n['at_ns'])} {n['strategy']} via {n['channel']}: {n['reason']}")
        else:
            print(f"  suppressed {_when(n['at_ns'])} {n['strategy']}: {n['reason']}"
                  + (f" ({n['detail']})" if n.get("detail") else ""))
    if view["suppressed"]:
        print("suppressed by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(view["suppressed"].items())))
    return 0


def _tag(args: argparse.Namespace, patient: str, tag: str, clear: bool) -> int:
    from vitalstream.ids import check_identifier

    check_identifier("patient", patient)
    check_identifier("tag", tag)
    store, persons = _stores(args)
    person = persons.resolve(patient)
    store.command(CareEvent(person, "clear-tag" if clear else "manual-tag", time.time_ns(), tag))
    print(json.dumps({"person": person, "tag": tag, "manual": not clear}))
    return 0


def cmd_profile_tag(args: argparse.Namespace) -> int:
    return _tag(args, args.patient, args.tag, args.clear)


def cmd_cohort(args: argparse.Namespace) -> int:
    if args.action in ("add", "remove"):
        if not args.patient:
            raise ConfigError("cli", None, "bad_arguments", f"cohort {args.action} TAG PATIENT")
        return _tag(args, args.patient, args.tag, args.action == "remove")
    store, persons = _stores(args)
    members: dict[str, dict] = {}
    for pid, start in store.cohort(args.tag):
        person = persons.resolve(pid)
        got = members.setdefault(person, {"person": person, "since_ns": start, "ids": []})
        got["since_ns"] = min(got["since_ns"], start)
        got["ids"].append(pid)
    rows = sorted(members.values(), key=lambda m: (m["since_ns"], m["person"]))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for m in rows:
            print(f"{m['person']:20} since {_when(m['since_ns'])}" +
                  (f"  (ids {', '.join(m['ids'])})" if m["ids"] != [m["person"]] else ""))
        print(f"{len(rows)} in cohort {args.tag}")
    return 0


def cmd_identity(args: argparse.Namespace) -> int:
    _, persons = _stores(args)
    if args.action == "show":
        ident = args.id
        if ":" in ident and ident.split(":", 1)[0] in ("mrn", "app", "phone", "msg", "patient"):
            kind, value = ident.split(":", 1)
            found = persons.find(kind, value)
            if found is None:
                raise ConfigError("identity", None, "unknown_alias", f"{ident} is no one's alias")
            ident = found
        view = persons.show(ident)
        if args.json:
            print(json.dumps(view, indent=2))
        else:
            print(f"person {view['person']}: ids {', '.join(view['ids'])}")
            for a in view["aliases"]:
                print(f"  alias {a}")
            for c in view["history"]:
                print(f"  {_when(c['at_ns'])} {c['op']} {c['alias']} by {c['by']}"
                      + (f": {c['reason']}" if c["reason"] else "")
                      + (f" (moved {', '.join(c['moved'])})" if c["moved"] else ""))
        return 0
    if args.action == "link":
        if len(args.rest) != 3:
            raise ConfigError("cli", None, "bad_arguments", "identity link PERSON KIND VALUE --by WHO")
        person, kind, value = args.rest
        c = persons.link(person, kind, value, by=args.by, reason=args.reason)
    else:
        if len(args.rest) != 2:
            raise ConfigError("cli", None, "bad_arguments", "identity unlink KIND VALUE --by WHO")
        kind, value = args.rest
        c = persons.unlink(kind, value, by=args.by, reason=args.reason)
    print(json.dumps(c.to_json()))
    return 0


def cmd_experiment_report(args: argparse.Namespace) -> int:
    from vitalstream.stream.experiment_cli import report_from_redis

    store, _ = _stores(args)
    return report_from_redis(store, args.name, Path(args.out), args)


def add_care_commands(sub) -> None:
    p = sub.add_parser("profile", help="a person's health profile: tags, evidence, nudges")
    psub = p.add_subparsers(dest="action", required=True)
    show = psub.add_parser("show", help="tags with their evidence, nudges sent and suppressed")
    show.add_argument("patient")
    _common(show)
    show.set_defaults(func=cmd_profile_show)
    tag = psub.add_parser("tag", help="set (or --clear) a manual tag: never overwritten by the data")
    tag.add_argument("patient")
    tag.add_argument("tag")
    tag.add_argument("--clear", action="store_true")
    _common(tag)
    tag.set_defaults(func=cmd_profile_tag)

    c = sub.add_parser("cohort", help="persons with a tag (list), or manual membership (add/remove)")
    c.add_argument("action", choices=["list", "add", "remove"])
    c.add_argument("tag")
    c.add_argument("patient", nargs="?")
    _common(c)
    c.set_defaults(func=cmd_cohort)

    i = sub.add_parser("identity", help="aliases of a person (mrn, app, phone, msg), merges and splits")
    i.add_argument("action", choices=["link", "unlink", "show"])
    i.add_argument("id", nargs="?", help="show: a patient id or KIND:VALUE")
    i.add_argument("rest", nargs="*", help="link: PERSON KIND VALUE; unlink: KIND VALUE")
    i.add_argument("--by", default="", help="who makes the change (required for link/unlink)")
    i.add_argument("--reason", default="", help="why (kept in the audit log)")
    _common(i)
    i.set_defaults(func=_identity_args)

    e = sub.add_parser("experiment", help="experiment results per variant")
    esub = e.add_subparsers(dest="action", required=True)
    rep = esub.add_parser("report", help="a table and a PNG of the outcome over time per variant")
    rep.add_argument("name")
    rep.add_argument("--out", default=".", help="folder for NAME.txt, NAME.json and NAME.png")
    rep.add_argument("--nudges", help="nudge strategies YAML (default: the packaged one)")
    rep.add_argument("--influx-url", help="the time-series store the pipeline writes readings to: "
                     "the outcomes are recomputed from them in batch and compared")
    rep.add_argument("--influx-token")
    rep.add_argument("--influx-bucket", help="bucket, or InfluxQL database (default vitals)")
    _common(rep)
    rep.set_defaults(func=cmd_experiment_report)


def _identity_args(args: argparse.Namespace) -> int:
    # argparse gives link/unlink's first positional to "id": put it back in front
    if args.action != "show" and args.id is not None:
        args.rest = [args.id, *args.rest]
    if args.action == "show" and not args.id:
        raise ConfigError("cli", None, "bad_arguments", "identity show ID")
    return cmd_identity(args)
