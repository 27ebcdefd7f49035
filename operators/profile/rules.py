"""The rules that derive profile tags from a patient's recent days.

Each rule is a frozen config with ``evaluate(days, today, ctx) -> Verdict``: does
the evidence of the last ``days_n`` local days say the tag holds, with what
confidence and on which facts. A rule that lacks the data to decide says so
(``decided=False``) and the tag keeps its state: a week without readings does
not end a hypertension tag (``non-adherent-measurement`` is the tag for that).

Confidence is the share of the evidence a rule asks for twice over: a tag set
on exactly the minimum evidence has confidence 0.5, and reaches 1.0 when the
evidence is twice the minimum. It is a statement about how much data stands
behind the tag, not a probability.

>>> from vitalstream.operators.profile.days import Day
>>> days = {d: Day(bp_n=2, sbp_sum_mm_hg=2 * 146, dbp_sum_mm_hg=2 * 92) for d in (10, 12, 15)}
>>> v = Hypertension().evaluate(days, today=15, ctx=Context())
>>> v.on, v.confidence, v.rule
(True, 0.5, 'acc-aha-2017 stage-1 or above: mean 146/92 mm[Hg] of 6 readings on 3 days of 28')
>>> Hypertension().evaluate({10: days[10]}, today=15, ctx=Context()).decided
False
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitalstream.care import Evidence
from vitalstream.operators.bp import category_rank, classify_means, guideline_named
from vitalstream.operators.profile.days import Day

NS = 1_000_000_000


@dataclass(frozen=True)
class Verdict:
    on: bool
    confidence: float = 0.0
    rule: str = ""
    evidence: tuple[Evidence, ...] = ()
    guideline: str = ""
    decided: bool = True


UNDECIDED = Verdict(False, decided=False)


@dataclass
class Context:
    """What rules may know beyond the days: the tags active now and since when (ns)."""

    active: dict = field(default_factory=dict)  # tag -> start_ns
    now_ns: int = 0


def _recent(days: dict[int, Day], today: int, n: int, *, complete: bool = False) -> list[tuple[int, Day]]:
    """Days of the last ``n`` (``complete``: yesterday and before, a day not yet over
    would read as a day of little activity)."""
    last = today - 1 if complete else today
    return sorted((d, day) for d, day in days.items() if last - n < d <= last)


def _share(have: float, need: float) -> float:
    return round(min(1.0, have / (2 * need)), 3) if need > 0 else 1.0


@dataclass(frozen=True)
class Hypertension:
    """The configured guideline's hypertension class, from repeated readings on different days.

    Guidelines classify from the mean of repeated readings on separate occasions, never
    one reading: ACC/AHA 2017 "an average of >= 2 readings obtained on >= 2 occasions",
    ESC/ESH 2018 home monitoring "at least 3 days, preferably 6-7". The default asks for
    ``min_readings`` (6) readings on ``min_days`` (3) distinct local days within
    ``days_n`` (28) days, and tags when their mean classifies at or above ``from_class``
    (the guideline's first hypertension class: ACC/AHA stage 1 at 130/80 mm[Hg], ESC/ESH
    and China 2018 grade 1 at 140/90). It ends when the same amount of evidence says the
    mean is below that class.
    """

    name = "hypertension"
    guideline: str = "acc-aha-2017"
    from_class: str | None = None  # None: the guideline's first hypertension class
    min_days: int = 3
    min_readings: int = 6
    days_n: int = 28

    def __post_init__(self) -> None:
        g = guideline_named(self.guideline)
        if self.from_class is None:
            first = next(c.name for c in g.categories if c.name.startswith(("stage-1", "grade-1")))
            object.__setattr__(self, "from_class", first)
        category_rank(self.guideline, self.from_class)  # validates

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        bp = [(d, day) for d, day in _recent(days, today, self.days_n) if day.bp_n > 0]
        n = sum(day.bp_n for _, day in bp)
        if len(bp) < self.min_days or n < self.min_readings:
            return UNDECIDED
        sbp = sum(day.sbp_sum_mm_hg for _, day in bp) / n
        dbp = sum(day.dbp_sum_mm_hg for _, day in bp) / n
        cls = classify_means(sbp, dbp, n, self.guideline)
        on = category_rank(self.guideline, cls.category) >= category_rank(self.guideline, self.from_class)
        evidence = tuple(Evidence(ns, "bp", s, f"{s:.0f}/{d:.0f} mm[Hg]")
                         for _, day in bp for ns, s, d in day.bp_first)
        return Verdict(on, min(_share(len(bp), self.min_days), _share(n, self.min_readings)),
                       f"{self.guideline} {self.from_class} or above: mean {sbp:.0f}/{dbp:.0f} "
                       f"mm[Hg] of {n} readings on {len(bp)} days of {self.days_n}",
                       evidence, guideline_named(self.guideline).citation)


@dataclass(frozen=True)
class TachycardiaEpisodes:
    """Heart rate above ``above_per_min`` (100 /min, the adult definition of tachycardia)
    for at least ``min_s`` (10 min) without a gap of more than ``max_gap_s`` between
    readings, on ``min_days`` (3) days of the last ``days_n`` (14). Ends when no day of
    the last ``days_n`` had one (with heart rate measured on ``min_days`` of them)."""

    name = "tachycardia-episodes"
    above_per_min: float = 100.0
    min_s: float = 600.0
    max_gap_s: float = 300.0
    min_days: int = 3
    days_n: int = 14

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        recent = _recent(days, today, self.days_n)
        ep = [(d, day) for d, day in recent if day.tachy_episodes > 0]
        if len(ep) >= self.min_days:
            return Verdict(True, _share(len(ep), self.min_days),
                           f"heart rate > {self.above_per_min:g} /min for >= {self.min_s / 60:g} min "
                           f"on {len(ep)} days of {self.days_n}",
                           tuple(Evidence(day.tachy_first_ns, "heart_rate", day.tachy_episodes,
                                          f"{day.tachy_episodes} episode(s)") for _, day in ep))
        hr_days = sum(1 for _, day in recent if "heart_rate" in day.measured)
        if not ep and hr_days >= self.min_days:
            return Verdict(False, rule=f"no episode on {hr_days} days with heart rate")
        return UNDECIDED


@dataclass(frozen=True)
class NocturnalDesaturation:
    """SpO2 below ``below_pct`` (90 %) for at least ``min_below_s`` (5 min) in a night
    (local ``night`` hours, 00:00-06:00), on ``min_nights`` (3) of the last ``days_n`` (14)
    nights: the T90 measure of overnight oximetry, per night."""

    name = "nocturnal-desaturation"
    below_pct: float = 90.0
    min_below_s: float = 300.0
    night: tuple[int, int] = (0, 6)
    max_gap_s: float = 300.0
    min_nights: int = 3
    days_n: int = 14

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        nights = [(d, day) for d, day in _recent(days, today, self.days_n) if day.spo2_night_n > 0]
        bad = [(d, day) for d, day in nights if day.spo2_below_s >= self.min_below_s]
        if len(bad) >= self.min_nights:
            return Verdict(True, _share(len(bad), self.min_nights),
                           f"SpO2 < {self.below_pct:g} % for >= {self.min_below_s / 60:g} min on "
                           f"{len(bad)} of {len(nights)} monitored nights (last {self.days_n})",
                           tuple(Evidence(0, "spo2", round(day.spo2_below_s / 60, 1),
                                          f"night of day {d}: {day.spo2_below_s / 60:.0f} min below")
                                 for d, day in bad))
        if len(nights) >= self.min_nights and not bad:
            return Verdict(False, rule=f"no desaturation on {len(nights)} monitored nights")
        return UNDECIDED


@dataclass(frozen=True)
class PoorGlycaemicControl:
    """Time in range (``low``-``high``, 70-180 mg/dL) below ``target`` (70 %) over the last
    ``days_n`` (14) days, from at least ``min_readings`` readings (the international
    consensus on time in range: Battelino T et al., Diabetes Care 2019;42:1593-1603)."""

    name = "poor-glycaemic-control"
    low_mg_dl: float = 70.0
    high_mg_dl: float = 180.0
    target: float = 0.70
    min_readings: int = 40
    days_n: int = 14

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        recent = _recent(days, today, self.days_n)
        n = sum(day.glucose_n for _, day in recent)
        if n < self.min_readings:
            return UNDECIDED
        tir = sum(day.glucose_in_range for _, day in recent) / n
        return Verdict(tir < self.target, _share(n, self.min_readings),
                       f"time in range {self.low_mg_dl:g}-{self.high_mg_dl:g} mg/dL {tir:.0%} "
                       f"(target {self.target:.0%}) from {n} readings over {self.days_n} days",
                       (Evidence(0, "glucose", round(tir, 4), f"TIR {tir:.0%} of {n}"),),
                       "Battelino T et al. Diabetes Care 2019;42:1593-1603")


@dataclass(frozen=True)
class LowActivity:
    """Mean daily steps below ``below_steps`` (5000: "sedentary", Tudor-Locke C & Bassett DR,
    Sports Med 2004;34:1-8) over at least ``min_days`` (7) complete days with step data of
    the last ``days_n`` (14)."""

    name = "low-activity"
    below_steps: float = 5000.0
    min_days: int = 7
    days_n: int = 14

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        counted = [(d, day) for d, day in _recent(days, today, self.days_n, complete=True)
                   if day.steps_n > 0]
        if len(counted) < self.min_days:
            return UNDECIDED
        mean = sum(day.steps for _, day in counted) / len(counted)
        return Verdict(mean < self.below_steps, _share(len(counted), self.min_days),
                       f"mean {mean:.0f} steps/day over {len(counted)} days (below "
                       f"{self.below_steps:g})",
                       (Evidence(0, "steps", round(mean, 1), f"{len(counted)} days"),),
                       "Tudor-Locke C, Bassett DR. Sports Med 2004;34:1-8")


@dataclass(frozen=True)
class NonAdherentMeasurement:
    """A patient in a measurement programme (``programmes``: tag -> the signal it asks
    for, e.g. hypertension -> bp_systolic) measured on fewer than ``below`` (50 %) of the
    last ``days_n`` (14) complete days, once in the programme that long. Ends at
    ``recover`` (70 %): the gap between the two keeps a patient on the edge from
    flapping in and out."""

    name = "non-adherent-measurement"
    programmes: tuple[tuple[str, str], ...] = (("hypertension", "bp_systolic"),
                                               ("poor-glycaemic-control", "glucose"))
    below: float = 0.5
    recover: float = 0.7
    days_n: int = 14

    def evaluate(self, days: dict[int, Day], today: int, ctx: Context) -> Verdict:
        worst: tuple[float, Verdict] | None = None
        for tag, signal in self.programmes:
            since = ctx.active.get(tag)
            if since is None or ctx.now_ns - since < self.days_n * 86_400 * NS:
                continue  # not in the programme long enough to judge
            done = sum(1 for _, day in _recent(days, today, self.days_n, complete=True)
                       if signal in day.measured)
            share = done / self.days_n
            v = Verdict(share < self.below, 1.0,
                        f"{tag} programme: {signal} measured on {done} of the last {self.days_n} "
                        f"days ({share:.0%}; expected >= {self.below:.0%})",
                        (Evidence(ctx.now_ns, signal, done, f"{done}/{self.days_n} days"),))
            if worst is None or share < worst[0]:
                worst = (share, v)
        if worst is None:
            return UNDECIDED
        share, v = worst
        if self.below <= share < self.recover:
            return UNDECIDED  # between the two levels: the tag keeps its state
        return v


def default_rules(guideline: str = "acc-aha-2017") -> tuple:
    return (Hypertension(guideline), TachycardiaEpisodes(), NocturnalDesaturation(),
            PoorGlycaemicControl(), LowActivity(), NonAdherentMeasurement())
