"""Seeded alarm-quality evaluation data: real ICU records with injected, labelled episodes.

    python3 benchmarks/alarm_data.py --seed 1 --out /tmp/alarm-1
    python3 benchmarks/alarm_data.py --seed 2 --out /tmp/alarm-2 --minute-patients 100 --days 1

writes ``readings.csv`` (the input of ``vitalstream replay``) and ``labels.csv`` (the ground
truth) into ``--out`` and prints one JSON line (sizes, label counts, seconds). One seed is for
tuning a detector/rule configuration, another for reporting it. ``generate()`` returns the same
content as a :class:`Dataset`.

Formats
-------
``readings.csv``: ``patient,time_s,signal,value,unit``; ``time_s`` = seconds since the Unix epoch
(up to 3 decimals: the MIMIC minute grid sits at .894 s), signals and UCUM units as in
``vitalstream.signals`` (``heart_rate`` /min, ``spo2`` %, ``resp_rate`` /min, ``bp_systolic``,
``bp_diastolic``, ``bp_mean`` mm[Hg], ``body_temp`` Cel); rows sorted by time (ties: patient, then
signal). ``labels.csv``: ``patient,kind,type,start,end``; kind ``episode`` (an alert is expected)
or ``artefact`` (no alert is expected); start/end ISO-8601 UTC with milliseconds and ``Z``.

Label times: ``start`` is the time of the first reading that carries the injected values,
``end`` the time of the first reading after them, i.e. when the values have returned; the
injected readings are exactly those with ``start <= t < end`` (half-open). For 1/min
episodes ``end - start`` is the duration (n readings -> n minutes).

Reference data (``vitalstream.testing.shared_dir() / "reference" / "vitals"``)
------------------------------------------------------------------------------
* MIMIC-II numerics ``s00001`` (32.3 h at 1/min, 00:31:25.894 to 08:46 the next day) and
  ``s25047`` (1.2 h). A 0 or an empty cell is "not measured": no reading. ABP is not used
  (7 readings in s00001); ``bp_*`` of 1/min patients are the cuff (NBP) readings at their real
  cadence (mostly every 10 min, some gaps up to 81 min). ``pulse_bpm`` is not used (one heart
  rate series per patient, from the ECG).
* Challenge 2012 (``challenge2012.csv``): 300 stays, irregular, mostly hourly charting.

1/min patients (``m000``, ``m001``, ...)
----------------------------------------
* Timeline: ``days_per_minute_patient * 1440`` minutes on the source's minute grid (time of
  day 00:31:25.894 + k min), starting on 2026-10-10 at a time of day drawn by the seed.
* Segments: the timeline is cut into segments of 180-480 min (uniform). Each segment copies a
  contiguous stretch of s00001 that starts at the *same time of day* (exactly: same minute of
  the grid, so the circadian phase is the real one); for times of day between 00:31 and 08:46
  s00001 has two such stretches (its first and its second night) and the seed picks one, at
  other times there is one. Segments are concatenated day after day; level jumps at the joins
  are the real day-to-day differences of s00001. (32 h of source make 30+ patient-days: the
  same real afternoon recurs, with different offsets, episodes and artefacts.)
* Per-patient offsets (so patients differ), added to every reading: heart rate so that the
  patient's median becomes U(60, 68) /min (s00001's median is 55.6); SpO2 U(-2, 0) % (never
  upwards, which would pile readings up at 100); resp rate U(-1, +3) /min; NBP systolic
  U(-10, +10), diastolic U(-5, +5), mean by diastolic + (systolic - diastolic) / 3 mm[Hg].
  Rounded to 0.1 (NBP to 1 mm[Hg]).
* Real abnormal data: with probability 0.1 per patient (``P_REAL``) the real data is left as it
  is, and the 72 min of s25047 (a real unstable record: SpO2 down to 36 %, NBP down to 40/10)
  replace s00001 at its real time of day (10:44:18.529) on one day where they fit, as
  recorded and without offsets. For the other patients, real readings in a NEWS2 red band
  (``RED_BANDS``: HR <= 40 or >= 131, SpO2 <= 91, RR <= 8 or >= 25, SBP <= 90 or >= 220, after
  the offsets) are dropped, as if not measured, a dropped systolic with its diastolic and mean
  (in s00001 before offsets: 34 RR readings <= 8 and one HR of 11.5). Either way, alerts on real
  red-band values count as valid in the evaluation; nothing of it is labelled. Which patients
  keep real abnormal data is in ``Dataset.real_abnormal``.

Hourly patients (``c<RecordID>``)
---------------------------------
Each a different Challenge 2012 stay chosen by the seed (among the stays with >= 12 readings
of the signals below: 7 stays have glucose only); admitted at 2026-10-10T00:00Z plus a
uniform whole minute in [0, 48 h) (the challenge has no time of day); readings at admission +
``time_s``. Signals: heart_rate, resp_rate, body_temp, spo2 (blood-gas SaO2, sparse) and one
pressure source per stay (invasive if the stay has arterial systolic readings, else cuff);
glucose is not used. Values as recorded (implausible ones and same-minute duplicates
included). Stays whose every temperature is within 35.1-37.9 Cel are "clean"; a slot takes a
stay with real abnormal temperatures (fever >= 38.0, hypothermia <= 35.0 or charting errors)
with probability ``P_REAL`` (or when the clean stays are used up): such a stay is left as it is,
with no injection. A clean stay with >= 3 real temperatures gets ``fever_sparse`` with
probability 0.4, ``fever_recurrent`` with 0.3 (``fever_sparse`` if too short), else nothing.

Episode types (kind ``episode``)
--------------------------------
1/min types change the heart rate (or SpO2) at every minute of the episode: a minute without a
real reading gets one. Where a shape says "real variability", the value is ``level + (x - B)``
with x the real reading of that minute (B if none) and B the median of the real readings of
the 60 min before the onset, so the real minute-to-minute wobble rides on the injected level;
it is then soft-limited to the documented range [lo, hi] with a margin m (identity within
[lo + m, hi - m], beyond that compressed exponentially towards the bound, so values stay in
range without piling up on it) and rounded to 0.1. Onsets are steps (within one minute). Every
1/min HR/SpO2 episode needs >= 45 readings of its signal in the 60 min before it and a reading
just before and just after it.

``tachycardia_relative`` (heart_rate) - a patient at rest in the 60s whose heart rate goes to
    about 100: below every absolute alarm, but +30-40 /min for this patient (early sepsis,
    bleeding, pain, PE; NEWS2 scores 91-110 as 1). Placed only where the 60 min before have a
    median within 60-70 /min and no reading >= 80. Level U(97, 108) /min for U(20, 60) min with
    real variability, limited to 95-110 (m 1.5; never near 120).
``hr_rise_personal`` (heart_rate) - a rise relative to the patient's own recent level B
    (median of the 60 min before, B <= 84), for personalised detectors: level B + D with
    D = U(30, min(45, 114 - B)) /min, for U(15, 40) min, real variability limited to
    B + D - 5 .. B + D + 5 (m 1.5), so at most 119 (below 120, the usual absolute threshold).
``bradycardia_hover`` (heart_rate) - HR hovering at the bradycardia threshold (beta-blocker,
    intermittent AV block) where a "<= 40 for 2 min" rule without hysteresis never fires: for
    U(10, 30) min, each reading is either low, U(39.0, 40.0), or high, U(40.5, 43.0); after a
    low reading the next is always high, otherwise low with probability 0.6. So all values lie
    in 39-43 and no two consecutive readings (60 s apart) are <= 40.
``tachycardia_threshold`` (heart_rate) - the classic case (AF with rapid ventricular
    response, SVT): level U(128, 145) /min for U(10, 30) min with real variability, limited
    to 126-150 (m 2; always > 125).
``desaturation`` (spo2) - hypoventilation, apnoea, secretions: level U(86.5, 88.5) % for
    U(5, 20) min with real variability, limited to 86-89 % (m 0.75); placed where the median SpO2 of
    the 60 min before is >= 93.
``bp_rise_day`` (bp_systolic/diastolic/mean of the cuff, at the cuff's real times) - a
    hypertensive trend over a day (pain, withdrawal of antihypertensives, fluid overload).
    From an onset minute, the systolic offset rises linearly to A = U(25, min(40, 169 - L))
    over R = U(6, 12) h, stays at A for H = U(2, 4) h, then is gone (a step back, e.g.
    treatment). ``start`` = the first cuff reading after the onset, ``end`` = the first cuff
    reading >= onset + R + H (so end - start is R + H minus/plus at most 90 min). Each reading
    in [start, end) gets the offset max(1, round(A * min(1, dt / R))) (dt since the onset),
    diastolic round(offset / 2), mean round((offset + 2 * diastolic offset) / 3); systolic
    soft-limited to 179 (m 6, then rounded; below the 180 crisis threshold). L and Ld are the
    median systolic and diastolic of the cuff readings in the 4 h before ``start`` (>= 12 of them, L <= 144). Placed
    only where no cuff gap in [start - 4 h, end] exceeds 90 min and, over the readings of the
    last 2 h before ``end`` (all on the plateau, >= 3), the median systolic is L + a .. L + a + 5
    and the median diastolic Ld + a/2 - 2 .. Ld + a/2 + 5, with a = round(A) and a/2 =
    round(a / 2) the plateau offsets: the pressure has really risen by 25-45 / 10-25 mm[Hg]
    over the patient's own level, whatever the real pressure did meanwhile.
``fever_sparse`` (body_temp, hourly stays) - fever on charted temperatures: onset U(4 h after
    admission, stay end - duration), duration U(6, 12) h (whole minutes). The stay's real
    temperatures in [start, end] are removed and new charted readings put at start, then
    every 1-4 h (whole minutes, each gap uniform within what still lets the chart close
    exactly at ``end`` with gaps of 1-4 h), each
    round(clip(F + U(-0.3, 0.3), 38.2, 40.0), 1) with F = U(38.4, 39.3) per fever; the reading
    at ``end`` is the return: the stay's median temperature + U(-0.2, 0.2), clipped to
    36.0-37.5.
``fever_recurrent`` (body_temp, hourly stays) - a fever that settles incompletely and
    comes back (inadequate source control, drug fever): fever 1 of U(4, 8) h, then a trough of
    U(6, 10) h whose readings are U(37.6, 37.9) (rounded to 0.1: never below 37.5, never at
    38.0), then fever 2 of U(4, 8) h, then a return reading as for ``fever_sparse``; the same
    charting (real temperatures in [start 1, end 2] removed, readings 1-4 h apart, the trough
    starts with fever 1's return reading at end 1). Two ``fever_recurrent`` labels, one per
    fever: a rule whose hysteresis clears below 37.5 sees one long episode.

Placement: per 1/min patient, episodes one after the other with a quiet gap of U(3, 6) h
(whole minutes) from the end of one to the start of the next (the first onset 2-6 h into the
timeline); the 72 min of s25047 count as an episode for the gap (>= 3 h). The type tried first
is the one with the fewest placements so far over the whole data set (counts divided by the
weight, ``bp_rise_day`` 0.6, others 1), each type gets 12 random onsets within 2 h of the
earliest allowed one, then the next type; when none fits the window moves on by 1 h. The
last episode ends >= 1 h before the timeline does. Episodes never overlap; the 4 h before a
``bp_rise_day`` contain no other episode.

Artefacts (kind ``artefact``, 1/min patients only)
--------------------------------------------------
Per patient, Poisson counts with means 2 spikes, 1 flatline and 1 dropout per day; each at
least 60 min away from every episode (and the s25047 insert) and 30 min from other
artefacts, on real readings (never in a real gap):

``spike`` - one heart-rate reading replaced by U(180, 250) /min (probability 0.5), else one
    SpO2 reading by U(50, 70) %; the readings 60 s before and after are real and normal (HR
    45-120, SpO2 >= 92). Label [t, t + 60 s).
``flatline`` - heart rate or SpO2 (half each) stuck: the same real, normal value (HR 45-120,
    SpO2 >= 92) repeated on every minute for U(10, 30) min; the readings just before and after
    differ from it. Label = the stuck minutes.
``dropout`` - heart rate, SpO2 or resp rate (a third each): no reading for U(10, 60) min,
    where the real signal has a reading every minute from 1 min before to 1 min after.
    Label = the missing minutes (the next reading is at ``end``).

Real gaps of the source (SpO2 off for up to 3 h, a few HR zeros) stay, unlabelled.

Returned :class:`Dataset`: ``readings`` (list of ``(patient, time_s, signal, value, unit)``
tuples in file order), ``labels`` (:class:`Label`: the CSV columns plus the signal and the
drawn parameters), ``days`` (patient -> monitored days: the timeline length for 1/min
patients, first to last reading for hourly ones), ``real_abnormal`` (patient -> what real
abnormal data was left as it is) and ``params``.

Sizes (2-core box): the defaults (10 patients x 3 days at 1/min, 120 hourly stays) give 30
1/min patient-days (about 18 episodes of each short 1/min type, 10 ``bp_rise_day``, ~125
artefacts) plus about 230 hourly patient-days (30-45 ``fever_sparse``, 30-35 recurrent
pairs): ~158 k readings in 0.6 s (+0.3 s to write). ``--minute-patients 100 --days 1``: 100
1/min patient-days, ~457 k readings (heart rate, SpO2 and resp rate each minute less the real
gaps, the cuff every ~10 min, plus the hourly stays) in about 1 s (+0.8 s to write).

Data attribution: MIMIC-II (Saeed et al. 2011, PhysioNet, ODbL) and PhysioNet/CinC Challenge
2012; see shared/reference/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from vitalstream.signals import CATALOGUE, Signal
from vitalstream.testing import shared_dir

HR, SPO2, RR = Signal.HEART_RATE.value, Signal.SPO2.value, Signal.RESP_RATE.value
SYS, DIA, MEAN = Signal.BP_SYSTOLIC.value, Signal.BP_DIASTOLIC.value, Signal.BP_MEAN.value
TEMP = Signal.BODY_TEMP.value
SIGNALS = (HR, SPO2, RR, SYS, DIA, MEAN, TEMP)  # output order for ties
SIG_INDEX = {s: i for i, s in enumerate(SIGNALS)}
UNITS = {s: CATALOGUE[Signal(s)].unit for s in SIGNALS}

MIN_MS = 60_000
H_MS = 60 * MIN_MS
DAY_MS = 24 * H_MS
EPOCH0_MS = int(datetime(2026, 10, 10, tzinfo=timezone.utc).timestamp()) * 1000
_UTC0 = datetime(1970, 1, 1, tzinfo=timezone.utc)

S00001 = "s00001-2896-10-10-00-31n.csv"
S25047 = "s25047-2704-05-04-10-44n.csv"
S00001_TOD_MS = (31 * 60 + 25) * 1000 + 894  # 00:31:25.894, real time of day
S25047_TOD_MS = ((10 * 60 + 44) * 60 + 18) * 1000 + 529  # 10:44:18.529
MIMIC_COLS = {HR: "hr_bpm", SPO2: "spo2_pct", RR: "resp_rpm",
              SYS: "nbp_sys_mmhg", DIA: "nbp_dia_mmhg", MEAN: "nbp_mean_mmhg"}
CHALLENGE_KEEP = (HR, RR, TEMP, SPO2, SYS, DIA, MEAN)

P_REAL = 0.1
# NEWS2 score-3 ("red") single-parameter bands: (low <=, high >=)
RED_BANDS = {HR: (40.0, 131.0), SPO2: (91.0, None), RR: (8.0, 25.0), SYS: (90.0, 220.0)}
MINUTE_TYPES = ("tachycardia_relative", "hr_rise_personal", "bradycardia_hover",
                "tachycardia_threshold", "desaturation", "bp_rise_day")
TYPE_WEIGHT = {t: 1.0 for t in MINUTE_TYPES} | {"bp_rise_day": 0.6}
HOURLY_TYPES = ("fever_sparse", "fever_recurrent")
ARTEFACT_TYPES = ("spike", "flatline", "dropout")
QUIET_MIN = (180, 360)  # minutes between episodes of a patient
PRE = 60  # minutes of baseline before a 1/min HR/SpO2 episode
BP_PRE = 240


@dataclass(frozen=True)
class Label:
    patient: str
    kind: str  # "episode" | "artefact"
    type: str
    start_ms: int
    end_ms: int
    signal: str  # ground truth only (not in labels.csv); bp_rise_day: bp_systolic
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def start(self) -> str:
        return iso(self.start_ms)

    @property
    def end(self) -> str:
        return iso(self.end_ms)


@dataclass
class Dataset:
    seed: int
    readings: list[tuple[str, float, str, float, str]]  # (patient, time_s, signal, value, unit), by time
    labels: list[Label]
    days: dict[str, float]  # patient -> monitored days
    real_abnormal: dict[str, str]  # patient -> what real abnormal data was left as it is
    params: dict

    def summary(self) -> dict:
        count: dict[str, dict[str, int]] = {"episode": defaultdict(int), "artefact": defaultdict(int)}
        for lb in self.labels:
            count[lb.kind][lb.type] += 1
        minute = [p for p in self.days if p.startswith("m")]
        hourly = [p for p in self.days if p.startswith("c")]
        return {"seed": self.seed, "readings": len(self.readings),
                "patients": {"minute": len(minute), "hourly": len(hourly)},
                "patient_days": {"minute": round(sum(self.days[p] for p in minute), 3),
                                 "hourly": round(sum(self.days[p] for p in hourly), 3)},
                "labels": {k: dict(sorted(v.items())) for k, v in count.items()},
                "real_abnormal_patients": len(self.real_abnormal)}

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "readings.csv", "w", newline="") as fh:
            fh.write("patient,time_s,signal,value,unit\n")
            fh.writelines(f"{p},{_fmt_time(t)},{s},{v:g},{u}\n" for p, t, s, v, u in self.readings)
        with open(out / "labels.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(("patient", "kind", "type", "start", "end"))
            for lb in self.labels:
                w.writerow((lb.patient, lb.kind, lb.type, lb.start, lb.end))


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and Z (exact, integer arithmetic)."""
    d = _UTC0 + timedelta(milliseconds=int(ms))
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _fmt_time(t: float) -> str:
    ms = round(t * 1000)
    s, r = divmod(ms, 1000)
    return f"{s}.{r:03d}".rstrip("0").rstrip(".") if r else str(s)


# ---------------------------------------------------------------- reference data

def _ref(ref: Path | None) -> Path:
    return Path(ref) if ref is not None else shared_dir() / "reference" / "vitals"


@lru_cache(maxsize=4)
def _mimic(path: Path) -> dict[str, np.ndarray]:
    """Columns of a MIMIC numerics CSV as float arrays per minute, NaN = not measured (0/empty)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for sig, col in MIMIC_COLS.items():
        v = np.array([float(r[col]) if r[col] not in ("", None) else np.nan for r in rows])
        v[v == 0.0] = np.nan
        out[sig] = v
    times = np.array([int(r["time_s"]) for r in rows])
    if not np.all(np.diff(times) == 60):
        raise ValueError(f"{path.name}: expected a 60 s grid")
    return out


@lru_cache(maxsize=2)
def _challenge(path: Path) -> dict[str, dict]:
    """record -> {"rows": [(time_s, signal, source, value)], "span_s": last time_s}."""
    recs: dict[str, dict] = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rec = recs.setdefault(r["record"], {"rows": [], "span_s": 0})
            t = int(r["time_s"])
            rec["span_s"] = max(rec["span_s"], t)
            if r["signal"] in CHALLENGE_KEEP:
                rec["rows"].append((t, r["signal"], r["source"], float(r["value"])))
    return recs


# ---------------------------------------------------------------- 1/min patients

class _MinutePatient:
    def __init__(self, pid: str, t0_ms: int, n: int, vals: dict[str, np.ndarray]):
        self.pid, self.t0, self.n, self.v = pid, t0_ms, n, vals
        self.extra: list[tuple[int, str, float]] = []  # (t_ms, signal, value) off the minute grid
        self.busy: list[tuple[int, int]] = []  # episode-like windows [m0, m1) in minutes
        self.arts: list[tuple[int, int]] = []
        self.labels: list[Label] = []
        self.detail: dict = {}
        self.s25047: tuple[int, int] | None = None  # inserted window (epoch ms), if any

    def t(self, m: int) -> int:
        return self.t0 + m * MIN_MS

    def label(self, kind: str, typ: str, m0: int, m1: int, signal: str, **detail) -> None:
        self.labels.append(Label(self.pid, kind, typ, self.t(m0), self.t(m1), signal, detail))


def _red(sig: str, v: np.ndarray) -> np.ndarray:
    lo, hi = RED_BANDS[sig]
    bad = np.zeros(v.shape, bool)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= v <= lo
        if hi is not None:
            bad |= v >= hi
    return bad


def _build_minute_patient(rng: np.random.Generator, pid: str, days: float, src: dict,
                          hr_median: float, keep_real: bool, s25: dict) -> _MinutePatient:
    n = int(round(days * 1440))
    L_src = len(src[HR])
    q0 = int(rng.integers(0, 1440))
    idx = np.empty(n, dtype=np.int64)
    j, segments = 0, []
    while j < n:
        length = int(rng.integers(180, 481))
        q = (q0 + j) % 1440
        opts = [s for s in (q, q + 1440) if s + length <= L_src]
        s = opts[int(rng.integers(0, len(opts)))]
        k = min(length, n - j)
        idx[j:j + k] = np.arange(s, s + k)
        segments.append((j, s, k))
        j += k
    off_hr = float(rng.uniform(60.0, 68.0)) - hr_median
    off_spo2 = float(rng.uniform(-2.0, 0.0))
    off_rr = float(rng.uniform(-1.0, 3.0))
    off_sys, off_dia = float(rng.uniform(-10.0, 10.0)), float(rng.uniform(-5.0, 5.0))
    vals = {
        HR: np.round(src[HR][idx] + off_hr, 1),
        SPO2: np.round(src[SPO2][idx] + off_spo2, 1),
        RR: np.round(src[RR][idx] + off_rr, 1),
        SYS: np.round(src[SYS][idx] + off_sys),
        DIA: np.round(src[DIA][idx] + off_dia),
        MEAN: np.round(src[MEAN][idx] + off_dia + (off_sys - off_dia) / 3.0),
    }
    t0 = EPOCH0_MS + (S00001_TOD_MS + q0 * MIN_MS) % DAY_MS
    p = _MinutePatient(pid, t0, n, vals)
    p.detail = {"segments": segments, "offsets": {HR: round(off_hr, 2), SPO2: round(off_spo2, 2),
                                                  RR: round(off_rr, 2), SYS: round(off_sys, 2),
                                                  DIA: round(off_dia, 2)}}
    if not keep_real:
        for sig in RED_BANDS:
            vals[sig][_red(sig, vals[sig])] = np.nan
        bad = np.isnan(vals[SYS])  # a dropped cuff systolic takes its diastolic/mean along
        vals[DIA][bad] = np.nan
        vals[MEAN][bad] = np.nan
        return p
    # keep real abnormal data; insert s25047 at its real time of day on one day where it fits
    n25 = len(s25[HR])
    starts = []
    for d in range(int(np.ceil(days)) + 1):
        ins = EPOCH0_MS + d * DAY_MS + S25047_TOD_MS
        if ins >= t0 + H_MS and ins + n25 * MIN_MS <= p.t(n) - H_MS:
            starts.append(ins)
    if starts:
        ins = starts[int(rng.integers(0, len(starts)))]
        m_a = int(np.ceil((ins - 30_000 - t0) / MIN_MS))
        m_b = int(np.floor((ins + (n25 - 1) * MIN_MS + 30_000 - t0) / MIN_MS))
        for v in vals.values():
            v[m_a:m_b + 1] = np.nan
        for sig in MIMIC_COLS:
            for k, x in enumerate(s25[sig]):
                if not np.isnan(x):
                    p.extra.append((ins + k * MIN_MS, sig, float(x)))
        p.busy.append((m_a, m_b + 1))
        p.s25047 = (ins, ins + n25 * MIN_MS)
    return p


def _soft(y: np.ndarray, lo: float, hi: float, m: float) -> np.ndarray:
    """Soft limits: identity inside [lo + m, hi - m]; beyond, compressed exponentially towards
    the bound, so values stay within [lo, hi] without piling up on it."""
    y = np.asarray(y, dtype=float)
    top, bot = hi - m, lo + m
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.where(y > top, hi - m * np.exp(-(y - top) / m), y)
        y = np.where(y < bot, lo + m * np.exp(-(bot - y) / m), y)
    return y


def _pre(v: np.ndarray, m0: int, width: int = PRE) -> np.ndarray | None:
    if m0 - width < 0:
        return None
    w = v[m0 - width:m0]
    w = w[~np.isnan(w)]
    return w


def _edges_present(v: np.ndarray, m0: int, m1: int) -> bool:
    return m0 >= 1 and m1 < len(v) and not np.isnan(v[m0 - 1]) and not np.isnan(v[m1])


def _try_episode(rng, p: _MinutePatient, typ: str, m0: int):
    """Check the conditions of ``typ`` with onset minute m0; return (m_start, m_end, apply) or None."""
    v = p.v
    if typ == "bp_rise_day":
        return _try_bp(rng, p, m0)
    sig = SPO2 if typ == "desaturation" else HR
    x = v[sig]
    n = {"tachycardia_relative": (20, 60), "hr_rise_personal": (15, 40),
         "bradycardia_hover": (10, 30), "tachycardia_threshold": (10, 30),
         "desaturation": (5, 20)}[typ]
    n = int(rng.integers(n[0], n[1] + 1))
    m1 = m0 + n
    if m1 + 60 > p.n:
        return None
    pre = _pre(x, m0)
    if pre is None or len(pre) < 45 or not _edges_present(x, m0, m1):
        return None
    B = float(np.median(pre))
    real = np.where(np.isnan(x[m0:m1]), B, x[m0:m1])
    if typ == "tachycardia_relative":
        if not (60.0 <= B <= 70.0) or pre.max() >= 80.0:
            return None
        level = rng.uniform(97.0, 108.0)
        new = _soft(level + real - B, 95.0, 110.0, 1.5)
        detail = {"level": round(level, 2)}
    elif typ == "hr_rise_personal":
        if B > 84.0:
            return None
        d = rng.uniform(30.0, min(45.0, 114.0 - B))
        new = _soft(B + d + real - B, B + d - 5.0, B + d + 5.0, 1.5)  # B + d + 5 <= 119
        detail = {"baseline": B, "rise": round(d, 2)}
    elif typ == "bradycardia_hover":
        new = np.empty(n)
        low = False
        for k in range(n):
            low = (not low) and rng.random() < 0.6
            new[k] = rng.uniform(39.0, 40.0) if low else rng.uniform(40.5, 43.0)
        detail = {}
    elif typ == "tachycardia_threshold":
        level = rng.uniform(128.0, 145.0)
        new = _soft(level + real - B, 126.0, 150.0, 2.0)
        detail = {"level": round(level, 2)}
    else:  # desaturation
        if B < 93.0:
            return None
        level = rng.uniform(86.5, 88.5)
        new = _soft(level + real - B, 86.0, 89.0, 0.75)
        detail = {"level": round(level, 2), "baseline": B}
    new = np.round(new, 1)

    def apply():
        x[m0:m1] = new
        p.label("episode", typ, m0, m1, sig, minutes=n, **detail)
    return m0, m1, apply


def _try_bp(rng, p: _MinutePatient, m_on: int):
    sys_, dia, mean = p.v[SYS], p.v[DIA], p.v[MEAN]
    R = int(rng.integers(360, 721))
    H = int(rng.integers(120, 241))
    at = np.flatnonzero(~np.isnan(sys_))
    after = at[at > m_on]
    ends = after[after >= m_on + R + H]
    if len(ends) == 0 or ends[0] + 60 > p.n:
        return None
    m_start, m_end = int(after[0]), int(ends[0])
    if m_start - BP_PRE < 0:
        return None
    for a, b in p.busy:  # the 4 h level must not contain an earlier episode
        if a < m_start and b > m_start - BP_PRE:
            return None
    pre = at[(at >= m_start - BP_PRE) & (at < m_start)]
    if len(pre) < 12:
        return None
    span = at[(at >= m_start - BP_PRE) & (at <= m_end)]
    if np.diff(span).max(initial=0) > 90 or span[0] - (m_start - BP_PRE) > 90:
        return None
    L, Ld = float(np.median(sys_[pre])), float(np.median(dia[pre]))
    if L > 144.0:
        return None
    A = float(rng.uniform(25.0, min(40.0, 169.0 - L)))
    ep = at[(at >= m_start) & (at < m_end)]
    frac = np.minimum(1.0, (ep - m_on) / R)
    off = np.maximum(1.0, np.round(A * frac))
    off_d = np.round(off / 2.0)
    off_m = np.round((off + 2.0 * off_d) / 3.0)
    new_s = np.round(_soft(sys_[ep] + off, -np.inf, 179.0, 6.0))
    new_d = dia[ep] + off_d
    last = ep >= m_end - 120
    if last.sum() < 3:
        return None
    top, top_d = float(off[-1]), float(off_d[-1])  # the plateau offsets
    rise, rise_d = float(np.median(new_s[last])) - L, float(np.median(new_d[last])) - Ld
    if not (top <= rise <= top + 5.0 and top_d - 2.0 <= rise_d <= top_d + 5.0):
        return None

    def apply():
        sys_[ep] = new_s
        dia[ep] = new_d
        mean[ep] = mean[ep] + off_m
        p.label("episode", "bp_rise_day", m_start, m_end, SYS, level=L, rise=round(A, 2),
                ramp_min=R, plateau_min=H, onset=iso(p.t(m_on)))
    return m_start, m_end, apply


def _place_episodes(rng, p: _MinutePatient, counts: dict[str, int]) -> None:
    cursor, first = 0, True
    blocked = list(p.busy)  # s25047 insert
    while True:
        gap = int(rng.integers(120, 361)) if first else int(rng.integers(QUIET_MIN[0], QUIET_MIN[1] + 1))
        base = cursor + gap
        placed = False
        while not placed and base + 10 + 60 <= p.n:
            order = sorted(MINUTE_TYPES, key=lambda t: (counts[t] / TYPE_WEIGHT[t], rng.random()))
            for typ in order:
                for _ in range(12):
                    m0 = base + int(rng.integers(0, 121))
                    res = _try_episode(rng, p, typ, m0)
                    if res is None:
                        continue
                    a, b, apply = res
                    if any(a < bb + QUIET_MIN[0] and b + QUIET_MIN[0] > aa for aa, bb in blocked):
                        continue
                    apply()
                    p.busy.append((a, b))
                    blocked.append((a, b))
                    counts[typ] += 1
                    cursor, placed = b, True
                    break
                if placed:
                    break
            if not placed:
                base += 60
        first = False
        if not placed:
            return


def _place_artefacts(rng, p: _MinutePatient, days: float) -> None:
    want = ["spike"] * int(rng.poisson(2 * days)) + ["flatline"] * int(rng.poisson(days)) \
        + ["dropout"] * int(rng.poisson(days))
    want = [want[i] for i in rng.permutation(len(want))]
    normal = {HR: (45.0, 120.0), SPO2: (92.0, 100.0)}

    def ok_normal(sig, val):
        lo, hi = normal[sig]
        return not np.isnan(val) and lo <= val <= hi

    for typ in want:
        for _ in range(60):
            m0 = int(rng.integers(2, p.n - 62))
            if typ == "spike":
                sig, n = (HR if rng.random() < 0.5 else SPO2), 1
            elif typ == "flatline":
                sig, n = (HR if rng.random() < 0.5 else SPO2), int(rng.integers(10, 31))
            else:
                sig, n = (HR, SPO2, RR)[int(rng.integers(0, 3))], int(rng.integers(10, 61))
            m1 = m0 + n
            if m1 + 1 >= p.n:
                continue
            if any(m0 - 60 < b and m1 + 60 > a for a, b in p.busy):
                continue
            if any(m0 - 30 < b and m1 + 30 > a for a, b in p.arts):
                continue
            x = p.v[sig]
            if typ == "spike":
                if not all(ok_normal(sig, x[m]) for m in (m0 - 1, m0, m0 + 1)):
                    continue
                val = round(float(rng.uniform(180.0, 250.0) if sig == HR else rng.uniform(50.0, 70.0)), 1)
                x[m0] = val
                p.label("artefact", "spike", m0, m1, sig, value=val)
            elif typ == "flatline":
                val = x[m0]
                if not ok_normal(sig, val) or not _edges_present(x, m0, m1) \
                        or x[m0 - 1] == val or x[m1] == val:
                    continue
                x[m0:m1] = val
                p.label("artefact", "flatline", m0, m1, sig, value=float(val), minutes=n)
            else:
                if np.isnan(x[m0 - 1:m1 + 1]).any():
                    continue
                x[m0:m1] = np.nan
                p.label("artefact", "dropout", m0, m1, sig, minutes=n)
            p.arts.append((m0, m1))
            break


# ---------------------------------------------------------------- hourly patients

def _chart(rng, a: int, total: int) -> list[int]:
    """Times (minutes from a) of charted readings: a, then gaps of 60-240 min summing exactly to total."""
    out, s = [0], 0
    while True:
        r = total - s
        if r <= 240:
            out.append(total)
            return [a + m for m in out]
        g = int(rng.integers(60, min(240, r - 60) + 1))
        s += g
        out.append(s)


def _fever_values(rng, k: int) -> list[float]:
    f = rng.uniform(38.4, 39.3)
    return [round(float(np.clip(f + rng.uniform(-0.3, 0.3), 38.2, 40.0)), 1) for _ in range(k)]


def _hourly_patient(rng, rec: str, data: dict, clean: bool, adm_ms: int):
    pid = f"c{rec}"
    rows = data["rows"]
    inv = any(sig == SYS and src == "invasive" for _, sig, src, _ in rows)
    bp_src = "invasive" if inv else "non-invasive"
    rows = [(t, sig, v) for t, sig, src, v in rows if sig not in (SYS, DIA, MEAN) or src == bp_src]
    temps = [(t, v) for t, sig, v in rows if sig == TEMP]
    labels: list[Label] = []
    scenario = "real_abnormal" if not clean else "none"
    span = data["span_s"] // 60  # minutes since admission of the last reading
    if clean and len(temps) >= 3:
        u = rng.random()
        want = "fever_sparse" if u < 0.4 else "fever_recurrent" if u < 0.7 else "none"
        base = float(np.median([v for _, v in temps]))
        ret = lambda: round(float(np.clip(base + rng.uniform(-0.2, 0.2), 36.0, 37.5)), 1)  # noqa: E731
        new: list[tuple[int, float]] = []  # (minute, value)
        if want == "fever_recurrent":
            d1, g, d2 = (int(rng.integers(240, 481)), int(rng.integers(360, 601)),
                         int(rng.integers(240, 481)))
            if span - 240 - (d1 + g + d2) < 0:
                want = "fever_sparse"
            else:
                s1 = int(rng.integers(240, span - (d1 + g + d2) + 1))
                f1 = _chart(rng, s1, d1)
                tr = _chart(rng, f1[-1], g)
                f2 = _chart(rng, tr[-1], d2)
                new += list(zip(f1[:-1], _fever_values(rng, len(f1) - 1)))
                new += [(m, round(float(rng.uniform(37.6, 37.9)), 1)) for m in tr[:-1]]
                new += list(zip(f2[:-1], _fever_values(rng, len(f2) - 1)))
                new.append((f2[-1], ret()))
                block = (s1, f2[-1])
                for a, b in ((f1[0], f1[-1]), (f2[0], f2[-1])):
                    labels.append(Label(pid, "episode", "fever_recurrent", adm_ms + a * MIN_MS,
                                        adm_ms + b * MIN_MS, TEMP))
        if want == "fever_sparse":
            d = int(rng.integers(360, 721))
            if span - 240 - d < 0:
                want = "none"
            else:
                s = int(rng.integers(240, span - d + 1))
                f = _chart(rng, s, d)
                new += list(zip(f[:-1], _fever_values(rng, len(f) - 1)))
                new.append((f[-1], ret()))
                block = (s, f[-1])
                labels.append(Label(pid, "episode", "fever_sparse", adm_ms + s * MIN_MS,
                                    adm_ms + f[-1] * MIN_MS, TEMP))
        scenario = want
        if new:
            a, b = block[0] * 60, block[1] * 60
            rows = [r for r in rows if not (r[1] == TEMP and a <= r[0] <= b)]
            rows += [(m * 60, TEMP, v) for m, v in new]
    readings = [(adm_ms + t * 1000, sig, v) for t, sig, v in rows]
    return pid, readings, labels, scenario


# ---------------------------------------------------------------- generate

def generate(seed: int, *, minute_patients: int = 10, hourly_patients: int = 120,
             days_per_minute_patient: float = 3.0, ref: Path | None = None) -> Dataset:
    """The evaluation data set for ``seed`` (deterministic); see the module docstring."""
    if days_per_minute_patient < 0.5 and minute_patients:
        raise ValueError("days_per_minute_patient must be >= 0.5")
    ref = _ref(ref)
    rng = np.random.default_rng(seed)
    src = _mimic(ref / S00001)
    s25 = _mimic(ref / S25047)
    hr_median = float(np.nanmedian(src[HR]))

    pats, sigs, times, values = [], [], [], []
    names: list[str] = []
    labels: list[Label] = []
    days: dict[str, float] = {}
    real_abnormal: dict[str, str] = {}
    counts = {t: 0 for t in MINUTE_TYPES}

    def add(pid: str, t_ms: np.ndarray, sig: np.ndarray, val: np.ndarray) -> None:
        pats.append(np.full(len(t_ms), len(names) - 1, dtype=np.int32))
        times.append(t_ms.astype(np.int64))
        sigs.append(sig.astype(np.int8))
        values.append(val.astype(np.float64))

    for i in range(minute_patients):
        pid = f"m{i:03d}"
        keep = bool(rng.random() < P_REAL)
        p = _build_minute_patient(rng, pid, days_per_minute_patient, src, hr_median, keep, s25)
        _place_episodes(rng, p, counts)
        _place_artefacts(rng, p, days_per_minute_patient)
        names.append(pid)
        tgrid = p.t0 + np.arange(p.n, dtype=np.int64) * MIN_MS
        for sig, v in p.v.items():
            ok = ~np.isnan(v)
            add(pid, tgrid[ok], np.full(int(ok.sum()), SIG_INDEX[sig]), v[ok])
        if p.extra:
            add(pid, np.array([e[0] for e in p.extra]), np.array([SIG_INDEX[e[1]] for e in p.extra]),
                np.array([e[2] for e in p.extra]))
        if keep:
            real_abnormal[pid] = ("red-band readings of s00001 kept"
                                  + (f"; s25047 inserted {iso(p.s25047[0])}..{iso(p.s25047[1])}"
                                     if p.s25047 else ""))
        labels += p.labels
        days[pid] = p.n / 1440.0

    recs = _challenge(ref / "challenge2012.csv")

    def is_clean(d):
        return all(35.1 <= v <= 37.9 for _, sig, _, v in d["rows"] if sig == TEMP)
    keys = [k for k in sorted(recs, key=int) if len(recs[k]["rows"]) >= 12]  # vitals, not glucose only
    if hourly_patients > len(keys):
        raise ValueError(f"at most {len(keys)} hourly patients (stays with vital signs)")
    clean = [keys[i] for i in rng.permutation(len(keys)) if is_clean(recs[keys[i]])]
    dirty = [k for k in keys if not is_clean(recs[k])]
    dirty = [dirty[i] for i in rng.permutation(len(dirty))]
    scenarios: dict[str, int] = defaultdict(int)
    for _ in range(hourly_patients):
        use_dirty = (rng.random() < P_REAL and dirty) or not clean
        rec = dirty.pop() if use_dirty else clean.pop()
        adm = EPOCH0_MS + int(rng.integers(0, 2 * 1440)) * MIN_MS
        pid, rs, lbs, scen = _hourly_patient(rng, rec, recs[rec], not use_dirty, adm)
        scenarios[scen] += 1
        if use_dirty:
            real_abnormal[pid] = "Challenge 2012 stay with real abnormal temperatures, as recorded"
        names.append(pid)
        add(pid, np.array([r[0] for r in rs], dtype=np.int64), np.array([SIG_INDEX[r[1]] for r in rs]),
            np.array([r[2] for r in rs]))
        labels += lbs
        ts = [r[0] for r in rs]
        days[pid] = (max(ts) - min(ts)) / DAY_MS if ts else 0.0

    P, T, G, V = (np.concatenate(a) if a else np.empty(0) for a in (pats, times, sigs, values))
    order = np.lexsort((G, P, T))
    P, T, G, V = P[order], T[order], G[order], V[order]
    units = [UNITS[s] for s in SIGNALS]
    readings = list(zip([names[i] for i in P.tolist()], (T / 1000.0).tolist(),
                        [SIGNALS[g] for g in G.tolist()], V.tolist(), [units[g] for g in G.tolist()]))
    labels.sort(key=lambda lb: (lb.start_ms, lb.patient, lb.type))
    params = {"seed": seed, "minute_patients": minute_patients, "hourly_patients": hourly_patients,
              "days_per_minute_patient": days_per_minute_patient,
              "hourly_scenarios": dict(scenarios)}
    return Dataset(seed, readings, labels, days, real_abnormal, params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="directory for readings.csv and labels.csv")
    ap.add_argument("--minute-patients", type=int, default=10)
    ap.add_argument("--hourly-patients", type=int, default=120)
    ap.add_argument("--days", type=float, default=3.0, help="days per 1/min patient")
    ap.add_argument("--ref", type=Path, default=None, help="shared/reference/vitals (default: shared_dir())")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    ds = generate(a.seed, minute_patients=a.minute_patients, hourly_patients=a.hourly_patients,
                  days_per_minute_patient=a.days, ref=a.ref)
    t1 = time.perf_counter()
    ds.write(a.out)
    t2 = time.perf_counter()
    print(json.dumps(ds.summary() | {"out": str(a.out), "hourly_scenarios": ds.params["hourly_scenarios"],
                                     "generate_s": round(t1 - t0, 3), "write_s": round(t2 - t1, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
