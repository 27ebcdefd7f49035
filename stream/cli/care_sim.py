"""``vitalstream care simulate``: the closed chronic-care loop into Redis (``stream.care_sim``).

    vitalstream care simulate --patients 600 --days 28 --seed 7 [--experiment-policy nudges.yaml]
                              [--redis-url redis://127.0.0.1:6379/0] [--out DIR] [--reset]
    vitalstream experiment report bp-reminder-2026 --out reports/

It prints one JSON line: patients, exposures by variant, nudges sent, suppressed by
reason, tags set. ``--out DIR`` also writes the experiment's report there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vitalstream.errors import ConfigError


def cmd_care_simulate(args: argparse.Namespace) -> int:
    from vitalstream.operators.nudge import NudgePolicy
    from vitalstream.simulators.adherence import AdherenceCohort
    from vitalstream.sinks.profiles import ProfileStore
    from vitalstream.sinks.redis_streams import connect
    from vitalstream.stream import care_sim
    from vitalstream.stream import settings as config_mod

    if args.patients < 1 or args.days < 1:
        raise ConfigError("cli", None, "bad_arguments", "--patients and --days must be >= 1")
    policy = NudgePolicy.from_yaml(args.experiment_policy) if args.experiment_policy \
        else NudgePolicy.default()
    name = care_sim.experiment_strategy(policy).experiment.name
    s = config_mod.load(args.config, overrides={("redis", "url"): args.redis_url})
    r = connect(s.redis.url)
    if args.reset:
        care_sim.reset(r, name)
    elif r.hexists(care_sim.META_KEY, name) or r.exists(f"vitalstream:experiment:{name}:exposures"):
        raise ConfigError("cli", None, "not_empty",
                          f"experiment {name!r} already has data in {s.redis.url}: use an empty "
                          f"database or --reset")
    store = ProfileStore(r)
    run = care_sim.simulate(AdherenceCohort(args.patients, seed=args.seed), args.days,
                            policy=policy, store=store)
    summary = {"redis": s.redis.url, "seed": args.seed, **run.summary()}
    if args.out:
        from vitalstream.stream.experiment_report import report

        rep = report(run.exposures + run.outcomes, run.experiment,
                     care_sim.SIM_METRICS, Path(args.out))
        summary["report"] = {"txt": str(rep.txt), "json": str(rep.json), "png": str(rep.png)}
    print(json.dumps(summary))
    return 0


def add_care_sim_commands(sub) -> None:
    c = sub.add_parser("care", help="chronic care: the closed-loop simulation")
    csub = c.add_subparsers(dest="action", required=True)
    sim = csub.add_parser("simulate", help="simulated patients through the real care stage into "
                          "Redis, reminders fed back to the patients")
    sim.add_argument("--patients", type=int, default=600)
    sim.add_argument("--days", type=int, default=28)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--experiment-policy", help="nudge policy YAML with an experiment on a "
                     "'no bp_systolic reading' strategy (default: the packaged policy)")
    sim.add_argument("--config", help="site YAML")
    sim.add_argument("--redis-url", help="Redis [VITALSTREAM_REDIS_URL]")
    sim.add_argument("--out", help="also write the experiment's report (txt, json, png) here")
    sim.add_argument("--reset", action="store_true",
                     help="delete a previous run's exposures, outcomes and readings first")
    sim.set_defaults(func=cmd_care_simulate)
