"""NEWS2: the National Early Warning Score 2 (Royal College of Physicians, 2017).

Two parts:

- ``score_news2(...)``: a pure function of the seven parameters -> ``News2Score``
  (aggregate, parameter scores, red single-parameter rule, risk band, response).
- ``News2``: a per-patient streaming operator under the operator contract
  (``vitalstream.operators.contract``) that keeps the latest fresh reading of each
  parameter and emits a ``News2Result`` when the result changes, plus a
  ``News2Alert`` when the band moves up into ``medium`` or ``high``.

Bands are the RCP 2017 chart's, kept as data (``BANDS``). The chart is drawn for
whole breaths and beats per minute, whole % SpO2 and mm[Hg], and 0.1 Cel; a real
reading is first rounded half up to that resolution (resp 8.5 /min -> 9 -> score 1;
8.49 -> 8 -> 3; temperature 35.05 Cel -> 35.1 -> 1), then looked up. Rounding uses
the value's shortest decimal form (``repr``), so 35.05 is 35.05 and not the binary
35.04999...

Missing parameters are never scored as normal: they are listed in ``missing``, their
score is ``None``, and the aggregate over the parameters present is flagged
incomplete (``complete`` is False). The band of an incomplete result is a lower bound:
the missing parameters could only add to the score. On SpO2 scale 2 a saturation of
93 % or more scores 0 on air but 1-3 on oxygen, so with ``oxygen`` unknown it cannot be
scored either: ``spo2`` is then ``None`` too (and ``oxygen`` is in ``missing``).

>>> r = score_news2(resp_rate=22, spo2=95, oxygen=False, bp_systolic=105, heart_rate=112,
...                 consciousness="A", body_temp=38.4)
>>> r.score, r.band, r.complete
(7, 'high', True)
>>> score_news2(resp_rate=7, spo2=97, oxygen=False, bp_systolic=120, heart_rate=70,
...             consciousness="A", body_temp=37.0).band      # red single parameter, total 3
'low-medium'
>>> score_news2(heart_rate=70).missing
('resp_rate', 'spo2', 'oxygen', 'bp_systolic', 'consciousness', 'body_temp')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping

from vitalstream.model import Quality, Reading
from vitalstream.operators.contract import RETAIN, Emit, Stateless, snapshot_of
from vitalstream.signals import Signal, finite_number

NS = 1_000_000_000

# Parameter order of the RCP chart; also the order of ``missing`` and parameter_scores.
PARAMETERS = ("resp_rate", "spo2", "oxygen", "bp_systolic", "heart_rate", "consciousness",
              "body_temp")

# (highest rounded value in the band, score), ascending; the last band is open above.
# RCP 2017, NEWS2 chart 1.
Bands = tuple[tuple[float, int], ...]
BANDS: dict[str, Bands] = {
    "resp_rate": ((8, 3), (11, 1), (20, 0), (24, 2), (math.inf, 3)),          # /min
    "spo2_scale1": ((91, 3), (93, 2), (95, 1), (math.inf, 0)),                 # %
    # scale 2 (hypercapnic respiratory failure, target 88-92 %): >= 93 scores 0 on air
    "spo2_scale2_air": ((83, 3), (85, 2), (87, 1), (math.inf, 0)),             # %
    "spo2_scale2_oxygen": ((83, 3), (85, 2), (87, 1), (92, 0), (94, 1), (96, 2), (math.inf, 3)),
    "bp_systolic": ((90, 3), (100, 2), (110, 1), (219, 0), (math.inf, 3)),     # mm[Hg]
    "heart_rate": ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (math.inf, 3)),  # /min
    "body_temp": ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (math.inf, 2)),  # Cel
}
# The chart's resolution per parameter: readings are rounded half up to it first.
RESOLUTION = {"resp_rate": Decimal("1"), "spo2": Decimal("1"), "bp_systolic": Decimal("1"),
              "heart_rate": Decimal("1"), "body_temp": Decimal("0.1")}
OXYGEN_SCORE = {True: 2, False: 0}
ACVPU = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}  # C: new confusion

BAND_RANK = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}
# RCP 2017, NEWS2 chart 2 (frequency of monitoring) and table of clinical response.
RESPONSES = {
    "low-0": "routine ward-based monitoring, minimum 12-hourly",
    "low": "ward-based response: assessment by a registered nurse; monitoring minimum 4-6-hourly",
    "low-medium": ("urgent ward-based response: registered nurse to inform the medical team "
                   "and consider escalation; monitoring minimum hourly"),
    "medium": ("key threshold for urgent response: urgent review by a clinician competent in "
               "the assessment of acutely ill patients; monitoring minimum hourly"),
    "high": ("emergency response: continuous monitoring of vital signs, emergency assessment "
             "by a clinical team with critical-care competencies (critical care outreach)"),
}


def chart_value(parameter: str, value: float) -> Decimal:
    """``value`` rounded half up to the chart's resolution for ``parameter``.

    >>> chart_value("resp_rate", 8.5), chart_value("resp_rate", 8.49), chart_value("body_temp", 35.05)
    (Decimal('9'), Decimal('8'), Decimal('35.1'))
    """
    return Decimal(repr(float(value))).quantize(RESOLUTION[parameter], rounding=ROUND_HALF_UP)


def band_score(bands: Bands, value: Decimal) -> int:
    """The score of the first band whose upper edge is >= ``value``.

    >>> band_score(BANDS["heart_rate"], Decimal(91))
    1
    """
    for upper, score in bands:
        if upper == math.inf or value <= Decimal(repr(upper)):
            return score
    raise AssertionError("the last band is open above")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class News2Score:
    """One NEWS2 evaluation.

    ``parameter_scores`` holds every parameter of ``PARAMETERS`` in order, ``None`` when
    it could not be scored; ``red`` names the parameters scoring 3 (the red
    single-parameter rule).
    """

    score: int
    band: str  # low, low-medium, medium, high
    parameter_scores: tuple[tuple[str, int | None], ...]
    missing: tuple[str, ...]
    red: tuple[str, ...]
    response: str

    @property
    def complete(self) -> bool:
        return not self.missing and all(s is not None for _, s in self.parameter_scores)

    def scores(self) -> dict[str, int | None]:
        return dict(self.parameter_scores)

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "band": self.band, "parameter_scores": self.scores(),
                "missing": list(self.missing), "red": list(self.red), "complete": self.complete,
                "response": self.response}

    def __deepcopy__(self, memo: dict) -> "News2Score":
        return self  # immutable: snapshots share it


def risk_band(total: int, any_red: bool) -> str:
    """RCP 2017 thresholds and triggers.

    >>> risk_band(4, False), risk_band(3, True), risk_band(5, True), risk_band(7, False)
    ('low', 'low-medium', 'medium', 'high')
    """
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if any_red else "low"


def score_news2(*, resp_rate: float | None = None, spo2: float | None = None,
                spo2_scale: int = 1, oxygen: bool | None = None,
                bp_systolic: float | None = None, heart_rate: float | None = None,
                consciousness: str | None = None, body_temp: float | None = None) -> News2Score:
    """Score one set of observations (units: /min, %, mm[Hg], /min, Cel); ``None`` is missing.

    Raises ``ValueError`` on a value of the wrong type, a non-finite number, a
    ``spo2_scale`` other than 1 or 2, or a consciousness letter outside ACVPU.
    """
    if isinstance(spo2_scale, bool) or spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale: expected 1 or 2, got {spo2_scale!r}")
    if oxygen is not None and not isinstance(oxygen, bool):
        raise ValueError(f"oxygen: expected true or false, got {oxygen!r}")
    if consciousness is not None and (not isinstance(consciousness, str)
                                      or consciousness not in ACVPU):
        raise ValueError(f"consciousness: expected one of A, C, V, P, U, got {consciousness!r}")
    scores: dict[str, int | None] = dict.fromkeys(PARAMETERS)
    numeric = {"resp_rate": resp_rate, "bp_systolic": bp_systolic, "heart_rate": heart_rate,
               "body_temp": body_temp}
    for name, value in numeric.items():
        if value is not None:
            scores[name] = band_score(BANDS[name], chart_value(name, finite_number(name, value)))
    if spo2 is not None:
        sat = chart_value("spo2", finite_number("spo2", spo2))
        if spo2_scale == 1:
            scores["spo2"] = band_score(BANDS["spo2_scale1"], sat)
        elif oxygen is not None:
            scores["spo2"] = band_score(BANDS["spo2_scale2_oxygen" if oxygen else "spo2_scale2_air"],
                                        sat)
        elif sat <= 92:  # below 93 % air and oxygen score alike
            scores["spo2"] = band_score(BANDS["spo2_scale2_air"], sat)
    if oxygen is not None:
        scores["oxygen"] = OXYGEN_SCORE[oxygen]
    if consciousness is not None:
        scores["consciousness"] = ACVPU[consciousness]
    given = {"resp_rate": resp_rate, "spo2": spo2, "oxygen": oxygen, "bp_systolic": bp_systolic,
             "heart_rate": heart_rate, "consciousness": consciousness, "body_temp": body_temp}
    missing = tuple(p for p in PARAMETERS if given[p] is None)
    total = sum(s for s in scores.values() if s is not None)
    red = tuple(p for p, s in scores.items() if s == 3)
    band = risk_band(total, bool(red))
    response = RESPONSES["low-0" if band == "low" and total == 0 else band]
    return News2Score(total, band, tuple(scores.items()), missing, red, response)


def score_mapping(obs: Mapping[str, Any]) -> News2Score:
    """``score_news2`` over a mapping with the keys of ``PARAMETERS`` and ``spo2_scale``;
    an unknown key is a ``ValueError`` (a misspelt parameter would otherwise read as missing)."""
    unknown = sorted(set(obs) - set(PARAMETERS) - {"spo2_scale"})
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}")
    kw = dict(obs)
    if kw.get("spo2_scale") is None:
        kw["spo2_scale"] = 1  # the default scale; scale 2 is a per-patient clinical decision
    return score_news2(**kw)


# -- the streaming operator --

_SIGNALS = {Signal.RESP_RATE: "resp_rate", Signal.SPO2: "spo2", Signal.BP_SYSTOLIC: "bp_systolic",
            Signal.HEART_RATE: "heart_rate", Signal.BODY_TEMP: "body_temp"}


@dataclass(frozen=True, slots=True)
class News2Context:
    """Observations that are not signals of the catalogue: air or oxygen, ACVPU, and the
    patient's SpO2 scale. ``None`` leaves a field as it was; a context item is evidence at
    ``event_ns`` like a reading."""

    patient: str
    event_ns: int
    oxygen: bool | None = None
    consciousness: str | None = None  # A, C, V, P or U
    spo2_scale: int | None = None  # 1 or 2; once set it holds until changed (no expiry)

    def __deepcopy__(self, memo: dict) -> "News2Context":
        return self


@dataclass(frozen=True, slots=True)
class News2Result:
    patient: str
    event_ns: int  # the patient's event time when the result changed
    news2: News2Score

    def __deepcopy__(self, memo: dict) -> "News2Result":
        return self


@dataclass(frozen=True, slots=True)
class News2Alert:
    """The band moved up into ``medium`` or ``high``."""

    patient: str
    event_ns: int
    band: str
    previous_band: str | None
    score: int
    response: str

    def __deepcopy__(self, memo: dict) -> "News2Alert":
        return self


@dataclass
class News2State:
    latest: dict[str, tuple[int, Any]] = field(default_factory=dict)  # parameter -> (event_ns, value)
    spo2_scale: int | None = None
    now_ns: int | None = None  # newest event time seen for the patient
    last: News2Score | None = None


# Freshness windows in event time. Wearables report resp, SpO2 and HR every minute or
# so and a cuff at most hourly on a ward: 1 h. Temperature, consciousness and air/oxygen
# are charted at observation rounds (RCP: minimum 12-hourly at a score of 0): 12 h.
DEFAULT_FRESH_S = {"resp_rate": 3600, "spo2": 3600, "bp_systolic": 3600, "heart_rate": 3600,
                   "body_temp": 12 * 3600, "consciousness": 12 * 3600, "oxygen": 12 * 3600}


@dataclass(frozen=True, slots=True)
class News2:
    """Config of the per-patient NEWS2 operator.

    Items are ``Reading`` (resp_rate, spo2, bp_systolic, heart_rate, body_temp; other
    signals are ignored) and ``News2Context``. The latest value of each parameter (by
    event time) counts while it is at most ``fresh_s[parameter]`` older than the newest
    event time of the patient; after that it is missing. Time is the data's: a value goes
    stale when a later item of the same patient arrives (no timers; a silent patient keeps
    its last result, and eviction is the host's, e.g. ``PatientFlow``). A ``News2Result``
    is emitted when the score or the band changes, and also when a parameter's score or
    the set of missing parameters does (what the score rests on changed), and a
    ``News2Alert`` when the band rises into ``medium`` or ``high``. Results follow arrival
    order, so feed it after the patient's reorder buffer; a re-sent item changes nothing.
    Readings flagged ``MOTION_ARTEFACT``, ``SPECIAL_VALUE`` or ``HISTORICAL`` are not used.

    >>> from vitalstream.operators.contract import drive
    >>> out = drive(News2().build(), [Reading("p1", "d", Signal.HEART_RATE, 135.0, "/min", 0, 0)])
    >>> out[0].news2.score, out[0].news2.band, out[0].news2.complete
    (3, 'low-medium', False)
    """

    fresh_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRESH_S))
    spo2_scale: int = 1  # the default for patients without a News2Context scale

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fresh_s) - set(DEFAULT_FRESH_S))
        if unknown:  # a misspelt parameter would silently keep its default window
            raise ValueError(f"fresh_s: unknown parameters {unknown}; known: {sorted(DEFAULT_FRESH_S)}")
        if isinstance(self.spo2_scale, bool) or self.spo2_scale not in (1, 2):
            raise ValueError(f"spo2_scale: expected 1 or 2, got {self.spo2_scale!r}")

    def build(self, resume_state: News2State | None = None, *, key: str = "") -> "News2Logic":
        return News2Logic(self, resume_state if resume_state is not None else News2State(), key)


# Not a measurement to score (artefact, special value), or not live (back-fill, quarantine
# replay: rules never alert on those either).
_IGNORED_QUALITY = int(Quality.MOTION_ARTEFACT | Quality.SPECIAL_VALUE | Quality.HISTORICAL)


_CONTEXT_SIGNALS = frozenset({Signal.OXYGEN, Signal.CONSCIOUSNESS, Signal.SPO2_SCALE})
NEWS2_INPUTS = frozenset(_SIGNALS) | _CONTEXT_SIGNALS  # every signal the operator reads
_ACVPU_CODES = "ACVPU"  # the coding of Signal.CONSCIOUSNESS: 0 = A ... 4 = U


def _context_of(r: Reading) -> News2Context | None:
    """A charted observation that arrived as a reading (``oxygen`` 0/1, ``consciousness``
    0-4 for A, C, V, P, U, ``spo2_scale`` 1/2) as a context item; any other value is not
    evidence (None)."""
    v = r.value
    if int(r.quality) & _IGNORED_QUALITY or not math.isfinite(v) or v != int(v):
        return None
    code = int(v)
    if r.signal is Signal.OXYGEN and code in (0, 1):
        return News2Context(r.patient, r.event_ns, oxygen=code == 1)
    if r.signal is Signal.CONSCIOUSNESS and 0 <= code <= 4:
        return News2Context(r.patient, r.event_ns, consciousness=_ACVPU_CODES[code])
    if r.signal is Signal.SPO2_SCALE and code in (1, 2):
        return News2Context(r.patient, r.event_ns, spo2_scale=code)
    return None


class News2Logic(Stateless[News2State]):
    def __init__(self, cfg: News2, st: News2State, key: str) -> None:
        self.cfg, self.st, self.key = cfg, st, key
        self._fresh_ns = {p: int(cfg.fresh_s.get(p, DEFAULT_FRESH_S[p]) * NS) for p in DEFAULT_FRESH_S}
        # A result depends on the observations only through the parameter scores, so a new
        # heart rate that scores as the last one cannot change it: the scores are looked up
        # (memoised per value) and the full score is taken only when they change. Derived,
        # not state: after a resume the first item scores in full and compares with st.last.
        self._memo: dict[tuple, int | None] = {}
        self._last_key: tuple | None = None

    def _param_score(self, p: str, v: Any, scale: int, oxygen: Any) -> int | None:
        k = (p, v, scale, oxygen) if p == "spo2" else (p, v)
        s = self._memo.get(k, -1)
        if s == -1:
            if len(self._memo) > 4096:
                self._memo.clear()
            kw = {p: v, "oxygen": oxygen} if p == "spo2" else {p: v}
            s = self._memo[k] = score_news2(spo2_scale=scale, **kw).scores()[p]
        return s

    def _put(self, name: str, event_ns: int, value: Any) -> None:
        old = self.st.latest.get(name)
        # the newest by event time; a tie at the same event time is broken by a fixed order of
        # the values (their repr), so which of the two arrived first cannot matter
        if old is None or (event_ns, repr(value)) > (old[0], repr(old[1])):
            self.st.latest[name] = (event_ns, value)

    def on_item(self, item: Reading | News2Context) -> Emit:
        st = self.st
        if type(item) is Reading and item.signal in _CONTEXT_SIGNALS:
            ctx = _context_of(item)
            if ctx is None:
                return [], RETAIN
            item = ctx
        if isinstance(item, News2Context):
            if item.consciousness is not None and (not isinstance(item.consciousness, str)
                                                   or item.consciousness not in ACVPU):
                return [], RETAIN  # not an ACVPU letter: not evidence
            if item.oxygen is not None:
                self._put("oxygen", item.event_ns, bool(item.oxygen))
            if item.consciousness is not None:
                self._put("consciousness", item.event_ns, item.consciousness)
            if item.spo2_scale in (1, 2):
                st.spo2_scale = item.spo2_scale
            patient, t = item.patient, item.event_ns
        else:
            name = _SIGNALS.get(item.signal)
            if name is None or int(item.quality) & _IGNORED_QUALITY or not math.isfinite(item.value):
                return [], RETAIN
            self._put(name, item.event_ns, item.value)
            patient, t = item.patient, item.event_ns
        st.now_ns = t if st.now_ns is None else max(st.now_ns, t)
        now = st.now_ns
        obs = {p: v for p, (at, v) in st.latest.items() if now - at <= self._fresh_ns[p]}
        scale = self.cfg.spo2_scale if st.spo2_scale is None else st.spo2_scale
        oxygen = obs.get("oxygen")
        key = (scale,) + tuple(None if p not in obs else (self._param_score(p, obs[p], scale, oxygen),)
                               for p in PARAMETERS)
        if key == self._last_key and st.last is not None:
            return [], RETAIN
        self._last_key = key
        res = score_news2(spo2_scale=scale, **obs)
        prev = st.last
        if prev is not None and (prev.score, prev.band, prev.missing, prev.parameter_scores) == (
                res.score, res.band, res.missing, res.parameter_scores):
            return [], RETAIN
        st.last = res
        out: list[Any] = []
        before = None if prev is None else prev.band
        if BAND_RANK[res.band] >= BAND_RANK["medium"] and (
                before is None or BAND_RANK[res.band] > BAND_RANK[before]):
            out.append(News2Alert(patient, now, res.band, before, res.score, res.response))
        out.append(News2Result(patient, now, res))
        return out, RETAIN

    def snapshot(self) -> News2State:
        return snapshot_of(self.st)
