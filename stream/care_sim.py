"""The chronic-care loop closed: simulated patients, the real care stage, Redis, and back.

``simulate`` advances an ``AdherenceCohort`` (``simulators.adherence``) one day at a
time. Each day's readings go, in event time, into the care stage (``operators.care``:
``ProfileRules`` -> ``NudgePolicy`` -> ``OutcomeTracker``) hosted by ``CareService``;
its outputs are written to Redis by a ``CareWriter`` (``sinks.profiles.ProfileStore``).
The nudges of the experiment's strategy that the engine emitted that day (a ``Nudge``,
or for the holdout a ``NudgeSuppressed`` with reason "holdout") decide who the
simulator counts as reminded the next day, with the response probability of their
variant. So caps, quiet hours, repeats and digests act on what the patients see,
and the outcomes are those of the engine's own exposures.

Every patient is enrolled (``CareEvent`` "enrol") in the strategy's programme at the
start (day 0, 00:00 UTC); the profile tags them as the readings come. Each person has
a ``CareService`` of their own, on a ``FakeClock`` of their own, moved to every reading
before it is fed (timers first: a deadline at ``t`` is served before a reading at
``t``) and to the end of every day: the care stage is keyed by person, so a host per
key gives the same outputs as one host for all, with each reading's timers served first.

What is written to Redis, beside the care stage's own keys: the simulated readings
(stream ``vitalstream:care:sim:readings``: what ``vitalstream experiment report``
recomputes the outcomes from, to check the streamed ones) and the run's description
(hash ``vitalstream:care:sim:meta``, field = experiment name: variants, weights,
metrics, and ``until_ns``, the end of the last outcome window the stream has closed).

>>> from vitalstream.simulators.adherence import AdherenceCohort
>>> run = simulate(AdherenceCohort(40, seed=1), days=10)
>>> run.experiment.name, sorted(run.exposure_counts()) == sorted(set(run.experiment.variants))
('bp-reminder-2026', True)
>>> all(r.closed_ns <= run.until_ns for r in run.outcomes)
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from vitalstream.care import CareEvent, Exposure, Nudge, NudgeSuppressed, TagChange
from vitalstream.errors import ConfigError
from vitalstream.model import Reading
from vitalstream.operators.care import CareFlow
from vitalstream.operators.experiment.assign import Experiment
from vitalstream.operators.experiment.outcomes import MeasuredWithin, Metric, OutcomeRecord, OutcomeTracker
from vitalstream.operators.nudge import NudgePolicy
from vitalstream.operators.nudge.strategy import Strategy
from vitalstream.operators.profile import ProfileRules, default_rules
from vitalstream.signals import Signal
from vitalstream.simulators.adherence import DAY_NS, AdherenceCohort
from vitalstream.stream.care import CareService, CareWriter
from vitalstream.clock import FakeClock

NS = 1_000_000_000
READINGS_STREAM = "vitalstream:care:sim:readings"
META_KEY = "vitalstream:care:sim:meta"
# Outcomes of the loop: did the patient measure within one day, and within two days, of
# the exposure (a reminder reaches the simulated patient the day after it was sent, so
# the two-day window holds the whole of that day).
SIM_METRICS: tuple[Metric, ...] = (MeasuredWithin(within_s=86_400), MeasuredWithin(within_s=172_800))


def experiment_strategy(policy: NudgePolicy) -> Strategy:
    """The policy's first strategy with an experiment on a silence of blood pressure."""
    for s in policy.strategies:
        if (s.experiment is not None and s.trigger.kind == "no_reading"
                and s.trigger.signal == Signal.BP_SYSTOLIC.value):
            return s
    raise ConfigError("care-sim", None, "bad_policy",
                      "the policy has no strategy with an experiment on 'no bp_systolic reading'")


@dataclass
class CareSimRun:
    """What the loop produced (in emission order, day by day) and the ground truth.

    ``truth_measured``: per exposed patient, the probability of measuring on the day after
    the exposure (the day the reminder acts on) under each variant, taken from the cohort
    before that day was drawn; ``true_effect(v)`` its mean difference to the control over
    the exposed patients: the effect if every reminder were sent at once (caps, quiet
    hours and repeats only ever make the loop's effect smaller)."""

    experiment: Experiment
    strategy: str
    metrics: tuple[Metric, ...]
    start_ns: int
    end_ns: int
    until_ns: int  # outcome windows ending by then are closed (and in Redis)
    patients: int = 0
    events: list = field(default_factory=list)  # Exposure, Reading, Nudge, OutcomeRecord
    outputs: list = field(default_factory=list)  # everything the care stage emitted
    truth_measured: dict[str, dict[str, float]] = field(default_factory=dict)
    nudged_days: int = 0  # patient-days the simulator counted as reminded

    @property
    def control(self) -> str:
        return self.experiment.holdout or self.experiment.variants[0]

    @property
    def exposures(self) -> list[Exposure]:
        return [x for x in self.outputs if type(x) is Exposure]

    @property
    def readings(self) -> list[Reading]:
        return [x for x in self.events if type(x) is Reading]

    @property
    def nudges(self) -> list[Nudge]:
        return [x for x in self.outputs if type(x) is Nudge]

    @property
    def outcomes(self) -> list[OutcomeRecord]:
        return [x for x in self.outputs if type(x) is OutcomeRecord]

    def exposure_counts(self) -> dict[str, int]:
        out = {v: 0 for v in self.experiment.variants}
        for e in self.exposures:
            if e.experiment == self.experiment.name:
                out[e.variant] = out.get(e.variant, 0) + 1
        return out

    def true_effect(self, variant: str) -> float:
        ps = list(self.truth_measured.values())
        return float(np.mean([q[variant] - q[self.control] for q in ps])) if ps else float("nan")

    def summary(self) -> dict[str, Any]:
        """The JSON line ``vitalstream care simulate`` prints."""
        suppressed: dict[str, int] = {}
        tags: dict[str, int] = {}
        sent: dict[str, int] = {}
        for x in self.outputs:
            t = type(x)
            if t is NudgeSuppressed:
                suppressed[x.reason] = suppressed.get(x.reason, 0) + 1
            elif t is TagChange and x.change == "set":
                tags[x.tag] = tags.get(x.tag, 0) + 1
            elif t is Nudge:
                sent[x.strategy] = sent.get(x.strategy, 0) + 1
        return {"experiment": self.experiment.name, "strategy": self.strategy,
                "patients": self.patients,
                "days": (self.end_ns - self.start_ns) // DAY_NS,
                "readings": len(self.readings), "exposures": self.exposure_counts(),
                "nudges_sent": sum(sent.values()), "nudges_by_strategy": dict(sorted(sent.items())),
                "suppressed": dict(sorted(suppressed.items())), "tags_set": dict(sorted(tags.items())),
                "outcomes": len(self.outcomes), "until_ns": self.until_ns}


class _DayBuffer:
    """The services' writer for one day: outputs kept, then written to Redis in one go
    in time order (one round trip a day instead of one per reading)."""

    def __init__(self) -> None:
        self.items: list = []

    def write(self, outputs: Iterable[Any]) -> None:
        self.items.extend(outputs)


def _time_of(x: Any) -> int:
    if type(x) is OutcomeRecord:
        return x.closed_ns
    return getattr(x, "at_ns", getattr(x, "event_ns", 0))


def sim_flow(policy: NudgePolicy, metrics: Sequence[Metric] = SIM_METRICS,
             lateness_s: int = 3600) -> CareFlow:
    """The care stage of the loop: every profile rule (ACC/AHA 2017) in the policy's zone,
    the policy, and the outcomes of the policy's experiment."""
    name = experiment_strategy(policy).experiment.name
    return CareFlow(ProfileRules(default_rules(), timezone=policy.timezone), policy,
                    OutcomeTracker(tuple(metrics), experiment=name, lateness_s=lateness_s))


def simulate(cohort: AdherenceCohort, days: int, *, policy: NudgePolicy | None = None,
             store: Any = None, lines: Any = None, metrics: Sequence[Metric] = SIM_METRICS,
             lateness_s: int = 3600, readings_stream: str = READINGS_STREAM,
             profile: bool = True) -> CareSimRun:
    """Run the loop for ``days`` days from the cohort's current day; ``store`` (a
    ``ProfileStore``, or None for a run in memory only) receives the care stage's outputs,
    the readings and the run's description; ``lines`` an optional InfluxDB line writer.
    ``profile=False`` leaves the profile out of the care stage (the programme is the
    enrolment either way): for repeated runs where only the nudges and outcomes matter."""
    policy = policy if policy is not None else NudgePolicy.default()
    strat = experiment_strategy(policy)
    exp = strat.experiment
    flow = sim_flow(policy, metrics, lateness_s)
    if not profile:
        flow = CareFlow(None, flow.nudges, flow.outcomes)
    start = cohort.start_ns + cohort.day * DAY_NS
    end = start + days * DAY_NS
    run = CareSimRun(exp, strat.name, tuple(metrics), start, end, end - lateness_s * NS - 1,
                     len(cohort.patients))
    writer = CareWriter(store, lines) if store is not None else None
    buf = _DayBuffer()
    services = {p: CareService(flow, buf, FakeClock(start)) for p in cohort.patients}
    if strat.trigger.programme:
        for p, svc in services.items():
            svc.feed([CareEvent(p, "enrol", start, strat.trigger.programme)])
    nudged: dict[str, str] = {}
    exposed_on: dict[str, int] = {}  # patient -> day of exposure (for the ground truth)
    for day in range(cohort.day, cohort.day + days):
        day_end = cohort.start_ns + (day + 1) * DAY_NS
        due_truth = [p for p, d in exposed_on.items() if d == day - 1]
        if due_truth:
            probs = {w: cohort.measure_prob(day, w) for w in exp.variants}
            for p in due_truth:
                i = cohort.index(p)
                run.truth_measured[p] = {w: float(probs[w][i]) for w in exp.variants}
        run.nudged_days += len(nudged)
        readings = cohort.readings_for_day(day, nudged)
        by_patient: dict[str, list[Reading]] = {}
        for r in readings:
            by_patient.setdefault(r.patient, []).append(r)
        for p, svc in services.items():
            logic = svc.logic(p)
            mine = sorted(by_patient.get(p, ()), key=lambda r: (r.event_ns, r.signal.value))
            i = 0
            while i < len(mine):
                j = i
                while j < len(mine) and mine[j].event_ns == mine[i].event_ns:
                    j += 1
                _timers_until(svc, logic, mine[i].event_ns)
                svc.feed(mine[i:j])  # systolic and diastolic of one measurement together
                i = j
            _timers_until(svc, logic, day_end)
        out = sorted(buf.items, key=_time_of)  # stable: a person's order is kept
        buf.items = []
        readings.sort(key=lambda r: (r.event_ns, r.patient, r.signal.value))
        nudged = {}
        for x in out:
            t = type(x)
            if t is Exposure and x.experiment == exp.name:
                exposed_on.setdefault(x.patient, day)
                cohort.expose(x.patient, day, x.variant)
            elif t is Nudge and x.experiment == exp.name and x.strategy == strat.name:
                nudged[x.patient] = x.variant
            elif (t is NudgeSuppressed and x.reason == "holdout" and x.experiment == exp.name
                  and x.strategy == strat.name):
                nudged[x.patient] = x.variant
        run.outputs += out
        run.events += sorted([x for x in out if type(x) in (Exposure, Nudge, OutcomeRecord)]
                             + readings, key=_time_of)
        if store is not None:
            writer.write(out)
            _store_readings(store.r, readings_stream, readings)
    if store is not None:
        store.r.hset(META_KEY, exp.name, json.dumps(describe(run, readings_stream, lateness_s)))
    return run


def _timers_until(svc: CareService, logic: Any, t_ns: int) -> None:
    """``svc.run_until(t_ns)`` for a service hosting one logic, asking the logic for its
    next deadline once per timer instead of three times (the loop's hot path)."""
    again = None
    while True:
        nxt = logic.notify_at()
        if nxt is None or nxt > t_ns:
            break
        now = svc.clock.now_ns()
        if nxt > now:
            svc.clock.set(nxt)
        elif again == now:  # asked twice for a time already reached: it would spin
            raise RuntimeError(f"care logic of {logic.key} did not move its timer on")
        else:
            again = now
        svc.tick()
    if t_ns > svc.clock.now_ns():
        svc.clock.set(t_ns)


def describe(run: CareSimRun, readings_stream: str = READINGS_STREAM, lateness_s: int = 3600) -> dict:
    """The run's description as stored in ``META_KEY`` (what the report reads back)."""
    e = run.experiment
    return {"experiment": e.name, "seed": e.seed, "variants": list(e.variants),
            "weights": list(e.weights), "holdout": e.holdout, "strategy": run.strategy,
            "metrics": [m.name for m in run.metrics], "start_ns": run.start_ns,
            "end_ns": run.end_ns, "until_ns": run.until_ns, "lateness_s": lateness_s,
            "readings_stream": readings_stream}


def _store_readings(r, stream: str, readings: list[Reading]) -> None:
    pipe = r.pipeline(transaction=False)
    for x in readings:
        pipe.xadd(stream, {"patient": x.patient, "device": x.device, "signal": x.signal.value,
                           "value": repr(x.value), "unit": x.unit, "event_ns": str(x.event_ns)})
    pipe.execute()


def stored_readings(r, stream: str = READINGS_STREAM, batch: int = 10_000) -> list[Reading]:
    """The readings a loop stored in ``stream`` (in the order written)."""
    out: list[Reading] = []
    after = "-"
    while True:
        got = r.xrange(stream, min=after, count=batch)
        for _, f in got:
            f = {_s(k): _s(v) for k, v in f.items()}
            t = int(f["event_ns"])
            out.append(Reading(f["patient"], f["device"], Signal(f["signal"]), float(f["value"]),
                               f["unit"], t, t))
        if len(got) < batch:
            return out
        after = "(" + _s(got[-1][0])  # exclusive: after the last one read


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else x


def reset(r, experiment: str, readings_stream: str = READINGS_STREAM) -> int:
    """Delete a previous loop's experiment hashes, stored readings and description."""
    return r.delete(f"vitalstream:experiment:{experiment}:exposures",
                    f"vitalstream:experiment:{experiment}:outcomes", readings_stream) + \
        r.hdel(META_KEY, experiment)
