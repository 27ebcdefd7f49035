"""Experiment assignment (``vitalstream.operators.experiment.assign``) against GrowthBook.

Vectors are GrowthBook's own SDK conformance cases, ``tests/cases.json`` of
github.com/growthbook/growthbook-python (specVersion 0.7.1, commit c444b7df05da, the
same file as packages/sdk-js/test/cases.json of growthbook/growthbook), sections
"hash", "getBucketRange", "chooseVariation" and "run", copied here as data.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats

from vitalstream.operators.experiment.assign import (Experiment, bucket_ranges, choose_variation,
                                                     gb_hash)

# cases.json "hash": [seed, value, version, expected]
HASH = [("", "a", 1, 0.22), ("", "b", 1, 0.077), ("b", "a", 1, 0.946), ("ef", "d", 1, 0.652),
        ("asdf", "8952klfjas09ujk", 1, 0.549), ("", "123", 1, 0.011),
        ("", '___)((*":&', 1, 0.563), ("seed", "a", 2, 0.0505), ("seed", "b", 2, 0.2696),
        ("foo", "ab", 2, 0.2575), ("foo", "def", 2, 0.2019),
        ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
        ("90850943850283058242805", "123", 2, 0.7516),
        ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128)]

# cases.json "getBucketRange": [name, [numVariations, coverage, weights], expected]
BUCKETS = [("normal 50/50", (0.5, 0.5), 1, [(0, 0.5), (0.5, 1)]),
           ("reduced coverage", (0.5, 0.5), 0.5, [(0, 0.25), (0.5, 0.75)]),
           ("zero coverage", (0.5, 0.5), 0, [(0, 0), (0.5, 0.5)]),
           ("4 variations", (0.25,) * 4, 1, [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
           ("uneven weights", (0.4, 0.6), 1, [(0, 0.4), (0.4, 1)]),
           ("uneven weights, 3 variations", (0.2, 0.3, 0.5), 1, [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
           ("uneven weights, reduced coverage, 3 variations", (0.2, 0.3, 0.5), 0.2,
            [(0, 0.04), (0.2, 0.26), (0.5, 0.6)])]

# cases.json "chooseVariation": [name, n, ranges, expected]
EVEN, REDUCED = [(0, 0.5), (0.5, 1)], [(0, 0.25), (0.5, 0.75)]
CHOOSE = [(0.2, EVEN, 0), (0.4, EVEN, 0), (0.6, EVEN, 1), (0.8, EVEN, 1), (0, EVEN, 0),
          (0.5, EVEN, 1), (0.2, REDUCED, 0), (0.4, REDUCED, -1), (0.6, REDUCED, 1),
          (0.8, REDUCED, -1), (0.25, REDUCED, -1), (0.5, REDUCED, 1)]


@pytest.mark.parametrize("seed,value,version,expected", HASH)
def test_hash_matches_growthbook_cases(seed, value, version, expected):
    assert gb_hash(seed, value, version) == expected


def test_unknown_hash_version_is_refused():
    # cases.json: ["abc", "def", 99, null]: GrowthBook returns null; a config error here
    with pytest.raises(ValueError):
        gb_hash("abc", "def", 99)


@pytest.mark.parametrize("name,weights,coverage,expected", BUCKETS, ids=[b[0] for b in BUCKETS])
def test_bucket_ranges_match_growthbook_cases(name, weights, coverage, expected):
    got = bucket_ranges(weights, coverage)
    # cases.json compares after rounding to 8 places (0.2 * 0.2 is 0.04000000000000001)
    assert [(round(a, 8), round(b, 8)) for a, b in got] == expected


@pytest.mark.parametrize("weights", [(0.4, 0.1), (0.7, 0.6)])
def test_bad_weights_are_refused_where_growthbook_falls_back(weights):
    """cases.json "weights sum below/above 1": GrowthBook silently uses equal weights; an
    experiment config with such weights is refused here instead (it is a typo)."""
    with pytest.raises(ValueError):
        bucket_ranges(weights)


@pytest.mark.parametrize("n,ranges,expected", CHOOSE)
def test_choose_variation_matches_growthbook_cases(n, ranges, expected):
    assert choose_variation(n, ranges) == expected


def test_run_case_uses_seed_and_hash_version():
    """cases.json "run": "Uses seed and hash version": key "key", seed "foo", hashVersion 2,
    variations [0, 1], attributes {id: "1"} -> variation 1 (also with weights 0.5/0.5)."""
    assert Experiment("key", seed="foo", variants=("v0", "v1")).assign("1") == "v1"
    assert Experiment("key", "foo", ("v0", "v1"), (0.5, 0.5)).assign("1") == "v1"


PATIENTS = [f"p{i:05d}" for i in range(10_000)]
EXP = Experiment("bp-reminder", seed="s1", variants=("holdout", "sms", "app"),
                 weights=(0.2, 0.4, 0.4))


def test_assignment_is_stable_across_processes():
    """A fresh interpreter (new str-hash salt, nothing cached) assigns the same variants."""
    code = textwrap.dedent("""
        from vitalstream.operators.experiment.assign import Experiment
        e = Experiment("bp-reminder", seed="s1", variants=("holdout", "sms", "app"),
                       weights=(0.2, 0.4, 0.4))
        print(",".join(e.assign(f"p{i:05d}") for i in range(500)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert out.stdout.strip().split(",") == [EXP.assign(p) for p in PATIENTS[:500]]


def test_assignment_is_balanced_against_the_weights():
    """10k patients: chi-square goodness of fit to 20/40/40 (p > 0.001) and every share
    within 3 standard errors (sqrt(w(1-w)/n)) of its weight."""
    got = [EXP.assign(p) for p in PATIENTS]
    counts = np.array([got.count(v) for v in EXP.variants])
    w = np.array(EXP.weights)
    n = len(PATIENTS)
    assert stats.chisquare(counts, w * n).pvalue > 0.001
    se = np.sqrt(w * (1 - w) / n)
    assert np.all(np.abs(counts / n - w) < 3 * se), counts


def test_different_seeds_assign_independently():
    """Under two seeds the 3x3 table of a patient's variants is independent (chi-square of
    independence p > 0.001), and each seed-B variant gets a seed-A-like share of each
    seed-A variant: a shared hash would put the same patients together."""
    other = Experiment("bp-reminder", seed="s2", variants=EXP.variants, weights=EXP.weights)
    idx = {v: i for i, v in enumerate(EXP.variants)}
    table = np.zeros((3, 3))
    for p in PATIENTS:
        table[idx[EXP.assign(p)], idx[other.assign(p)]] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001
    same = np.trace(table) / len(PATIENTS)
    assert abs(same - sum(w * w for w in EXP.weights)) < 0.02  # 0.36 if independent
