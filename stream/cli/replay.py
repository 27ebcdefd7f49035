"""``vitalstream replay FILE``: shadow mode over recorded readings (see ``stream.replay``).

    vitalstream replay day.csv --alerts-out alerts.jsonl --labels labels.csv
    vitalstream replay - --format senml < packs.senml

Alert events go to ``--alerts-out`` (default stdout), one JSON object per line;
the summary (readings, bad lines by reason with the first few, alerts by rule,
and with ``--labels`` the evaluation) goes to stderr, or as JSON to ``--report``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from vitalstream.stream.replay_input import read_replay_path


def cmd_replay(args: argparse.Namespace) -> int:
    from vitalstream.stream.alarm_eval import evaluate, read_labels
    from vitalstream.stream.cli import _settings
    from vitalstream.stream.replay import (TECHNICAL_RULES, Replay, alert_json, physiological,
                                           red_band, run_parallel)

    settings = _settings(args)
    labels = read_labels(args.labels) if args.labels else None  # fail before the long part
    inp = read_replay_path(args.file, args.format, args.device)
    out = sys.stdout if args.alerts_out in (None, "-") else open(args.alerts_out, "w", encoding="utf-8")
    writer = _Writer(settings) if args.write else None
    try:
        if writer is None:
            res = run_parallel(settings, inp.readings, args.workers)
        else:  # one process: the stores see one writer
            res = Replay(settings, on_results=writer.results,
                         on_readings=writer.readings).run(inp.readings)
        events = [alert_json(a) for a in res.alerts]
        for e in events:
            out.write(json.dumps(e) + "\n")
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
        if writer is not None:
            writer.close()
    report: dict[str, Any] = {
        "lines": inp.lines, "readings": res.readings, "patients": len(res.patients),
        "bad_lines": dict(sorted(inp.bad.items())), "bad_examples": inp.examples,
        "skipped": inp.skipped, "dead_letters": res.dead_letters,
        "quarantined": res.quarantined, "duplicates": res.duplicates,
        "aggregates": res.aggregates, "alert_events": len(events),
        "alerts_by_rule": _by_rule(events),
        "technical_alerts": sum(1 for e in events if e["rule"] in TECHNICAL_RULES
                                and e["state"] == "firing")}
    lines = [f"replay: {res.readings} readings of {len(res.patients)} patients from "
             f"{inp.lines} lines; {len(events)} alert events; {res.aggregates} window aggregates"]
    if inp.bad:
        lines.append("bad lines: " + ", ".join(f"{k} {v}" for k, v in sorted(inp.bad.items())))
        lines += [f"  {x}" for x in inp.examples]
    if res.dead_letters:
        lines.append("dead letters: " + ", ".join(f"{k} {v}" for k, v in
                                                  sorted(res.dead_letters.items())))
    for rule, n in report["alerts_by_rule"].items():
        lines.append(f"  {rule}: {n} alerts")
    if labels is not None:
        # the labels are about the patients: stale-data alarms are counted above, not here
        ev = evaluate(physiological(events), labels, patient_days=res.patient_days(),
                      valid=red_band)
        report["evaluation"] = ev.to_json()
        lines += ev.lines()
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    print("\n".join(lines), file=sys.stderr)
    return 0


def _by_rule(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        if e["state"] == "firing":
            out[e["rule"]] = out.get(e["rule"], 0) + 1
    return dict(sorted(out.items()))


class _Writer:
    """``--write``: results stored as historical data. Readings, aggregates and scores go
    to InfluxDB; alert events go to the Redis stream ``<alerts_stream>:replay``, not to the
    outreach stream (nobody is paged about the past)."""

    def __init__(self, settings: Any) -> None:
        import dataclasses

        from vitalstream.sinks.influx import InfluxWriter
        from vitalstream.sinks.redis_streams import RedisOutreach
        from vitalstream.stream import assembly
        from vitalstream.stream.store import OutcomeWriter, ResultWriter

        redis_cfg = dataclasses.replace(settings.redis,
                                        alerts_stream=settings.redis.alerts_stream + ":replay")
        self.lines = InfluxWriter(settings.influx)
        self.outreach = RedisOutreach(redis_cfg)
        self.outcomes = OutcomeWriter(self.lines, self.outreach)
        self.writer = ResultWriter(self.lines, self.outreach, assembly.window_size_ns(settings))

    def readings(self, batch: list) -> None:
        self.outcomes.write(batch)

    def results(self, items: list) -> None:
        self.writer.write(items)

    def close(self) -> None:
        self.writer.flush()
        self.writer.finish()
        self.lines.close()
        self.outreach.close()


def add_replay_command(sub: Any) -> None:
    r = sub.add_parser(
        "replay", help="run recorded readings through the live per-patient flow (shadow mode)",
        description="Replay recorded readings in event-time order through exactly the flow "
        "`vitalstream run` assembles from the same settings (rules, detectors, identity). "
        "Time follows the data; after the last reading it runs on until every window and "
        "buffer has closed. Nothing is written to services unless --write.")
    r.add_argument("file", help="readings file, or - for stdin")
    r.add_argument("--format", choices=("senml", "json", "csv", "omh"),
                   help="input format (default: from the extension)")
    r.add_argument("--device", help="read every line as this device's (as its MQTT topic would)")
    r.add_argument("--config", help="the settings file `vitalstream run` uses")
    r.add_argument("--identity", choices=("payload", "registry"),
                   help="device -> patient: payload/device id (default) or the registry")
    r.add_argument("--alerts-out", metavar="PATH", help="alert events, JSON lines (default stdout)")
    r.add_argument("--labels", metavar="PATH",
                   help="labelled episodes (CSV patient,kind,type,start,end) to evaluate against")
    r.add_argument("--report", metavar="PATH", help="also write the summary as JSON")
    r.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes, patients split between them (default: cores, at most 4; "
                   "1 with a registry or --write)")
    r.add_argument("--write", action="store_true",
                   help="store readings, aggregates and scores (InfluxDB) and alert events "
                   "(Redis stream <alerts_stream>:replay) as historical data")
    from vitalstream.stream.cli import _add_service_opts

    _add_service_opts(r)
    r.set_defaults(func=cmd_replay)
