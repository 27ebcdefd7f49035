"""Differences of a variant against control: fixed-horizon intervals and an always-valid one.

Fixed horizon (valid when looked at ONCE, at a sample size fixed in advance):

- ``welch_diff``: difference of means with Welch's t interval (Welch 1947, "The
  generalization of Student's problem when several different population variances are
  involved", Biometrika 34; Welch-Satterthwaite degrees of freedom);
- ``proportion_diff``: difference of proportions, the unpooled normal (Wald) interval.

Always valid (``diff_confidence_sequence``): the asymptotic confidence sequence of
Waudby-Smith, Arnold, Wu & Ramdas (2024), "Time-uniform central limit theory and asymptotic
confidence sequences", Ann. Statist. 52(6) (Theorem 2.2, the Gaussian-mixture boundary of
Robbins 1970 applied to the running mean with its estimated variance)::

    mean_t(psi) +- sd_t(psi) * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

over the augmented inverse-propensity-weighted pseudo-outcomes of each unit (their section
3, randomized experiments): with known assignment probability ``pi`` of the variant among
units of the two arms, and predictable estimates m1, m0 of the arm means from the units
BEFORE this one, ``psi = m1 - m0 + A (Y - m1) / pi - (1 - A) (Y - m0) / (1 - pi)``, whose
mean is the difference of means whatever m1, m0 are. It holds uniformly over time: looking
after every unit and stopping when it excludes 0 keeps the error rate at ``alpha``
(asymptotically), which a fixed interval looked at daily does not. ``rho`` tunes where it
is tightest: ``rho_for(n)`` is the value that minimises the width at ``n`` units.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> a = rng.random(400) < 0.5
>>> y = rng.normal(0.0, 1.0, 400) + 0.5 * a
>>> cs = diff_confidence_sequence(y, a, pi=0.5, alpha=0.05, rho=rho_for(400))
>>> bool(cs.low[-1] > 0), cs.method.startswith("asymptotic-cs")
(True, True)
>>> iv = welch_diff(y[a], y[~a])
>>> bool(iv.low < 0.5 < iv.high), bool(cs.low[-1] < iv.low)  # the CS is the wider
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as st


@dataclass(frozen=True)
class Interval:
    """An estimate of variant minus control with its (1 - alpha) interval."""

    estimate: float
    low: float
    high: float
    method: str

    def excludes(self, x: float = 0.0) -> bool:
        return not (self.low <= x <= self.high)


def welch_diff(treatment: Sequence[float], control: Sequence[float], alpha: float = 0.05) -> Interval:
    """Welch's t interval for mean(treatment) - mean(control)."""
    t, c = np.asarray(treatment, float), np.asarray(control, float)
    if len(t) < 2 or len(c) < 2:
        return Interval(math.nan, -math.inf, math.inf, "welch-t")
    vt, vc = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    se = math.sqrt(vt + vc)
    est = float(t.mean() - c.mean())
    if se == 0:
        return Interval(est, est, est, "welch-t")
    df = (vt + vc) ** 2 / (vt ** 2 / (len(t) - 1) + vc ** 2 / (len(c) - 1))
    half = float(st.t.ppf(1 - alpha / 2, df)) * se
    return Interval(est, est - half, est + half, "welch-t")


def proportion_diff(treatment: Sequence[float], control: Sequence[float],
                    alpha: float = 0.05) -> Interval:
    """Unpooled normal (Wald) interval for p(treatment) - p(control), outcomes 0/1."""
    t, c = np.asarray(treatment, float), np.asarray(control, float)
    if len(t) == 0 or len(c) == 0:
        return Interval(math.nan, -math.inf, math.inf, "normal-wald")
    pt, pc = float(t.mean()), float(c.mean())
    se = math.sqrt(pt * (1 - pt) / len(t) + pc * (1 - pc) / len(c))
    half = float(st.norm.ppf(1 - alpha / 2)) * se
    return Interval(pt - pc, pt - pc - half, pt - pc + half, "normal-wald")


def is_binary(values: Sequence[float]) -> bool:
    return all(v == 0.0 or v == 1.0 for v in values)


def fixed_diff(treatment: Sequence[float], control: Sequence[float], alpha: float = 0.05) -> Interval:
    """``proportion_diff`` for 0/1 outcomes, else ``welch_diff``."""
    if is_binary(list(treatment) + list(control)):
        return proportion_diff(treatment, control, alpha)
    return welch_diff(treatment, control, alpha)


# -- always valid --


def rho_for(n: int, alpha: float = 0.05) -> float:
    """The ``rho`` that makes the confidence sequence tightest at ``n`` units
    (Waudby-Smith et al. 2024, eq. 2.8; Howard et al. 2021, section 3.5)."""
    la = -2 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1)) / max(n, 1))


def cs_radius(t: np.ndarray, sd: np.ndarray, alpha: float, rho: float) -> np.ndarray:
    """Half-width of the Gaussian-mixture asymptotic CS at times ``t`` (1-based)."""
    t = np.asarray(t, float)
    r2 = rho * rho
    return sd * np.sqrt(2 * (t * r2 + 1) / (t * t * r2) * np.log(np.sqrt(t * r2 + 1) / alpha))


@dataclass(frozen=True)
class CSPath:
    """The confidence sequence after each unit: ``estimate[i]``, ``low[i]``, ``high[i]`` use
    units ``0..i``; infinite until both arms have ``min_per_arm`` units."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str

    def last(self) -> Interval:
        if len(self.estimate) == 0:
            return Interval(math.nan, -math.inf, math.inf, self.method)
        return Interval(float(self.estimate[-1]), float(self.low[-1]), float(self.high[-1]),
                        self.method)

    def ever_excludes(self, x: float = 0.0) -> bool:
        return bool(np.any((self.low > x) | (self.high < x)))


def _method(alpha: float, rho: float, what: str) -> str:
    return f"asymptotic-cs (Waudby-Smith et al. 2024), {what}, alpha={alpha:g}, rho={rho:.4g}"


def mean_confidence_sequence(y: Sequence[float], alpha: float = 0.05, rho: float | None = None,
                             min_n: int = 2) -> CSPath:
    """Always-valid CS for the mean of one arm (the same boundary on the raw values)."""
    y = np.asarray(y, float)
    rho = rho_for(len(y), alpha) if rho is None else rho
    return _cs(y, np.arange(1, len(y) + 1) >= min_n, alpha, rho, "mean")


def diff_confidence_sequence(y: Sequence[float], treated: Sequence[bool], pi: float = 0.5,
                             alpha: float = 0.05, rho: float | None = None,
                             min_per_arm: int = 2) -> CSPath:
    """Always-valid CS for mean(variant) - mean(control), units in arrival (exposure) order.

    ``treated[i]``: unit i is in the variant (else control); ``pi``: the design probability
    of the variant among the two arms (its weight / (its weight + control's)). ``rho``
    defaults to ``rho_for(len(y))``: tightest at the end of the data."""
    y, a = np.asarray(y, float), np.asarray(treated, bool)
    if not 0 < pi < 1:
        raise ValueError(f"assignment probability {pi!r} must be in (0, 1)")
    rho = rho_for(len(y), alpha) if rho is None else rho
    psi = aipw_pseudo_outcomes(y, a, pi)
    ready = (np.cumsum(a) >= min_per_arm) & (np.cumsum(~a) >= min_per_arm)
    return _cs(psi, ready, alpha, rho, f"AIPW pi={pi:.4g}")


def aipw_pseudo_outcomes(y: np.ndarray, a: np.ndarray, pi: float) -> np.ndarray:
    """psi_i with predictable arm means: those of the units before i (the overall mean of
    the earlier units while an arm has none yet, 0 before any)."""
    n = len(y)
    s1 = np.concatenate(([0.0], np.cumsum(np.where(a, y, 0.0))[:-1])) if n else np.zeros(0)
    s0 = np.concatenate(([0.0], np.cumsum(np.where(a, 0.0, y))[:-1])) if n else np.zeros(0)
    n1 = np.concatenate(([0], np.cumsum(a)[:-1])) if n else np.zeros(0)
    n0 = np.arange(n) - n1
    overall = np.where(np.arange(n) > 0, (s1 + s0) / np.maximum(np.arange(n), 1), 0.0)
    m1 = np.where(n1 > 0, s1 / np.maximum(n1, 1), overall)
    m0 = np.where(n0 > 0, s0 / np.maximum(n0, 1), overall)
    return m1 - m0 + np.where(a, (y - m1) / pi, -(y - m0) / (1 - pi))


def _cs(x: np.ndarray, ready: np.ndarray, alpha: float, rho: float, what: str) -> CSPath:
    t = np.arange(1, len(x) + 1, dtype=float)
    mean = np.cumsum(x) / t if len(x) else np.zeros(0)
    # running variance (ddof 0, as in the theorem); shifting by a constant leaves it as it
    # is and keeps the sums of squares from losing digits at BP levels
    z = x - (x.mean() if len(x) else 0.0)
    var = np.maximum(np.cumsum(z * z) / t - (np.cumsum(z) / t) ** 2, 0.0) if len(x) else z
    rad = cs_radius(t, np.sqrt(var), alpha, rho)
    rad = np.where(ready & (t >= 2), rad, np.inf)
    return CSPath(mean, mean - rad, mean + rad, _method(alpha, rho, what))
