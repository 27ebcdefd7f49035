"""Patients who measure their blood pressure irregularly, and answer reminders (or not).

The ground truth of an experiment on reminders, with no engine involved. Each patient has:

- a base probability of measuring on a given day (Beta(``base_a``, ``base_b``)),
- a weekly pattern: the probability times a per-weekday factor (weekends lower, by a
  per-patient amount up to ``weekend_dip``),
- drop-out periods: each active day a patient drops out with ``dropout_prob`` for a
  geometric number of days (mean ``dropout_mean_days``) and measures nothing,
- a systolic level (N(``sys_mean``, ``sys_sd``)) with day-to-day noise (``noise_sd``),
  diastolic ``0.6 * systolic + N(5, 4)``, both whole mm[Hg] as cuffs report them.

A nudge on day ``d`` (at ``nudge_hour``, before any of that day's readings, which fall
between 07:00 and 22:00 UTC) raises the chance of measuring that day from ``p`` to
``1 - (1 - p)(1 - r)``, ``r = response_prob[variant]`` (a nudge reaches a dropped-out
patient too). The same uniform draw decides every patient-day whatever the nudge
(common random numbers), so a nudge only ever adds measurements. An exposed patient's
systolic level moves by ``trend_mm_hg_per_day[variant]`` each day for ``trend_days``
days after exposure (then stays).

``run_experiment`` exposes patients the first day they have gone ``trigger`` days without
a reading (intention to treat: holdout patients are exposed too) and returns the events
with the ground truth. Every exposed patient responds with ``response_prob[variant]``: the
holdout's (0.0 by default, no reminder sent) is there so that a null experiment can be
simulated (the same response in both arms).

>>> from vitalstream.operators.experiment.assign import Experiment
>>> c = AdherenceCohort(50, seed=3)
>>> run = run_experiment(c, Experiment("bp", "s", ("holdout", "sms", "app")), days=20)
>>> len(run.exposures) > 0, run.exposures[0].at_ns % 86_400_000_000_000 == 6 * 3_600_000_000_000
(True, True)
>>> c2 = AdherenceCohort(50, seed=3)
>>> run_experiment(c2, Experiment("bp", "s", ("holdout", "sms", "app")), days=20).events == run.events
True
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from vitalstream.care import Exposure
from vitalstream.model import Reading
from vitalstream.signals import Signal

NS = 1_000_000_000
HOUR_NS = 3600 * NS
DAY_NS = 24 * HOUR_NS
START_NS = calendar.timegm((2026, 6, 1, 0, 0, 0)) * NS  # a Monday

RESPONSE_PROB = {"holdout": 0.0, "sms": 0.25, "app": 0.35}


class AdherenceCohort:
    """``n`` simulated patients, seeded; advanced one day at a time by ``readings_for_day``."""

    def __init__(self, n: int, seed: int, *, response_prob: Mapping[str, float] = RESPONSE_PROB,
                 trend_mm_hg_per_day: Mapping[str, float] | None = None, trend_days: int = 30,
                 base_a: float = 2.0, base_b: float = 3.0, weekend_dip: float = 0.5,
                 dropout_prob: float = 0.03, dropout_mean_days: float = 7.0,
                 sys_mean: float = 142.0, sys_sd: float = 12.0, noise_sd: float = 7.0,
                 start_ns: int = START_NS, nudge_hour: int = 6, prefix: str = "p") -> None:
        self.n, self.seed = n, seed
        self.response_prob = dict(response_prob)
        self.trend = dict(trend_mm_hg_per_day or {})
        self.trend_days, self.start_ns, self.nudge_hour = trend_days, start_ns, nudge_hour
        self.dropout_prob, self.noise_sd = dropout_prob, noise_sd
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.patients = [f"{prefix}{i:05d}" for i in range(n)]
        self._index = {p: i for i, p in enumerate(self.patients)}
        self.base_prob = rng.beta(base_a, base_b, n)
        dip = rng.uniform(0.0, weekend_dip, n)
        self.weekday_factor = np.ones((n, 7))
        self.weekday_factor[:, 5:] = (1.0 - dip)[:, None]  # Saturday, Sunday
        self.level = rng.normal(sys_mean, sys_sd, n)
        self._dropout_p = 1.0 / dropout_mean_days  # chance a dropped-out day is the last
        self.dropped = np.zeros(n, bool)
        self.exposed_day: dict[str, int] = {}
        self.variant: dict[str, str] = {}
        self.day = 0

    def index(self, patient: str) -> int:
        return self._index[patient]

    def day_prob(self, day: int) -> np.ndarray:
        """Each patient's probability of measuring on ``day`` without a nudge (ground truth:
        call it before ``readings_for_day(day)``, which draws the drop-outs of the next)."""
        p = self.base_prob * self.weekday_factor[:, (day % 7)]
        return np.where(self.dropped, 0.0, p)

    def measure_prob(self, day: int, variant: str | None) -> np.ndarray:
        """The probability of measuring on ``day`` if nudged with ``variant`` (None: not)."""
        r = 0.0 if variant is None else self.response_prob.get(variant, 0.0)
        return 1.0 - (1.0 - self.day_prob(day)) * (1.0 - r)

    def readings_for_day(self, day: int, nudged: Mapping[str, str | None]) -> list[Reading]:
        """The day's readings; ``nudged``: patients reminded this morning -> variant (None or
        a variant without a response probability: not reminded)."""
        if day != self.day:
            raise ValueError(f"day {day}: the cohort is at day {self.day} (one day at a time)")
        rng, n = self.rng, self.n
        r = np.zeros(n)
        for p, v in nudged.items():
            if v is not None:
                r[self._index[p]] = self.response_prob.get(v, 0.0)
        q = 1.0 - (1.0 - self.day_prob(day)) * (1.0 - r)
        u = rng.random(n)
        minute = rng.integers(7 * 60, 22 * 60, n)
        noise = rng.normal(0.0, self.noise_sd, n)
        dia_noise = rng.normal(5.0, 4.0, n)
        # the next day's drop-outs: active ones may drop, dropped ones may come back
        flip = rng.random(n)
        self.dropped = np.where(self.dropped, flip >= self._dropout_p, flip < self.dropout_prob)
        self.day += 1
        out: list[Reading] = []
        day0 = self.start_ns + day * DAY_NS
        for i in np.flatnonzero(u < q):
            p = self.patients[i]
            sys = self.level[i] + noise[i] + self._trend_shift(p, day)
            t = day0 + int(minute[i]) * 60 * NS
            dev = f"cuff-{p}"
            out.append(Reading(p, dev, Signal.BP_SYSTOLIC, float(round(sys)), "mm[Hg]", t, t))
            out.append(Reading(p, dev, Signal.BP_DIASTOLIC, float(round(0.6 * sys + dia_noise[i])),
                               "mm[Hg]", t, t))
        return out

    def _trend_shift(self, patient: str, day: int) -> float:
        d0 = self.exposed_day.get(patient)
        if d0 is None:
            return 0.0
        return self.trend.get(self.variant[patient], 0.0) * min(max(day - d0, 0), self.trend_days)

    def expose(self, patient: str, day: int, variant: str) -> None:
        self.exposed_day[patient] = day
        self.variant[patient] = variant


Trigger = Callable[[str, int, int], bool]  # (patient, day, days since last reading) -> expose?


@dataclass
class ExperimentRun:
    """Events in time order (Exposure and Reading) and the ground truth.

    ``truth_measured``: per exposed patient, the probability of measuring within 24 h of
    exposure under each variant (the same patient-day, every arm); ``true_effect(v)``: its
    mean difference to the holdout over all exposed patients (the sample's average effect)."""

    events: list = field(default_factory=list)
    exposures: list[Exposure] = field(default_factory=list)
    truth_measured: dict[str, dict[str, float]] = field(default_factory=dict)
    trend_effect: dict[str, float] = field(default_factory=dict)
    control: str | None = None

    def true_effect(self, variant: str) -> float:
        ps = self.truth_measured.values()
        return float(np.mean([q[variant] - q[self.control] for q in ps])) if ps else float("nan")


def run_experiment(cohort: AdherenceCohort, experiment, days: int,
                   trigger: int | Trigger = 3, strategy: str = "bp-missing") -> ExperimentRun:
    """Advance the cohort ``days`` days; each morning expose (once per patient) those the
    trigger picks: by default, no reading for ``trigger`` days (every patient measured the
    day before day 0)."""
    fire: Trigger = ((lambda p, d, since: since >= trigger) if isinstance(trigger, int)
                     else trigger)
    control = experiment.holdout or experiment.variants[0]
    run = ExperimentRun(control=control,
                        trend_effect={v: cohort.trend.get(v, 0.0) - cohort.trend.get(control, 0.0)
                                      for v in experiment.variants})
    last = {p: -1 for p in cohort.patients}
    exposed: set[str] = set()
    for day in range(cohort.day, cohort.day + days):
        at = cohort.start_ns + day * DAY_NS + cohort.nudge_hour * HOUR_NS
        nudged: dict[str, str | None] = {}
        probs = None
        for p in cohort.patients:
            if p in exposed or not fire(p, day, day - last[p]):
                continue
            v = experiment.assign(p)
            exposed.add(p)
            cohort.expose(p, day, v)
            e = Exposure(experiment.name, v, p, strategy, at)
            run.exposures.append(e)
            run.events.append(e)
            nudged[p] = v  # the holdout too: its response_prob (0 by default) applies
            if probs is None:
                probs = {w: cohort.measure_prob(day, w) for w in experiment.variants}
            i = cohort.index(p)
            run.truth_measured[p] = {w: float(probs[w][i]) for w in experiment.variants}
        readings = cohort.readings_for_day(day, nudged)
        readings.sort(key=lambda r: (r.event_ns, r.patient, r.signal.value))
        for r in readings:
            last[r.patient] = day
        run.events.extend(readings)
    return run
