"""Deterministic variant assignment, as GrowthBook does it.

A patient's variant is a function of the experiment's seed and the patient id
only: no state, no coin flipped at run time, so it is the same after a restart,
on every worker and in a batch recomputation. The hash is GrowthBook's
version-2 hash (FNV-1a 32-bit, applied twice, to 4 decimal places), and the
variant is the weight range the hash falls in (``getBucketRanges`` /
``chooseVariation``).

>>> gb_hash("", "a", 1), gb_hash("seed", "a", 2)  # GrowthBook's cases.json "hash" vectors
(0.22, 0.0505)
>>> e = Experiment("bp-reminder", seed="s1", variants=("holdout", "sms", "app"), weights=(0.2, 0.4, 0.4))
>>> e.assign("p0042") == e.assign("p0042")
True
"""

from __future__ import annotations

from dataclasses import dataclass

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    """FNV-1a 32-bit over the string's code points (GrowthBook hashes code points, not bytes)."""
    h = _FNV_OFFSET
    for ch in text:
        h = ((h ^ ord(ch)) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def gb_hash(seed: str, value: str, version: int = 2) -> float:
    """GrowthBook's ``hash(seed, value, version)``: a number in [0, 1)."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    raise ValueError(f"hash version {version!r}: 1 or 2")


def bucket_ranges(weights: tuple[float, ...], coverage: float = 1.0) -> list[tuple[float, float]]:
    """GrowthBook's ``getBucketRanges``: cumulative ranges of [0, 1), each shrunk to ``coverage``.

    >>> bucket_ranges((0.5, 0.5))
    [(0.0, 0.5), (0.5, 1.0)]
    """
    if not weights or any(w < 0 for w in weights) or not 0.99 <= sum(weights) <= 1.01:
        raise ValueError(f"variant weights {weights!r} must be >= 0 and sum to 1")
    coverage = min(max(coverage, 0.0), 1.0)
    out, start = [], 0.0
    for w in weights:
        out.append((start, start + coverage * w))
        start += w
    return out


def choose_variation(n: float, ranges: list[tuple[float, float]]) -> int:
    """GrowthBook's ``chooseVariation``: the index of the range holding ``n``, or -1."""
    for i, (lo, hi) in enumerate(ranges):
        if lo <= n < hi:
            return i
    return -1


@dataclass(frozen=True)
class Experiment:
    """Variants of one strategy (A/B/n). ``holdout`` names the variant that gets no nudge."""

    name: str
    seed: str
    variants: tuple[str, ...]
    weights: tuple[float, ...] = ()
    holdout: str | None = "holdout"

    def __post_init__(self) -> None:
        if len(set(self.variants)) != len(self.variants) or len(self.variants) < 2:
            raise ValueError(f"experiment {self.name!r}: at least two distinct variants")
        if not self.weights:
            object.__setattr__(self, "weights", tuple(1 / len(self.variants) for _ in self.variants))
        if len(self.weights) != len(self.variants):
            raise ValueError(f"experiment {self.name!r}: one weight per variant")
        bucket_ranges(self.weights)  # validates
        if self.holdout is not None and self.holdout not in self.variants:
            object.__setattr__(self, "holdout", None)

    def assign(self, patient: str) -> str:
        """The patient's variant: stable for a given seed, whatever else happens."""
        i = choose_variation(gb_hash(self.seed, patient, 2), bucket_ranges(self.weights))
        return self.variants[i if i >= 0 else len(self.variants) - 1]  # n < 1 always lands

    def holds_out(self, patient: str) -> bool:
        return self.holdout is not None and self.assign(patient) == self.holdout
