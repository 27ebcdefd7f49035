"""Every per-key operator passes the one contract check (``vitalstream.operators.check``).

An operator added later gets the check by being listed in ``CASES``. The stream is
the shared MIMIC-II numerics record s00001 (1/min HR, SpO2, respiration), with a
documented injected tachycardia so rules fire, and the packaged rules and detectors.
The last tests show that the check is not vacuous: deliberately broken operators fail it.
"""

from __future__ import annotations

import calendar
import csv
import dataclasses
import time
from dataclasses import dataclass, field
from functools import lru_cache

import pytest

from vitalstream.model import Reading
from vitalstream.operators.anomaly.stage import AnomalyStage
from vitalstream.operators.check import (CHECKS, Case, check_bounded_state, check_no_wall_clock,
                                         check_out_of_order, check_snapshot_independent,
                                         check_snapshot_resume, run)
from vitalstream.operators.contract import RETAIN, Stateless
from vitalstream.operators.dedup import Dedup
from vitalstream.operators.concerns import Concerns
from vitalstream.operators.news2 import News2, News2Context
from vitalstream.operators.news2_alerts import News2Rule
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.shard import PatientHost
from vitalstream.operators.window import TimeInRange, TumblingWindow, VITAL_STATS
from vitalstream.signals import Signal
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.settings import Settings, rules_document
from vitalstream.testing import shared_dir

NS = 1_000_000_000
# MIMIC's surrogate year (2896) overflows int64 ns: the time of day is kept on 2026-10-10.
T0 = calendar.timegm((2026, 10, 10, 0, 31, 25)) * NS
COLUMNS = {"hr_bpm": (Signal.HEART_RATE, "/min"), "spo2_pct": (Signal.SPO2, "%"),
           "resp_rpm": (Signal.RESP_RATE, "/min")}
TACHY_MIN = range(100, 131)  # injected: HR 128-134 /min for 31 minutes (tachycardia rule: > 120 for 5 min)


@lru_cache(maxsize=None)
def s00001(minutes: int = 240, patient: str = "s00001") -> tuple[Reading, ...]:
    path = shared_dir() / "reference" / "vitals" / "s00001-2896-10-10-00-31n.csv"
    out = []
    with path.open() as f:
        for row in csv.DictReader(f):
            m = int(row["time_s"]) // 60
            if m >= minutes:
                break
            for col, (sig, unit) in COLUMNS.items():
                if row[col] in ("", "0"):
                    continue  # empty cell or lead off: not a sample
                v = float(row[col])
                if sig is Signal.HEART_RATE and m in TACHY_MIN:
                    v = 128.0 + (m % 7)
                t = T0 + int(row["time_s"]) * NS
                out.append(Reading(patient, "monitor-1", sig, v, unit, t, t))
    return tuple(out)


def hr_stream(n: int) -> list[Reading]:
    """n minutes of a calm heart rate with a daily swing: for state-size checks."""
    return [Reading("s00001", "d", Signal.HEART_RATE, 70.0 + (i % 97) / 10, "/min", T0 + i * 60 * NS,
                    T0 + i * 60 * NS) for i in range(n)]


SETTINGS = Settings()
DOC = rules_document(SETTINGS)
RULES = RuleSet.from_dicts(DOC["rules"])
FLOW = patient_flow(SETTINGS)
SMALL_FLOW = dataclasses.replace(FLOW, evict_after_ns=2 * 3600 * NS)
WINDOW = TumblingWindow(60 * NS, 10 * NS)


def _two_patients() -> tuple[Reading, ...]:
    a = s00001(120)
    b = tuple(dataclasses.replace(r, patient="s00001-b", device="monitor-2", value=r.value + 1)
              for r in s00001(120))
    return tuple(sorted(a + b, key=lambda r: (r.event_ns, r.patient, r.signal.value)))


def news2_stream() -> tuple:
    """s00001 (HR, SpO2, resp) with a cuff every 15 min, a temperature charted hourly (a fever
    from the second hour) and charted air/ACVPU (voice-responsive for half an hour): NEWS2
    needs all seven parameters. Synthetic values, documented here, in event order."""
    extra: list = [News2Context("s00001", T0, oxygen=False, consciousness="A", spo2_scale=1),
                   News2Context("s00001", T0 + 120 * 60 * NS, consciousness="V"),
                   News2Context("s00001", T0 + 150 * 60 * NS, consciousness="A")]
    for m in range(0, 240, 15):
        t = T0 + m * 60 * NS + 30 * NS
        extra.append(Reading("s00001", "cuff-1", Signal.BP_SYSTOLIC, (95.0, 104.0, 118.0, 126.0)[m // 15 % 4],
                             "mm[Hg]", t, t))
    for m in range(0, 240, 60):
        t = T0 + m * 60 * NS + 45 * NS
        extra.append(Reading("s00001", "chart", Signal.BODY_TEMP, (36.8, 38.4, 39.2, 37.9)[m // 60],
                             "Cel", t, t))
    return tuple(sorted(s00001() + tuple(extra), key=lambda x: x.event_ns))


def news2_readings() -> tuple:
    """``news2_stream`` as the flow receives it: the charted air/ACVPU/scale as readings of the
    observation signals (consciousness coded 0 = A ... 4 = U), and a diastolic with every cuff
    systolic so the blood pressure class has measurements."""
    code = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}
    out: list = []
    for x in news2_stream():
        if isinstance(x, News2Context):
            for sig, v in ((Signal.OXYGEN, None if x.oxygen is None else float(x.oxygen)),
                           (Signal.CONSCIOUSNESS, None if x.consciousness is None
                            else float(code[x.consciousness])),
                           (Signal.SPO2_SCALE, None if x.spo2_scale is None else float(x.spo2_scale))):
                if v is not None:
                    out.append(Reading("s00001", "chart", sig, v, "1", x.event_ns, x.event_ns))
            continue
        out.append(x)
        if x.signal is Signal.BP_SYSTOLIC:
            out.append(Reading("s00001", "cuff-1", Signal.BP_DIASTOLIC, x.value * 0.6, "mm[Hg]",
                               x.event_ns, x.event_ns))
    return tuple(out)


@lru_cache(maxsize=None)
def flow_alerts() -> tuple:
    """The alerts the packaged flow (without grouping) raises on ``news2_readings``, and
    the injected tachycardia's: the input of the concern grouping."""
    flow = dataclasses.replace(FLOW, concerns=None, news2_rule=News2Rule(alert_from="low-medium"))
    return tuple(sorted((a for a in _alerts_of(flow, news2_readings())),
                        key=lambda a: (a.event_ns, a.rule, a.state)))


def _alerts_of(flow, items) -> list:
    from vitalstream.model import Alert
    from vitalstream.operators.contract import drive
    return [x for x in drive(flow.build(key="s00001"), items) if type(x) is Alert]


def many_alerts(n: int) -> list:
    """n alert events of three rules opening and resolving in turn (state-size checks)."""
    from vitalstream.model import Alert
    out = []
    for i in range(n):
        rule, sig = (("tachycardia", "heart_rate"), ("hr_above_usual", "heart_rate"),
                     ("desaturation", "spo2"))[i % 3]
        state = "firing" if (i // 3) % 2 == 0 else "resolved"
        aid = f"{rule}-{i // 6}"
        out.append(Alert(aid, "s00001", rule, sig, "warning", state, 1.0, 1.0,
                         T0 + i * NS, T0 + (i - i % 6) * NS))
    return out


def news2_results() -> tuple:
    from vitalstream.operators.news2 import News2Result
    return tuple(x for x in drive_news2() if isinstance(x, News2Result))


def drive_news2() -> list:
    from vitalstream.operators.contract import drive
    return drive(News2().build(key="s00001"), news2_stream())


def _no_data(canon: str) -> bool:
    return "rule='no_data'" in canon  # stale-data alerts are stamped on processing time


CASES = [
    Case("dedup", Dedup(120 * NS), s00001(), latency_ns=NS, reorder_ns=30 * NS,
         absorbs_duplicates=True, long_items=hr_stream),
    Case("window", WINDOW, s00001(), key="s00001", latency_ns=NS, reorder_ns=9 * NS,
         absorbs_duplicates=True, long_items=hr_stream),
    Case("window+time-in-range",
         TumblingWindow(300 * NS, 10 * NS, aggregators={**VITAL_STATS, "tir": TimeInRange(60, 100)}),
         s00001(), key="s00001", latency_ns=NS, reorder_ns=9 * NS, absorbs_duplicates=True,
         long_items=hr_stream),
    Case("rule:tachycardia", next(r for r in RULES.rules if r.name == "tachycardia"), s00001(),
         key="s00001", long_items=hr_stream),
    Case("anomaly", AnomalyStage.from_config(DOC["detectors"]), s00001(), key="s00001",
         long_items=hr_stream),
    Case("patient", SMALL_FLOW, s00001(), key="s00001", latency_ns=NS // 2, reorder_ns=NS,
         absorbs_duplicates=True, evict_after_ns=2 * 3600 * NS, long_items=hr_stream,
         settle_ns=3 * 60 * NS, on_arrival=_no_data),
    # NEWS2 follows arrival order (after the reorder buffer): no reorder_ns
    Case("news2", News2(), news2_stream(), key="s00001", latency_ns=NS, absorbs_duplicates=True,
         long_items=hr_stream),
    Case("patient+news2+bp", SMALL_FLOW, news2_readings(), key="s00001", latency_ns=NS // 2,
         reorder_ns=NS, absorbs_duplicates=True, evict_after_ns=2 * 3600 * NS,
         long_items=hr_stream, settle_ns=3 * 60 * NS, on_arrival=_no_data),
    # the NEWS2 alarm over NEWS2's results; the concern grouping over alert events
    Case("rule:news2-alarm", News2Rule(alert_from="low-medium"), news2_results(), key="s00001",
         long_items=lambda n: [dataclasses.replace(r, event_ns=T0 + i * 60 * NS)
                               for i, r in enumerate(news2_results() * (n // len(news2_results()) + 1))][:n]),
    Case("rule:concerns", Concerns(), flow_alerts(), key="s00001", long_items=many_alerts),
    Case("patient-host", PatientHost(FLOW), _two_patients(), key="3", latency_ns=NS // 2,
         reorder_ns=NS, absorbs_duplicates=True, long_items=hr_stream, settle_ns=3 * 60 * NS,
         on_arrival=_no_data),
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_operator_contract_over_shared_vitals_s00001(case: Case, check) -> None:
    check(case)


def test_contract_stream_is_not_trivial() -> None:
    """The check is only as good as its stream: it must make every operator emit."""
    for case in CASES:
        outputs = run(case.config, case.events(), key=case.key, settle_ns=case.settle_ns)
        assert len(outputs) >= (2 if case.name.startswith("rule") else 100), case.name
    alerts = [o for o in run(FLOW, CASES[5].events(), key="s00001") if o.startswith("Alert(")]
    assert {a.rule for a in flow_alerts()} >= {"tachycardia", "news2", "fever_icu"}
    # the injected tachycardia (128-134 /min from minute 100, resting in the 60s-80s before):
    # the personal rule pages first (25+ /min above usual for 4 of 5 min); the threshold rule
    # (> 120 for 80 % of 5 min) joins that concern at a higher priority: escalated, then resolved
    states = lambda rule: [a.split("state='")[1].split("'")[0] for a in alerts  # noqa: E731
                           if f"rule='{rule}'" in a]
    assert states("hr_above_usual")[0] == "firing"
    assert states("tachycardia") == ["escalated", "resolved"]


# -- the check fails on broken operators --


@dataclass
class _CounterState:
    seen: list = field(default_factory=list)
    t: float = 0.0


@dataclass(frozen=True)
class _Broken:
    """Keeps every item (unbounded), aliases its snapshot, may read the clock."""

    read_clock: bool = False
    alias: bool = False

    def build(self, resume_state=None, *, key=""):
        return _BrokenLogic(self, resume_state or _CounterState())


class _BrokenLogic(Stateless):
    def __init__(self, cfg: _Broken, st: _CounterState) -> None:
        self.cfg, self.st = cfg, st

    def on_item(self, r):
        if self.cfg.read_clock:
            self.st.t = time.time()
        self.st.seen.append(r.value)
        return [len(self.st.seen)], RETAIN

    def snapshot(self):
        return self.st if self.cfg.alias else dataclasses.replace(self.st, seen=list(self.st.seen))


@dataclass(frozen=True)
class _Forgetful:
    """Counts items but drops the count from its snapshot: resume gives other answers."""

    def build(self, resume_state=None, *, key=""):
        return _ForgetfulLogic()


class _ForgetfulLogic(Stateless):
    n = 0

    def on_item(self, r):
        self.n += 1
        return [self.n], RETAIN

    def snapshot(self):
        return None


@dataclass(frozen=True)
class _OrderSensitive:
    def build(self, resume_state=None, *, key=""):
        return _OrderLogic()


class _OrderLogic(Stateless):
    prev = None

    def on_item(self, r):
        out = [] if self.prev is None else [(self.prev.signal.value, r.signal.value)]
        self.prev = r
        return out, RETAIN

    def snapshot(self):
        return None


def test_contract_check_catches_broken_operators() -> None:
    items = s00001(60)
    with pytest.raises(AssertionError, match="wall clock"):
        check_no_wall_clock(Case("reads-clock", _Broken(read_clock=True), items))
    with pytest.raises(AssertionError, match="state grows"):
        check_bounded_state(Case("hoards", _Broken(), items, long_items=hr_stream))
    with pytest.raises(AssertionError, match="aliased"):
        check_snapshot_independent(Case("aliases", _Broken(alias=True), items))
    with pytest.raises(AssertionError, match="resumed at item"):
        check_snapshot_resume(Case("forgets", _Forgetful(), items))
    with pytest.raises(AssertionError, match="delayed"):
        check_out_of_order(Case("order", _OrderSensitive(), items, reorder_ns=NS))
