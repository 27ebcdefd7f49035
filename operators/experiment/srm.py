"""Sample ratio mismatch: are the variants' counts what the configured weights promise?

A mismatch means the assignment or the exposure logging is broken (a variant whose
exposures get lost, a trigger that depends on the variant), and every comparison built
on those counts is suspect: check it before reading any effect.

- ``srm_chisquare``: Pearson's chi-square goodness of fit of the observed counts to the
  weights (k - 1 degrees of freedom); valid when looked at once.
- ``srm_sequential``: the anytime-valid test of Lindon & Malek (2022), "Anytime-Valid
  Inference For Multinomial Count Data", NeurIPS 2022: the Bayes factor of a
  Dirichlet(k * weights) mixture over the multinomial null, in closed form
  (Dirichlet-multinomial); ``p_t = min(1, 1 / max_{s<=t} BF_s)`` is a p-value valid
  under continuous monitoring (Ville's inequality).

>>> r = srm_chisquare({"a": 5000, "b": 5000}, {"a": 0.5, "b": 0.5})
>>> r.statistic, r.p_value
(0.0, 1.0)
>>> srm_chisquare({"a": 4500, "b": 5500}, {"a": 0.5, "b": 0.5}).statistic
100.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from scipy import stats as st
from scipy.special import gammaln


@dataclass(frozen=True)
class SRMResult:
    p_value: float
    statistic: float  # chi-square, or log Bayes factor (largest seen) for the sequential test
    counts: dict[str, int]
    expected: dict[str, float]
    method: str

    def mismatch(self, alpha: float = 0.001) -> bool:
        return self.p_value < alpha


def _weights(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"SRM weights {dict(weights)!r} must be >= 0 and not all 0")
    return {k: w / total for k, w in weights.items()}


def srm_chisquare(counts: Mapping[str, int], weights: Mapping[str, float]) -> SRMResult:
    """Pearson chi-square of ``counts`` (a variant missing from it counts 0) against the
    weights (normalised to sum 1)."""
    w = _weights(weights)
    obs = {k: int(counts.get(k, 0)) for k in w}
    extra = set(counts) - set(w)
    if extra:
        raise ValueError(f"counts for variants without a weight: {sorted(extra)}")
    n = sum(obs.values())
    exp = {k: n * w[k] for k in w}
    if n == 0:
        return SRMResult(1.0, 0.0, obs, exp, "chi-square")
    live = [k for k in w if w[k] > 0]
    if any(obs[k] > 0 for k in w if w[k] == 0):
        return SRMResult(0.0, math.inf, obs, exp, "chi-square")
    stat = float(sum((obs[k] - exp[k]) ** 2 / exp[k] for k in live))
    df = len(live) - 1
    p = float(st.chi2.sf(stat, df)) if df > 0 else 1.0
    return SRMResult(p, stat, obs, exp, f"chi-square (df={df})")


def sequential_p_values(assignments: Iterable[str], weights: Mapping[str, float],
                        concentration: float = 100.0) -> np.ndarray:
    """The anytime-valid p-value after each assignment (non-increasing)."""
    w = _weights(weights)
    names = list(w)
    index = {k: i for i, k in enumerate(names)}
    seq = np.array([index[v] for v in assignments], dtype=int)
    if len(seq) == 0:
        return np.ones(0)
    theta = np.array([w[k] for k in names])
    alpha0 = concentration * theta
    onehot = np.zeros((len(seq), len(names)))
    onehot[np.arange(len(seq)), seq] = 1.0
    counts = np.cumsum(onehot, axis=0)
    live = theta > 0
    # log BF = log B(alpha0 + counts) - log B(alpha0) - sum counts log theta (0 log 0 = 0)
    log_beta = lambda a: gammaln(a).sum(axis=-1) - gammaln(a.sum(axis=-1))  # noqa: E731
    a0, c, th = alpha0[live], counts[:, live], theta[live]
    log_bf = log_beta(a0 + c) - log_beta(a0[None, :]) - (c * np.log(th)).sum(axis=1)
    if not live.all():  # a zero-weight variant seen: the null is refuted outright
        log_bf = np.where(counts[:, ~live].sum(axis=1) > 0, np.inf, log_bf)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_bf)))


def srm_sequential(assignments: Iterable[str], weights: Mapping[str, float],
                   concentration: float = 100.0) -> SRMResult:
    """Lindon & Malek's sequential SRM test over assignments in arrival order."""
    seq = list(assignments)
    w = _weights(weights)
    p = sequential_p_values(seq, w, concentration)
    counts = {k: seq.count(k) for k in w}
    n = len(seq)
    p_last = float(p[-1]) if len(p) else 1.0
    stat = -math.log(p_last) if p_last > 0 else math.inf
    return SRMResult(p_last, stat, counts, {k: n * w[k] for k in w},
                     f"sequential dirichlet-multinomial (Lindon & Malek 2022), k={concentration:g}")
