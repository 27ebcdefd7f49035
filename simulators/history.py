"""The last days of home measurements, for patients who bring a history with them.

A programme patient arrives with days of home blood pressure already taken (a cuff that
uploads its memory, an app's backlog). ``home_history`` makes those readings, morning and
evening, around each patient's true level, as native JSON messages with device times in
the past, which the pipeline trusts or flags as back-fill, and whose profile tags follow.

>>> msgs = home_history(["p1", "p2"], days=3, end_ns=10 * 86_400 * 10**9, seed=1,
...                     hypertensive={"p1"})
>>> len(msgs), msgs[0][0]
(12, 'vitalstream/cuff-p1/json')
"""

from __future__ import annotations

import json

import numpy as np

from vitalstream.timeutil import to_datetime

NS = 1_000_000_000
DAY_NS = 86_400 * NS


def home_history(patients: list[str], *, days: int, end_ns: int, seed: int,
                 hypertensive: set[str] | frozenset[str] = frozenset(),
                 high_mm_hg: tuple[float, float] = (152.0, 96.0),
                 normal_mm_hg: tuple[float, float] = (116.0, 73.0)) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs, in time order: ``days`` days ending at ``end_ns``, two BP
    readings a day (07:00 and 21:00 UTC, jittered) per patient, true level by group."""
    rng = np.random.default_rng(seed)
    first_day = end_ns // DAY_NS - days
    out = []
    for d in range(days):
        for hour in (7, 21):
            for p in patients:
                sbp, dbp = high_mm_hg if p in hypertensive else normal_mm_hg
                t = (first_day + d) * DAY_NS + hour * 3600 * NS + int(rng.integers(0, 1800)) * NS
                if t >= end_ns:
                    continue
                payload = {"v": 1, "device": f"cuff-{p}", "patient": p, "readings": [
                    {"signal": "bp_systolic", "value": round(sbp + rng.normal(0, 7)),
                     "unit": "mm[Hg]", "t": to_datetime(t).isoformat()},
                    {"signal": "bp_diastolic", "value": round(dbp + rng.normal(0, 5)),
                     "unit": "mm[Hg]", "t": to_datetime(t).isoformat()}]}
                out.append((t, f"vitalstream/cuff-{p}/json", json.dumps(payload).encode()))
    out.sort(key=lambda x: x[0])
    return [(topic, body) for _, topic, body in out]
