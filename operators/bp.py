"""Office blood pressure classified by guideline, from the mean of repeated readings.

Guidelines classify from the mean of repeated readings (at least 2 readings on at
least 2 occasions), never from one reading; ``classify`` accepts a single reading,
but its class is then only a screening value. The class is the higher of the
systolic and the diastolic category.

Thresholds are data (``GUIDELINES``): each category has the lowest systolic and the
lowest diastolic mean that place a patient in it (``None``: that pressure alone never
does, e.g. ACC/AHA "elevated" is systolic only). Means are compared unrounded against
the thresholds as stated: "120-129" means 120 <= mean < 130, so a mean of 129.5 is
still 120-129 and 179.9 is below 180. ACC/AHA's crisis is "> 180 and/or > 120": strictly
above (``strict``), so a mean of exactly 180 is stage 2.

>>> c = classify([(142, 85), (138, 83)], "acc-aha-2017")
>>> c.category, c.sbp_mean, c.dbp_mean, c.isolated_systolic
('stage-2', 140.0, 84.0, False)
>>> classify([(142, 85), (138, 83)], "esc-esh-2018").category
'grade-1'
>>> is_crisis(181, 90), is_crisis(180, 120)
(True, False)

``BpMonitor`` (``operators.bp_monitor``) is the per-patient streaming operator that
classifies a patient from their readings as they come.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vitalstream.signals import finite_number



@dataclass(frozen=True, slots=True)
class Category:
    name: str
    sbp_from_mm_hg: float | None  # lowest systolic mean in this category; None: never by SBP
    dbp_from_mm_hg: float | None
    strict: bool = False  # "> threshold" rather than ">= threshold"


@dataclass(frozen=True, slots=True)
class Guideline:
    name: str
    citation: str
    categories: tuple[Category, ...]  # ascending severity; the first is the floor
    isolated_sbp_from_mm_hg: float  # isolated systolic: SBP >= this and DBP below the next
    isolated_dbp_below_mm_hg: float


GUIDELINES: dict[str, Guideline] = {g.name: g for g in (
    Guideline("acc-aha-2017",
              "Whelton PK et al. 2017 ACC/AHA guideline for the prevention, detection, evaluation "
              "and management of high blood pressure in adults. Hypertension 2018;71:e13-e115",
              (Category("normal", None, None),
               Category("elevated", 120, None),
               Category("stage-1", 130, 80),
               Category("stage-2", 140, 90),
               Category("crisis", 180, 120, strict=True)),
              130, 80),
    Guideline("china-2018",
              "Joint Committee for Guideline Revision. 2018 Chinese Guidelines for the Management "
              "of Hypertension. J Geriatr Cardiol 2019;16:182-241",
              (Category("normal", None, None),
               Category("high-normal", 120, 80),
               Category("grade-1", 140, 90),
               Category("grade-2", 160, 100),
               Category("grade-3", 180, 110)),
              140, 90),
    Guideline("esc-esh-2018",
              "Williams B et al. 2018 ESC/ESH Guidelines for the management of arterial "
              "hypertension. Eur Heart J 2018;39:3021-3104",
              (Category("optimal", None, None),
               Category("normal", 120, 80),
               Category("high-normal", 130, 85),
               Category("grade-1", 140, 90),
               Category("grade-2", 160, 100),
               Category("grade-3", 180, 110)),
              140, 90),
)}

# ACC/AHA 2017 hypertensive crisis: SBP > 180 and/or DBP > 120 mm[Hg], on one reading.
CRISIS_SBP_MM_HG = 180
CRISIS_DBP_MM_HG = 120


@dataclass(frozen=True, slots=True)
class BpClass:
    guideline: str
    category: str
    sbp_mean: float  # mm[Hg]
    dbp_mean: float  # mm[Hg]
    isolated_systolic: bool
    n_readings: int

    def to_json(self) -> dict:
        return {"class": self.category, "sbp_mean": self.sbp_mean, "dbp_mean": self.dbp_mean,
                "isolated_systolic": self.isolated_systolic, "guideline": self.guideline,
                "n_readings": self.n_readings}

    def __deepcopy__(self, memo: dict) -> "BpClass":
        return self  # immutable: snapshots share it


def _reached(mean: float, threshold: float | None, strict: bool) -> bool:
    if threshold is None:
        return False
    return mean > threshold if strict else mean >= threshold


def _rank(g: Guideline, mean: float, axis: str) -> int:
    rank = 0
    for i, cat in enumerate(g.categories):
        threshold = cat.sbp_from_mm_hg if axis == "sbp" else cat.dbp_from_mm_hg
        if _reached(mean, threshold, cat.strict):
            rank = i
    return rank


def guideline_named(name: object, what: str = "guideline") -> Guideline:
    g = GUIDELINES.get(name) if isinstance(name, str) else None
    if g is None:
        raise ValueError(f"unknown {what} {name!r}: one of {', '.join(GUIDELINES)}")
    return g


def category_rank(guideline: str, category: str) -> int:
    """Position of ``category`` in ``guideline``'s ascending order (0: the floor).

    >>> category_rank("acc-aha-2017", "stage-2"), category_rank("china-2018", "grade-2")
    (3, 3)
    """
    for i, cat in enumerate(guideline_named(guideline).categories):
        if cat.name == category:
            return i
    raise ValueError(f"{guideline}: unknown category {category!r}: one of "
                     f"{', '.join(c.name for c in guideline_named(guideline).categories)}")


def classify(readings: Sequence[tuple[float, float]], guideline: str) -> BpClass:
    """Class of the mean of ``readings`` ((systolic, diastolic) in mm[Hg]) under ``guideline``.

    Raises ``ValueError`` on an unknown guideline, no readings, or a malformed reading.

    >>> classify([(125, 78)], "acc-aha-2017").category, classify([(125, 78)], "china-2018").category
    ('elevated', 'high-normal')
    """
    g = guideline_named(guideline)
    if isinstance(readings, (str, bytes)) or not isinstance(readings, Sequence) or not readings:
        raise ValueError("readings: expected a non-empty list of [systolic, diastolic]")
    pairs = []
    for i, r in enumerate(readings):
        if isinstance(r, (str, bytes)) or not isinstance(r, Sequence) or len(r) != 2:
            raise ValueError(f"readings[{i}]: expected [systolic, diastolic], got {r!r}")
        pairs.append((finite_number(f"readings[{i}][0]", r[0]), finite_number(f"readings[{i}][1]", r[1])))
    return classify_means(sum(p[0] for p in pairs) / len(pairs),
                          sum(p[1] for p in pairs) / len(pairs), len(pairs), g.name)


def classify_means(sbp: float, dbp: float, n: int, guideline: str) -> BpClass:
    """The class of already averaged pressures (mm[Hg]) of ``n`` measurements."""
    g = guideline_named(guideline)
    cat = g.categories[max(_rank(g, sbp, "sbp"), _rank(g, dbp, "dbp"))]
    isolated = sbp >= g.isolated_sbp_from_mm_hg and dbp < g.isolated_dbp_below_mm_hg
    return BpClass(g.name, cat.name, sbp, dbp, isolated, n)


def is_crisis(sbp_mm_hg: float, dbp_mm_hg: float) -> bool:
    """ACC/AHA 2017 hypertensive crisis on ONE reading (the alert path does not wait for a
    mean): SBP > 180 and/or DBP > 120 mm[Hg].

    >>> is_crisis(170, 121), is_crisis(180.5, 60)
    (True, True)
    """
    return (finite_number("sbp", sbp_mm_hg) > CRISIS_SBP_MM_HG
            or finite_number("dbp", dbp_mm_hg) > CRISIS_DBP_MM_HG)
