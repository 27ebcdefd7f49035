"""``vitalstream news2`` and ``vitalstream bp-class``: clinical scores over JSON lines.

    vitalstream news2 obs.jsonl            # or - for stdin
    vitalstream bp-class --guideline esc-esh-2018 bp.jsonl

One JSON line out per non-blank line in. A line that cannot be scored (bad JSON, a
wrong type, an unknown key or consciousness letter) gives ``{"error": {...}}`` for that
line and processing continues; a missing file exits 2 with one line (``main``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Iterator, TextIO

from vitalstream.operators.bp import GUIDELINES, classify
from vitalstream.operators.news2 import score_mapping


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number")  # NaN/Infinity are not readings


def _lines(f: TextIO) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(f, 1):
        if line.strip():
            yield n, line


def _each(path: str, score: Callable[[Any], dict]) -> int:
    if path == "-":
        return _each_in(sys.stdin, score)
    with open(path, encoding="utf-8") as f:  # OSError: main() prints one line, exit 2
        return _each_in(f, score)


def _each_in(f: TextIO, score: Callable[[Any], dict]) -> int:
    out = sys.stdout
    for n, line in _lines(f):
        try:
            obj = json.loads(line, parse_constant=_no_constants)
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            res = score(obj)
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            kind = "bad_json" if isinstance(err, json.JSONDecodeError) else "bad_input"
            res = {"error": {"line": n, "reason": kind, "detail": str(err)}}
        out.write(json.dumps(res) + "\n")
    out.flush()
    return 0


def _news2(obj: dict) -> dict:
    return score_mapping(obj).to_json()


def cmd_news2(args: argparse.Namespace) -> int:
    return _each(args.file, _news2)


def cmd_bp_class(args: argparse.Namespace) -> int:
    def one(obj: dict) -> dict:
        unknown = sorted(set(obj) - {"readings"})
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(unknown)}")
        if "readings" not in obj:
            raise ValueError("missing key: readings")
        return classify(obj["readings"], args.guideline).to_json()

    return _each(args.file, one)


def add_clinical_commands(sub: Any) -> None:
    n = sub.add_parser("news2", help="NEWS2 (RCP 2017) score of JSON-line observations",
                       description="Read JSON lines with resp_rate (/min), spo2 (%), spo2_scale "
                       "(1 or 2), oxygen (bool), bp_systolic (mm[Hg]), heart_rate (/min), "
                       "consciousness (A, C, V, P or U) and body_temp (Cel); write one JSON line "
                       "each: score, band, parameter_scores, missing, response.")
    n.add_argument("file", nargs="?", default="-", help="JSON lines file, or - for stdin")
    n.set_defaults(func=cmd_news2)
    b = sub.add_parser("bp-class", help="classify blood pressure by guideline (mean of readings)",
                       description="Read JSON lines {\"readings\": [[sbp, dbp], ...]} (mm[Hg]); "
                       "write one JSON line each: class, sbp_mean, dbp_mean, isolated_systolic.")
    b.add_argument("--guideline", required=True, choices=sorted(GUIDELINES))
    b.add_argument("file", nargs="?", default="-", help="JSON lines file, or - for stdin")
    b.set_defaults(func=cmd_bp_class)
