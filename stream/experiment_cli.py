"""``vitalstream experiment report NAME``: the report of an experiment from what is in Redis.

The care stage stores each exposure (``vitalstream:experiment:NAME:exposures``) and each
closed outcome window (``...:outcomes``); ``report_from_redis`` reads both back, writes
``NAME.txt``, ``NAME.json`` and ``NAME.png`` (``stream.experiment_report.report``) and
prints the table and the paths.

The experiment's definition (variants and weights, for the sample-ratio check and the
assignment probability of the confidence sequence) comes from ``--nudges`` when given,
else from the description a simulated loop stored (``stream.care_sim``), else from the
packaged nudge policy.

Check: the outcomes are recomputed in batch (``batch_outcomes``) from the stored
exposures and the stored readings, and the streamed records are compared with them
exactly; the output says what was compared. The readings are those a simulated loop
keeps in Redis (``vitalstream:care:sim:readings``), else, with ``--influx-url``, those the
live pipeline wrote to its time-series store, read back per exposed patient over the
outcome windows (VictoriaMetrics keeps milliseconds: a device time finer than that reads
back rounded, and a trend over it may then differ in its last digits).

>>> [m.name for m in map(metric_from_name, ["measured_within_86400s:bp_systolic",
...                                         "trend_30d:bp_systolic",
...                                         "time_in_range_70-180_14d:glucose"])]
['measured_within_86400s:bp_systolic', 'trend_30d:bp_systolic', 'time_in_range_70-180_14d:glucose']
>>> metric_from_name("median:bp")
Traceback (most recent call last):
...
vitalstream.errors.ConfigError: experiment-report: unknown_metric: 'median:bp' is not a metric name this version computes
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from vitalstream.errors import ConfigError
from vitalstream.operators.experiment.assign import Experiment
from vitalstream.operators.experiment.outcomes import (MeasuredWithin, Metric, OutcomeRecord,
                                                       TimeInRange, TrendAfter, batch_outcomes)
from vitalstream.model import Reading
from vitalstream.signals import Signal
from vitalstream.stream.care_sim import META_KEY, READINGS_STREAM, stored_readings
from vitalstream.timeutil import to_datetime

STEP = "experiment-report"


def metric_from_name(name: str) -> Metric:
    """The metric an outcome record's ``metric`` names (the default names of
    ``operators.experiment.outcomes``)."""
    if m := re.fullmatch(r"measured_within_(\d+)s:(\w+)", name):
        return MeasuredWithin(m[2], int(m[1]))
    if m := re.fullmatch(r"trend_(\d+)d:(\w+)", name):
        return TrendAfter(m[2], int(m[1]))
    if m := re.fullmatch(r"time_in_range_([-\d.e+]+)-([\d.e+]+)_(\d+)d:(\w+)", name):
        got = TimeInRange(m[4], float(m[1]), float(m[2]), int(m[3]))
        if got.name == name:
            return got
    raise ConfigError(STEP, None, "unknown_metric",
                      f"{name!r} is not a metric name this version computes")


def _meta(r, name: str) -> dict | None:
    raw = r.hget(META_KEY, name)
    return None if raw is None else json.loads(raw)


def experiment_named(name: str, nudges: str | None, meta: dict | None) -> Experiment:
    from vitalstream.operators.nudge import NudgePolicy

    if nudges is None and meta is not None:
        return Experiment(meta["experiment"], meta["seed"], tuple(meta["variants"]),
                          tuple(meta["weights"]), meta["holdout"])
    policy = NudgePolicy.from_yaml(nudges) if nudges else NudgePolicy.default()
    for s in policy.strategies:
        if s.experiment is not None and s.experiment.name == name:
            return s.experiment
    where = nudges or "the packaged nudge policy"
    raise ConfigError(STEP, None, "unknown_experiment",
                      f"no experiment {name!r} in {where} (give its policy with --nudges)")


def store_readings(series, exposures: list, metrics: list) -> list[Reading]:
    """The readings of each exposed patient's outcome windows, read back from the time-series
    store the pipeline wrote them to (``stream.console.series``: InfluxQL or VictoriaMetrics).
    The store merges a patient's devices, so each reading comes back with device "store"."""
    signals = {m.signal for m in metrics}
    horizon = max((m.horizon_ns for m in metrics), default=0)
    out: list[Reading] = []
    for e in exposures:
        for signal, points in series.readings(e.patient, e.at_ns, e.at_ns + horizon).items():
            if signal in signals:
                out += [Reading(e.patient, "store", Signal(signal), float(v), "", t, t) for t, v in points]
    return out


def verify(store, name: str, records: list[OutcomeRecord], exposures: list, meta: dict | None,
           series=None) -> dict:
    """Streamed outcome records against ``batch_outcomes`` over the stored exposures and
    readings: ``{"compared": bool, "equal": bool, "what": str, ...}``."""
    stream = (meta or {}).get("readings_stream", READINGS_STREAM)
    readings = stored_readings(store.r, stream)
    metrics = [metric_from_name(n) for n in sorted({r.metric for r in records})] or \
        [metric_from_name(n) for n in (meta or {}).get("metrics", [])]
    if not readings and series is not None:
        readings, stream = store_readings(series, exposures, metrics), "the time-series store"
    if not readings:
        return {"compared": False, "equal": None,
                "what": f"not compared: no readings in {stream} (a simulated loop stores them; "
                        f"give --influx-url for the live pipeline's time-series store)"}
    until = (meta or {}).get("until_ns")
    batch = batch_outcomes(list(exposures) + readings, metrics, experiment=name, until_ns=until)
    key = lambda r: (r.patient, r.metric)  # noqa: E731
    streamed = {key(r): r for r in records}
    batched = {key(r): r for r in batch}
    if until is None:  # no stated end: compare the windows the stream has closed
        open_ = len(set(batched) - set(streamed))
        batched = {k: v for k, v in batched.items() if k in streamed}
    else:
        open_ = 0
    missing = sorted(set(batched) - set(streamed))
    extra = sorted(set(streamed) - set(batched))
    differ = sorted(k for k in set(streamed) & set(batched) if streamed[k] != batched[k])
    equal = not (missing or extra or differ)
    end = f"windows ended by {to_datetime(until).isoformat()}" if until is not None else \
        f"the {len(streamed)} windows the stream closed ({open_} batch windows still open)"
    what = (f"{len(streamed)} streamed outcome records (vitalstream:experiment:{name}:outcomes) "
            f"vs batch_outcomes over {len(exposures)} stored exposures and {len(readings)} readings "
            f"({stream}), {end}: " +
            ("equal" if equal else f"DIFFER ({len(missing)} missing from the stream, "
                                   f"{len(extra)} not in batch, {len(differ)} with other values)"))
    return {"compared": True, "equal": equal, "what": what, "streamed": len(streamed),
            "batch": len(batched), "missing": len(missing), "extra": len(extra),
            "differ": len(differ)}


def report_from_redis(store, name: str, out_dir: str | Path, args: argparse.Namespace) -> int:
    from vitalstream.stream.experiment_report import render_table, report

    meta = _meta(store.r, name)
    exp = experiment_named(name, getattr(args, "nudges", None), meta)
    records = [OutcomeRecord(**d) for d in store.outcomes(name)]
    records.sort(key=lambda r: (r.exposed_ns, r.patient, r.metric))
    exposures = store.exposures(name)
    if not exposures and not records:
        raise ConfigError(STEP, None, "no_data", f"experiment {name!r}: no exposures in Redis")
    metrics = [metric_from_name(n) for n in sorted({r.metric for r in records})]
    rep = report(list(exposures) + records, exp, metrics, out_dir)
    series = None
    if getattr(args, "influx_url", None):
        from vitalstream.stream.console.series import reader_for

        # every point: an exact recomputation must not see a thinned series
        series = reader_for(args.influx_url, token=getattr(args, "influx_token", None),
                            database=getattr(args, "influx_bucket", None) or "vitals",
                            max_points=10**9)
    check = verify(store, name, records, exposures, meta, series) \
        if getattr(args, "verify", True) is not False else None
    if getattr(args, "json", False):
        body: dict[str, Any] = rep.to_json()
        body.update(txt=str(rep.txt), json=str(rep.json), png=str(rep.png), verify=check)
        print(json.dumps(body))
    else:
        print(render_table(rep), end="")
        print(f"\nwrote {rep.txt}\nwrote {rep.json}\nwrote {rep.png}")
        if check is not None:
            print(f"verify: {check['what']}")
    return 1 if check is not None and check["equal"] is False else 0
