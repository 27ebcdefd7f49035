"""An experiment's report: per variant, the outcome and its difference to control.

``report(events, experiment, metrics, out_dir)`` takes the experiment's events as plain
records (``Exposure`` and ``Reading``, from which the outcomes of the windows closed by
the newest event are computed with ``batch_outcomes``, or ``OutcomeRecord`` already computed by the stream) and writes:

- ``NAME.txt``: per metric, a table of variant, n, mean, the fixed-horizon CI of the
  difference to control (valid if read once, at the planned end), the always-valid
  confidence sequence of that difference (valid however often it is read), its method,
  and the sample-ratio-mismatch p-value of the exposure counts against the weights;
- ``NAME.json``: the same numbers;
- ``NAME.png``: per metric, each variant's cumulative mean by day of exposure with its
  always-valid band.

>>> from vitalstream.care import Exposure
>>> from vitalstream.operators.experiment.outcomes import OutcomeRecord
>>> from vitalstream.operators.experiment.assign import Experiment
>>> e = Experiment("demo", "s", ("holdout", "sms"))
>>> recs = [OutcomeRecord("demo", v, f"p{i}", "m", float(i % 3 == 0), i, i + 1)
...         for i, v in enumerate(["holdout", "sms"] * 10)]
>>> rep = build_summary(recs, e)
>>> [(r.variant, r.n) for r in rep.tables[0].rows]
[('holdout', 10), ('sms', 10)]
>>> print(render_table(rep).splitlines()[0])
experiment demo: SRM p = 1 (chi-square (df=1)); control holdout
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vitalstream.care import Exposure
from vitalstream.model import Reading
from vitalstream.operators.experiment.outcomes import (DEFAULT_METRICS, DAY_NS, Metric,
                                                       OutcomeRecord, batch_outcomes, summarise)
from vitalstream.operators.experiment.srm import srm_chisquare
from vitalstream.operators.experiment.stats import (diff_confidence_sequence, fixed_diff,
                                                    mean_confidence_sequence, rho_for)


@dataclass(frozen=True)
class Row:
    variant: str
    n: int
    mean: float
    sd: float
    ci_mean: tuple[float, float]
    diff: float | None  # variant - control; None for the control
    ci_fixed: tuple[float, float] | None
    cs: tuple[float, float] | None
    method: str
    fixed_method: str
    srm_p: float


@dataclass(frozen=True)
class MetricTable:
    metric: str
    rows: list[Row]


@dataclass
class Report:
    experiment: str
    control: str
    alpha: float
    srm_p: float
    srm_method: str
    counts: dict[str, int]
    tables: list[MetricTable] = field(default_factory=list)
    txt: Path | None = None
    json: Path | None = None
    png: Path | None = None

    def table(self, metric: str) -> MetricTable:
        return next(t for t in self.tables if t.metric == metric)

    def to_json(self) -> dict:
        return {"experiment": self.experiment, "control": self.control, "alpha": self.alpha,
                "srm_p": self.srm_p, "srm_method": self.srm_method, "counts": self.counts,
                "metrics": {t.metric: [asdict(r) for r in t.rows] for t in self.tables}}


def _outcomes(events: Sequence[object], name: str, metrics: Sequence[Metric]) -> list[OutcomeRecord]:
    given = [x for x in events if isinstance(x, OutcomeRecord) and x.experiment == name]
    if given:
        return given
    items = [x for x in events if isinstance(x, (Exposure, Reading))]
    # only windows that have closed by the newest event: an open one would count readings
    # not yet taken as missing
    until = max((x.at_ns if isinstance(x, Exposure) else x.event_ns for x in items), default=None)
    return batch_outcomes(items, metrics, experiment=name, until_ns=until)


def _ordered(records: Iterable[OutcomeRecord]) -> list[OutcomeRecord]:
    return sorted((r for r in records if r.value is not None), key=lambda r: (r.exposed_ns, r.patient))


def build_summary(events: Iterable[object], experiment, metrics: Sequence[Metric] = DEFAULT_METRICS,
                  alpha: float = 0.05, rho: float | None = None) -> Report:
    """The report's numbers, without writing anything. ``rho`` defaults to the value
    tightest at the data's size (``rho_for``)."""
    events = list(events)
    name = experiment.name
    records = _outcomes(events, name, metrics)
    exposures = {x.patient: x.variant for x in events
                 if isinstance(x, Exposure) and x.experiment == name}
    if not exposures:
        exposures = {r.patient: r.variant for r in records}
    weights = dict(zip(experiment.variants, experiment.weights))
    counts = {v: 0 for v in experiment.variants}
    for v in exposures.values():
        counts[v] = counts.get(v, 0) + 1
    srm = srm_chisquare(counts, weights)
    control = experiment.holdout or experiment.variants[0]
    rep = Report(name, control, alpha, srm.p_value, srm.method, counts)
    metric_names = [m.name for m in metrics] if not any(isinstance(x, OutcomeRecord) for x in events) \
        else sorted({r.metric for r in records})
    for metric in metric_names:
        recs = [r for r in records if r.metric == metric]
        summ = summarise(recs, metric, alpha)
        ordered = _ordered(recs)
        ctrl = [r.value for r in ordered if r.variant == control]
        rows = []
        for v in experiment.variants:
            s = summ.get(v)
            if s is None:
                continue
            if v == control:
                rows.append(Row(v, s.n, s.mean, s.sd, (s.ci_low, s.ci_high), None, None, None,
                                "", "", srm.p_value))
                continue
            mine = [r.value for r in ordered if r.variant == v]
            iv = fixed_diff(mine, ctrl, alpha)
            pair = [r for r in ordered if r.variant in (v, control)]
            y = np.array([r.value for r in pair], float)
            a = np.array([r.variant == v for r in pair], bool)
            pi = weights[v] / (weights[v] + weights[control])
            cs = diff_confidence_sequence(y, a, pi, alpha, rho).last()
            rows.append(Row(v, s.n, s.mean, s.sd, (s.ci_low, s.ci_high), iv.estimate,
                            (iv.low, iv.high), (cs.low, cs.high), cs.method, iv.method,
                            srm.p_value))
        rep.tables.append(MetricTable(metric, rows))
    return rep


def _f(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def _iv(x: tuple[float, float] | None) -> str:
    return "-" if x is None else f"[{_f(x[0])}, {_f(x[1])}]"


def render_table(summary: Report) -> str:
    """The text table of a report (one block per metric)."""
    lines = [f"experiment {summary.experiment}: SRM p = {summary.srm_p:.3g} ({summary.srm_method}); "
             f"control {summary.control}"]
    head = ("variant", "n", "mean", "diff", f"CI fixed {1 - summary.alpha:.0%}",
            f"CS always-valid {1 - summary.alpha:.0%}", "method", "SRM p")
    for t in summary.tables:
        body = [(r.variant, str(r.n), _f(r.mean), _f(r.diff), _iv(r.ci_fixed), _iv(r.cs),
                 r.method or "-", f"{r.srm_p:.3g}") for r in t.rows]
        widths = [max(len(c) for c in col) for col in zip(head, *body)]
        lines += ["", f"metric {t.metric}",
                  "  ".join(h.ljust(w) for h, w in zip(head, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
    return "\n".join(lines) + "\n"


def _plot(records: list[OutcomeRecord], rep: Report, experiment, path: Path) -> None:
    # the object API with the Agg canvas: no pyplot, no global backend switch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = [t.metric for t in rep.tables] or ["(no outcomes)"]
    fig = Figure(figsize=(8, 3.2 * len(metrics)), dpi=100)
    FigureCanvasAgg(fig)
    t0 = min((r.exposed_ns for r in records), default=0)
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(len(metrics), 1, k + 1)
        for v in experiment.variants:
            rs = [r for r in _ordered(records) if r.metric == metric and r.variant == v]
            if not rs:
                continue
            y = np.array([r.value for r in rs], float)
            day = np.array([(r.exposed_ns - t0) // DAY_NS for r in rs])
            cs = mean_confidence_sequence(y, rep.alpha, rho_for(len(y), rep.alpha))
            last = np.r_[np.flatnonzero(np.diff(day)), len(day) - 1]  # each day's last unit
            (line,) = ax.plot(day[last], cs.estimate[last], label=f"{v} (n={len(y)})")
            lo, hi = cs.low[last], cs.high[last]
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(day[last][ok], lo[ok], hi[ok], alpha=0.2, color=line.get_color())
        ax.set_title(f"{rep.experiment}: {metric}")
        ax.set_xlabel("day of exposure")
        ax.set_ylabel("cumulative mean (always-valid band)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png")


def report(events: Iterable[object], experiment, metrics: Sequence[Metric] = DEFAULT_METRICS,
           out_dir: str | Path = ".", alpha: float = 0.05, rho: float | None = None) -> Report:
    """Compute the report and write ``NAME.txt``, ``NAME.json`` and ``NAME.png`` in ``out_dir``."""
    events = list(events)
    rep = build_summary(events, experiment, metrics, alpha, rho)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep.txt, rep.json, rep.png = (out / f"{experiment.name}.{ext}" for ext in ("txt", "json", "png"))
    rep.txt.write_text(render_table(rep))
    rep.json.write_text(json.dumps(rep.to_json(), indent=2, allow_nan=True))
    records = [r for r in _outcomes(events, experiment.name, metrics)]
    _plot(records, rep, experiment, rep.png)
    return rep
