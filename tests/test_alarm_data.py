"""benchmarks/alarm_data.py: the alarm-quality evaluation data (real records, injected episodes).

Expectations are typed here from the module's documentation (formats, units, the documented
ranges of each episode and artefact type), not taken from the generator's internals: every
check reads the written CSV files back.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import pytest

from vitalstream.testing import shared_dir

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "alarm_data.py"
VITALS = shared_dir() / "reference" / "vitals"


@pytest.fixture(autouse=True)
def _reference_data(reference_dir):
    """The records the generator cuts from: missing skips here, fails under CI (conftest)."""
    return reference_dir

spec = importlib.util.spec_from_file_location("alarm_data", BENCH)
alarm_data = importlib.util.module_from_spec(spec)
sys.modules["alarm_data"] = alarm_data
spec.loader.exec_module(alarm_data)

UNITS = {"heart_rate": "/min", "spo2": "%", "resp_rate": "/min", "bp_systolic": "mm[Hg]",
         "bp_diastolic": "mm[Hg]", "bp_mean": "mm[Hg]", "body_temp": "Cel"}
EPISODES = {"tachycardia_relative", "hr_rise_personal", "bradycardia_hover",
            "tachycardia_threshold", "desaturation", "bp_rise_day", "fever_sparse",
            "fever_recurrent"}
ARTEFACTS = {"spike", "flatline", "dropout"}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
DAY0 = datetime(2026, 10, 10, tzinfo=timezone.utc).timestamp()
H = 3600.0
MIN = 60.0
EPS = 1e-6
# red bands dropped from the 1/min patients' real data unless it is kept (module docstring)
RED = {"heart_rate": lambda v: v <= 40 or v >= 131, "spo2": lambda v: v <= 91,
       "resp_rate": lambda v: v <= 8 or v >= 25, "bp_systolic": lambda v: v <= 90 or v >= 220}
SEEDS = (11, 12)


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Data:
    """readings.csv and labels.csv read back, indexed per (patient, signal)."""

    def __init__(self, out: Path):
        with open(out / "readings.csv", newline="") as fh:
            self.header = fh.readline().rstrip("\n")
            self.rows = list(csv.reader(fh))
        with open(out / "labels.csv", newline="") as fh:
            self.label_header = fh.readline().rstrip("\n")
            self.label_rows = list(csv.reader(fh))
        self.series: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for p, t, s, v, _ in self.rows:
            self.series[(p, s)].append((float(t), float(v)))
        self.times = {k: [t for t, _ in v] for k, v in self.series.items()}
        self.labels = [dict(patient=p, kind=k, type=ty, start=_ts(a), end=_ts(b))
                       for p, k, ty, a, b in self.label_rows]
        self.by_patient = defaultdict(list)
        for lb in self.labels:
            self.by_patient[lb["patient"]].append(lb)

    def window(self, p: str, s: str, a: float, b: float) -> list[tuple[float, float]]:
        """Readings of (p, s) with a <= t < b."""
        ts = self.times.get((p, s), [])
        return self.series[(p, s)][bisect_left(ts, a - EPS):bisect_left(ts, b - EPS)]

    def at(self, p: str, s: str, t: float) -> float | None:
        w = self.window(p, s, t, t + 1.0)
        return w[0][1] if w else None

    def of(self, typ: str) -> list[dict]:
        return [lb for lb in self.labels if lb["type"] == typ]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[int, Data]:
    out = {}
    for seed in SEEDS:
        d = tmp_path_factory.mktemp(f"seed{seed}")
        alarm_data.generate(seed).write(d)  # default sizes
        out[seed] = Data(d)
    return out


@pytest.fixture(scope="module")
def d(data) -> Data:
    return data[SEEDS[0]]


def _values(w):
    return [v for _, v in w]


def test_deterministic_for_a_seed_and_seeds_differ():
    a = alarm_data.generate(5, minute_patients=3, hourly_patients=20, days_per_minute_patient=2)
    b = alarm_data.generate(5, minute_patients=3, hourly_patients=20, days_per_minute_patient=2)
    c = alarm_data.generate(6, minute_patients=3, hourly_patients=20, days_per_minute_patient=2)
    assert a.readings == b.readings and a.labels == b.labels and a.days == b.days
    assert a.readings != c.readings
    key = lambda ds: {(lb.patient, lb.type, lb.start_ms) for lb in ds.labels}  # noqa: E731
    assert len(key(a) & key(c)) < 0.2 * len(key(a))  # placements differ, not just values


def test_formats(d: Data):
    assert d.header == "patient,time_s,signal,value,unit"
    assert d.label_header == "patient,kind,type,start,end"
    prev = -1.0
    for p, t, s, v, u in d.rows:
        assert UNITS[s] == u, (s, u)
        tf = float(t)
        assert tf >= prev and tf >= DAY0
        assert re.fullmatch(r"\d+(\.\d{1,3})?", t), t
        float(v)
        prev = tf
    for p, k, ty, a, b in d.label_rows:
        assert ISO_Z.match(a) and ISO_Z.match(b), (a, b)
        assert (k == "episode" and ty in EPISODES) or (k == "artefact" and ty in ARTEFACTS), (k, ty)
        assert _ts(a) < _ts(b)
    # every type is present at the default sizes
    assert {lb["type"] for lb in d.labels} == EPISODES | ARTEFACTS


def test_sizes_and_days(data):
    for seed, dd in data.items():
        ds_days = alarm_data.generate(seed).days
        minute = [p for p in ds_days if p.startswith("m")]
        hourly = [p for p in ds_days if p.startswith("c")]
        assert len(minute) == 10 and abs(sum(ds_days[p] for p in minute) - 30.0) < 1e-9
        assert len(hourly) == 120 and len(set(hourly)) == 120  # different real stays
        assert {r[0] for r in dd.rows} == set(ds_days)


def test_minute_patients_keep_the_real_time_of_day(d: Data):
    """HR of a 1/min patient = s00001's HR at the same time of day (one of its 1-2 copies) + a
    per-patient offset, except inside labels, s25047 inserts and dropped red-band readings."""
    src = []
    with open(VITALS / "s00001-2896-10-10-00-31n.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            src.append(float(r["hr_bpm"]))
    start_tod = 31 * 60 + 25.894
    for p in sorted({k[0] for k in d.series if k[0].startswith("m")}):
        diffs1, pairs = [], []
        spans = [(lb["start"], lb["end"]) for lb in d.by_patient[p]]
        for t, v in d.series[(p, "heart_rate")]:
            if any(a - 1 <= t < b + 1 for a, b in spans):
                continue
            k = (t - DAY0 - start_tod) / MIN
            if abs(k - round(k)) > 1e-4:  # off the s00001 grid: the s25047 insert
                continue
            q = int(round(k)) % 1440
            cands = [src[i] for i in (q, q + 1440) if i < len(src) and src[i] > 0]
            if len(cands) == 1 and q + 1440 >= len(src):
                diffs1.append(v - cands[0])
            pairs.append((v, cands))
        off = median(diffs1)
        ok = sum(any(abs(v - c - off) <= 0.11 for c in cands) for v, cands in pairs)
        assert ok >= 0.97 * len(pairs), (p, off, ok, len(pairs))
        assert 60 - 0.2 <= off + 55.6 <= 68 + 0.2  # patient median placed at U(60, 68) /min


def test_tachycardia_relative(d: Data):
    labels = d.of("tachycardia_relative")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        w = _values(d.window(p, "heart_rate", a, b))
        assert 20 <= (b - a) / MIN <= 60 and len(w) == round((b - a) / MIN)
        assert all(95 - EPS <= v <= 110 + EPS for v in w), w
        pre = _values(d.window(p, "heart_rate", a - H, a))
        assert len(pre) >= 45 and 60 <= median(pre) <= 70 and max(pre) < 80, pre
        assert d.at(p, "heart_rate", b) is not None and d.at(p, "heart_rate", a - MIN) is not None


def test_hr_rise_personal(d: Data):
    labels = d.of("hr_rise_personal")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        w = _values(d.window(p, "heart_rate", a, b))
        assert 15 <= (b - a) / MIN <= 40 and len(w) == round((b - a) / MIN)
        base = median(_values(d.window(p, "heart_rate", a - H, a)))
        assert all(25 - 0.06 <= v - base <= 50 + 0.06 and v < 120 for v in w), (base, w)
        assert 30 - 5 <= median(w) - base <= 45 + 5


def test_bradycardia_hover(d: Data):
    labels = d.of("bradycardia_hover")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        w = d.window(p, "heart_rate", a, b)
        assert 10 <= (b - a) / MIN <= 30 and len(w) == round((b - a) / MIN)
        vals = _values(w)
        assert all(39 - EPS <= v <= 43 + EPS for v in vals), vals
        assert any(v <= 40 for v in vals) and any(v > 40 for v in vals)  # oscillates around 40
        # never <= 40 on two consecutive readings: the condition never holds for 120 s
        for (t1, v1), (t2, v2) in zip(w, w[1:]):
            assert abs(t2 - t1 - MIN) < 0.01
            assert not (v1 <= 40 and v2 <= 40), (t1, v1, v2)
        # the readings around the episode are real (> 40): the run of <= 40 never extends it
        assert d.at(p, "heart_rate", a - MIN) > 43 and d.at(p, "heart_rate", b) > 43


def test_tachycardia_threshold(d: Data):
    labels = d.of("tachycardia_threshold")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        w = _values(d.window(p, "heart_rate", a, b))
        assert 10 <= (b - a) / MIN <= 30 and len(w) == round((b - a) / MIN)
        assert all(125 < v <= 150 + EPS for v in w), w


def test_desaturation(d: Data):
    labels = d.of("desaturation")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        w = _values(d.window(p, "spo2", a, b))
        assert 5 <= (b - a) / MIN <= 20 and len(w) == round((b - a) / MIN)
        assert all(86 - EPS <= v <= 89 + EPS for v in w), w
        assert median(_values(d.window(p, "spo2", a - H, a))) >= 93


def test_bp_rise_day(d: Data):
    labels = d.of("bp_rise_day")
    assert labels
    for lb in labels:
        p, a, b = lb["patient"], lb["start"], lb["end"]
        assert 6 * H - 90 * MIN <= b - a <= 16 * H + 90 * MIN
        sys_ = d.window(p, "bp_systolic", a - 4 * H, b + 1)
        gaps = [t2 - t1 for (t1, _), (t2, _) in zip(sys_, sys_[1:])]
        assert max(gaps) <= 90 * MIN  # the cuff's real cadence, no long gap
        level = median(_values(d.window(p, "bp_systolic", a - 4 * H, a)))
        level_d = median(_values(d.window(p, "bp_diastolic", a - 4 * H, a)))
        inside = _values(d.window(p, "bp_systolic", a, b))
        assert all(v < 180 for v in inside)
        top = _values(d.window(p, "bp_systolic", b - 2 * H, b))
        top_d = _values(d.window(p, "bp_diastolic", b - 2 * H, b))
        assert 25 <= median(top) - level <= 45, (level, top)  # reached +25 over hours
        assert 10 <= median(top_d) - level_d <= 25
        assert d.at(p, "bp_systolic", b) is not None  # the return reading


def _temps(d: Data, p: str, a: float, b: float):
    return d.window(p, "body_temp", a, b)


def _check_fever(d: Data, p: str, a: float, b: float, dur_h: tuple[float, float]):
    assert dur_h[0] * H - 1 <= b - a <= dur_h[1] * H + 1, (a, b)
    w = _temps(d, p, a, b + 1)  # the readings of the fever and the return at b
    assert w[0][0] == pytest.approx(a) and w[-1][0] == pytest.approx(b)
    for (t1, _), (t2, _) in zip(w, w[1:]):
        assert 1 * H - 1 <= t2 - t1 <= 4 * H + 1  # charted 1-4 h apart
    assert all(38.2 - EPS <= v <= 40.0 + EPS for _, v in w[:-1]), w
    return w[-1][1]


def test_fever_sparse(d: Data):
    labels = d.of("fever_sparse")
    assert len(labels) >= 20
    for lb in labels:
        ret = _check_fever(d, lb["patient"], lb["start"], lb["end"], (6, 12))
        assert ret <= 37.5 + EPS


def test_fever_recurrent(d: Data):
    per = defaultdict(list)
    for lb in d.of("fever_recurrent"):
        per[lb["patient"]].append(lb)
    assert len(per) >= 15
    for p, lbs in per.items():
        assert len(lbs) == 2, lbs
        f1, f2 = sorted(lbs, key=lambda x: x["start"])
        ret1 = _check_fever(d, p, f1["start"], f1["end"], (4, 8))
        ret2 = _check_fever(d, p, f2["start"], f2["end"], (4, 8))
        assert 6 * H - 1 <= f2["start"] - f1["end"] <= 10 * H + 1
        trough = _temps(d, p, f1["end"], f2["start"])
        assert trough and trough[0][0] == pytest.approx(f1["end"])
        assert all(37.5 <= v < 38.0 for _, v in trough), trough  # never below 37.5
        assert all(37.6 - EPS <= v <= 37.9 + EPS for _, v in trough)
        assert ret1 == trough[0][1] and ret2 <= 37.5 + EPS


def test_clean_hourly_stays_have_no_real_fever_outside_labels(d: Data):
    ds = alarm_data.generate(SEEDS[0])
    for p in {k[0] for k in d.series if k[0].startswith("c")}:
        if p in ds.real_abnormal:
            continue
        spans = [(lb["start"], lb["end"]) for lb in d.by_patient[p]]
        for t, v in d.series.get((p, "body_temp"), []):
            if not any(a <= t < b for a, b in spans):
                assert 35.1 - EPS <= v <= 37.9 + EPS, (p, t, v)


def test_red_band_real_data_only_where_kept(data):
    for seed, dd in data.items():
        kept = alarm_data.generate(seed).real_abnormal
        assert 0 < len(kept) < 0.3 * 130  # a small seeded share
        for (p, s), ser in dd.series.items():
            if not p.startswith("m") or p in kept or s not in RED:
                continue
            spans = [(lb["start"], lb["end"]) for lb in dd.by_patient[p]]
            for t, v in ser:
                if RED[s](v):
                    assert any(a <= t < b for a, b in spans), (p, s, t, v)


def test_episodes_do_not_overlap_and_keep_a_quiet_gap(data):
    for dd in data.values():
        for p, lbs in dd.by_patient.items():
            eps = sorted((lb for lb in lbs if lb["kind"] == "episode"), key=lambda x: x["start"])
            for e1, e2 in zip(eps, eps[1:]):
                assert e2["start"] >= e1["end"] + 3 * H - 1, (p, e1, e2)
            arts = [lb for lb in lbs if lb["kind"] == "artefact"]
            for art in arts:
                for e in eps:
                    assert art["end"] + H <= e["start"] + 1 or art["start"] >= e["end"] + H - 1


def test_artefacts_are_where_the_labels_say(d: Data):
    for lb in d.labels:
        if lb["kind"] != "artefact":
            continue
        p, a, b = lb["patient"], lb["start"], lb["end"]
        assert p.startswith("m")
        n = round((b - a) / MIN)
        if lb["type"] == "spike":
            assert n == 1
            hits = [(s, v) for s in ("heart_rate", "spo2") for _, v in d.window(p, s, a, b)
                    if (s == "heart_rate" and 180 <= v <= 250) or (s == "spo2" and 50 <= v <= 70)]
            assert len(hits) == 1, (lb, hits)
            s = hits[0][0]
            before, after = d.at(p, s, a - MIN), d.at(p, s, b)
            lo, hi = (45, 120) if s == "heart_rate" else (92, 100)
            assert lo <= before <= hi and lo <= after <= hi
        elif lb["type"] == "flatline":
            assert 10 <= n <= 30
            # one value on every minute, the readings just before and after differ from it
            stuck = [s for s in ("heart_rate", "spo2")
                     if len(w := _values(d.window(p, s, a, b))) == n and len(set(w)) == 1
                     and d.at(p, s, a - MIN) not in (None, w[0]) and d.at(p, s, b) not in (None, w[0])]
            assert len(stuck) == 1, lb
            lo, hi = (45, 120) if stuck[0] == "heart_rate" else (92, 100)
            assert lo <= d.at(p, stuck[0], a) <= hi  # stuck at a normal value
        else:
            assert 10 <= n <= 60
            gone = [s for s in ("heart_rate", "spo2", "resp_rate")
                    if not d.window(p, s, a, b) and d.at(p, s, a - MIN) is not None
                    and d.at(p, s, b) is not None]
            assert gone, lb


def test_cli_writes_both_files_and_a_json_line(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, str(BENCH), "--seed", "3", "--out", str(out),
                           "--minute-patients", "2", "--hourly-patients", "10", "--days", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["patients"] == {"minute": 2, "hourly": 10}
    dd = Data(out)
    assert summary["readings"] == len(dd.rows)
    assert sum(sum(v.values()) for v in summary["labels"].values()) == len(dd.labels)
