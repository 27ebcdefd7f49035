"""The alarm-burden meter (operators/burden.py) on a worked timeline driven by a fake clock,
its interval boundaries, acknowledgements across intervals, unknown reasons, resume from a
snapshot and the operator contract; and its line protocol (sinks/lineproto.py
``burden_line``) against influxdb-client and read back from a real VictoriaMetrics.

Hourly intervals (``BurdenMeter()``), aligned on UTC hours; T0 is 12:00 UTC."""

from __future__ import annotations

import calendar
import math
import pickle

import pytest

from vitalstream.model import Alert
from vitalstream.operators.burden import BurdenMeter, BurdenPoint, Monitored
from vitalstream.operators.check import CHECKS, Case, Clocked, arrivals, run
from vitalstream.operators.lifecycle import Audit, Command, Lifecycle, Notice
from vitalstream.sinks.lineproto import burden_line
from vitalstream.testing import FakeClock, wait_for

NS = 1_000_000_000
H = 3600
T0 = calendar.timegm((2026, 10, 10, 12, 0, 0)) * NS


def notice(aid, rule, prio, reason, t_s, patient="p1"):
    return Notice(aid, patient, rule, prio, "active", reason, T0 + round(t_s * NS))


def ack(aid, t_s, patient="p1"):
    return Audit(aid, patient, T0 + round(t_s * NS), "nurse-7", "acknowledged", "at bedside")


def brady(aid, reason, t_s):
    return notice(aid, "bradycardia", "high", reason, t_s)


# Hour 0 (12:00-13:00), 2 patients monitored the whole hour:
#   bradycardia/high: a1 raised 0, acked 60 (60 s); a2 raised 600, acked 780 (180 s);
#     a3 raised 1200, escalated 1500, not acked this hour; a1 resolved 2400.
#     raised 3 -> 3 / (2 x 1/24) = 36 per patient-day; acked 2, share 2/3;
#     p50 of (60, 180) = 120 s, max 180 s; escalated 1, resolved 1.
#   tachycardia/medium: m1 raised 300, re-notified 1200: 1 / (2/24) = 12; share 0/1 = 0.
#   desaturation/medium: d1 starts flapping at 2000 (a flood collapsed into one notice):
#     flapping 1, raised 0 -> 0 per patient-day, no share.
#   totals: raised 4 -> 48; acked 2, share 0.5, p50 120, max 180; renotified, escalated,
#     flapping, resolved 1 each.
# Hour 1 (13:00-14:00): 2 patients until 13:30, then 4: mean (2 x 1800 + 4 x 1800) / 3600 = 3.
#   a3 (raised in hour 0 at 1200) acked at 3700: 2500 s, counted in hour 1.
#   bradycardia/high: b4 raised 4000 -> 1 / (3/24) = 8; acked 1 (a3), share 1/1;
#     a notice of a reason this meter does not know, "mystery", at 4400: counted by name.
#   no_data/medium: n1 suppressed at 4200 (its gateway is down): suppressed 1.
#   tachycardia/low: a back-fill summary at 4300: backfill 1, never an alarm.
# Hour 2 (14:00-15:00): the meter runs in it (opened by the timer at 14:00), nothing
#   happens: at EOF one totals row of zeros, 0 per patient-day (4 patients known).
TIMELINE = [
    Monitored(T0, 2),
    brady("a1", "raised", 0), ack("a1", 60),
    notice("m1", "tachycardia", "medium", "raised", 300),
    brady("a2", "raised", 600), ack("a2", 780),
    brady("a3", "raised", 1200), notice("m1", "tachycardia", "medium", "renotify", 1200),
    brady("a3", "escalated", 1500),
    notice("d1", "desaturation", "medium", "flapping", 2000),
    brady("a1", "resolved", 2400),
    ack("a3", 3700),
    brady("b4", "raised", 4000),
    notice("n1", "no_data", "medium", "suppressed", 4200),
    notice("bf1", "tachycardia", "low", "backfill", 4300),
    brady("x1", "mystery", 4400),
    Monitored(T0 + 5400 * NS, 4),
]


def P(hour, rule, prio, **kw):
    return BurdenPoint(T0 + hour * H * NS, T0 + (hour + 1) * H * NS, rule, prio, **kw)


EXPECTED = [
    P(0, "bradycardia", "high", raised=3, per_patient_day=36.0, acknowledged=2,
      ack_share=2 / 3, ack_p50_s=120.0, ack_max_s=180.0, escalated=1, resolved=1),
    P(0, "desaturation", "medium", per_patient_day=0.0, flapping=1),
    P(0, "tachycardia", "medium", raised=1, per_patient_day=12.0, ack_share=0.0, renotified=1),
    P(0, "*", "*", raised=4, per_patient_day=48.0, acknowledged=2, ack_share=0.5,
      ack_p50_s=120.0, ack_max_s=180.0, renotified=1, escalated=1, flapping=1, resolved=1),
    P(1, "bradycardia", "high", raised=1, per_patient_day=8.0, acknowledged=1, ack_share=1.0,
      ack_p50_s=2500.0, ack_max_s=2500.0, other=(("mystery", 1),)),
    P(1, "no_data", "medium", per_patient_day=0.0, suppressed=1),
    P(1, "tachycardia", "low", per_patient_day=0.0, other=(("backfill", 1),)),
    P(1, "*", "*", raised=1, per_patient_day=8.0, acknowledged=1, ack_share=1.0,
      ack_p50_s=2500.0, ack_max_s=2500.0, suppressed=1,
      other=(("backfill", 1), ("mystery", 1))),
]
EOF_ROW = P(2, "*", "*", per_patient_day=0.0)


class _Run:
    """Feeds items at their times and fires the meter's timer as a runtime would."""

    def __init__(self, cfg: BurdenMeter = BurdenMeter()) -> None:
        self.clock = FakeClock(T0)
        self.meter = Clocked(cfg.build(), self.clock)
        self.out: list = []

    def until(self, t_ns: int) -> None:
        while (due := self.meter.notify_at()) is not None and due <= t_ns:
            self.clock.set(due)
            self.out += self.meter.on_notify()
        self.clock.set(t_ns)

    def feed(self, items) -> None:
        for x in items:
            self.until(x.event_ns)
            self.out += self.meter.on_item(x)


def test_worked_timeline_hour_by_hour():
    r = _Run()
    r.feed(TIMELINE)
    assert r.out == EXPECTED[:4]  # hour 0 closed by the timer at 13:00; hour 1 still open
    assert r.meter.notify_at() == T0 + 2 * H * NS
    r.until(T0 + 2 * H * NS + 1)  # the timer at 14:00 closes hour 1 and opens hour 2
    assert r.out == EXPECTED
    assert r.meter.on_eof() == [EOF_ROW]
    assert r.meter.notify_at() is None


def test_an_item_exactly_at_the_end_belongs_to_the_next_interval():
    # one-minute intervals, no timer fired: items alone close intervals
    m = BurdenMeter(interval_s=60).build()
    assert m.on_item(brady("a", "raised", 60 - 1e-9))[0] == []  # 12:00:59.999999999
    out = m.on_item(brady("b", "raised", 60))[0]  # 12:01:00 exactly: closes [12:00, 12:01)
    assert [(p.start_ns, p.end_ns, p.rule, p.raised) for p in out] == [
        (T0, T0 + 60 * NS, "bradycardia", 1), (T0, T0 + 60 * NS, "*", 1)]
    assert m.notify_at() == T0 + 120 * NS
    assert m.on_notify(T0 + 120 * NS - 1)[0] == []  # not yet
    out = m.on_notify(T0 + 120 * NS)[0]
    assert [(p.start_ns, p.rule, p.raised, p.per_patient_day) for p in out] == [
        (T0 + 60 * NS, "bradycardia", 1, None), (T0 + 60 * NS, "*", 1, None)]  # no Monitored


def test_skipped_intervals_give_nothing_and_late_items_count_in_the_open_interval():
    m = BurdenMeter().build()
    m.on_item(brady("a", "raised", 10))
    out = m.on_item(brady("b", "raised", 5 * H + 10))[0]  # the host was away 12:00-17:00
    assert [(p.start_ns, p.rule) for p in out] == [(T0, "bradycardia"), (T0, "*")]
    m.on_item(brady("c", "raised", 100))  # late (12:01:40): hour 17 is open, it counts there
    out = m.on_eof()[0]
    assert [(p.start_ns, p.rule, p.raised) for p in out] == [
        (T0 + 5 * H * NS, "bradycardia", 2), (T0 + 5 * H * NS, "*", 2)]


def test_acks_after_the_resolved_notice_of_the_same_step_unknown_alarms_and_reacks():
    m = BurdenMeter().build()
    m.on_batch([Monitored(T0, 1), brady("a1", "raised", 0)])
    # one host step at 120 s: the notices first, then the audits (a1 resolved on its ack);
    # an ack of an alarm the meter never saw; a2 acked twice (its priority rose between)
    m.on_batch([brady("a1", "resolved", 120), brady("a2", "raised", 100), ack("a1", 120),
                ack("zz", 130), ack("a2", 140), ack("a2", 150)])
    out = {(p.rule, p.priority): p for p in m.on_eof()[0]}
    b = out[("bradycardia", "high")]
    # a1: 120 s, a2: 40 s -> p50 80, max 120; 2 alarms raised, 2 acknowledged (a2 once)
    assert (b.raised, b.acknowledged, b.ack_share, b.ack_p50_s, b.ack_max_s) == (
        2, 2, 1.0, 80.0, 120.0)
    u = out[("unknown", "unknown")]
    assert (u.raised, u.acknowledged, u.ack_share, u.ack_p50_s) == (0, 1, None, None)
    assert out[("*", "*")].acknowledged == 3 and out[("*", "*")].raised == 2
    # 2 raised by 1 patient in 1/24 day: 48 per patient-day
    assert out[("*", "*")].per_patient_day == 48.0


def test_the_alarm_map_forgets_resolved_and_old_alarms():
    m = BurdenMeter(max_alarm_age_s=2 * H).build()
    m.on_item(brady("a2", "raised", 0))
    m.on_item(brady("a1", "raised", 10))
    m.on_item(brady("a1", "resolved", 20))
    m.on_notify(T0 + H * NS)  # closes hour 0: a1 resolved in it, kept one interval more
    assert set(m.snapshot().alarms) == {("p1", "a1"), ("p1", "a2")}
    m.on_notify(T0 + 2 * H * NS)  # closes hour 1: a1 forgotten; a2 first seen 2 h ago
    assert set(m.snapshot().alarms) == set()
    m.on_item(ack("a2", 2 * H + 5))  # its ack still counts, under "unknown"
    assert [(p.rule, p.acknowledged) for p in m.on_eof()[0]] == [("unknown", 1), ("*", 1)]


def test_resuming_from_a_snapshot_anywhere_gives_the_outputs_of_one_run():
    events = arrivals(TIMELINE)
    whole = run(BurdenMeter(), events, key="", settle_ns=H * NS)
    assert whole == [repr(p) for p in EXPECTED + [EOF_ROW]]
    for split in range(len(events)):
        assert run(BurdenMeter(), events, key="", split_at=split, settle_ns=H * NS) == whole
    # and by hand, with on_batch: half the steps, a pickled snapshot, a new logic
    a = BurdenMeter().build()
    first = a.on_batch(TIMELINE[:9])[0]
    b = BurdenMeter().build(pickle.loads(pickle.dumps(a.snapshot())))
    rest = b.on_batch(TIMELINE[9:])[0] + b.on_notify(T0 + 2 * H * NS)[0]
    assert first + rest == EXPECTED


def test_counts_what_the_lifecycle_emits():
    lc = Lifecycle().build(key="p1")
    a = Alert("h1", "p1", "bradycardia", "heart_rate", "critical", "firing", 38.0, 40.0, T0, T0)
    out = lc.on_item(a)[0]                                   # raised at 0
    out += lc.on_notify(T0 + 300 * NS)[0]                    # re-notified and escalated at 300
    out += lc.on_item(Command("ack", "h1", "nurse-7", "at bedside", T0 + 360 * NS))[0]
    m = BurdenMeter().build()
    m.on_batch([Monitored(T0, 1)] + out)
    p = m.on_eof()[0][0]
    assert (p.rule, p.priority, p.raised, p.renotified, p.escalated, p.acknowledged,
            p.ack_p50_s) == ("bradycardia", "high", 1, 1, 1, 1, 360.0)


def test_bad_configuration_is_refused():
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError):
            BurdenMeter(interval_s=bad)


def _long(n: int) -> list:
    # alarms of several patients raised, acknowledged and resolved every 10 min, a patient
    # count every hour: over days, so the map must forget
    out, t, k = [], 0, 0
    while len(out) < n:
        if t % H == 0:
            out.append(Monitored(T0 + t * NS, 8))
        pid, aid = f"p{k % 8}", f"l{k}"
        out += [notice(aid, "tachycardia", "medium", "raised", t, pid), ack(aid, t + 60, pid),
                notice(aid, "tachycardia", "medium", "resolved", t + 120, pid)]
        t, k = t + 600, k + 1
    return out[:n]


CASE = Case("burden", BurdenMeter(), TIMELINE, key="", long_items=_long, settle_ns=H * NS)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_burden_passes_the_operator_contract(check):
    check(CASE)


# -- line protocol --

def test_burden_line_is_what_influxdb_client_writes():
    from influxdb_client import Point

    for p in EXPECTED + [EOF_ROW]:
        pt = Point("alarm_burden").tag("rule", p.rule).tag("priority", p.priority)
        for k in ("raised", "acknowledged", "renotified", "escalated", "flapping",
                  "suppressed", "resolved"):
            pt = pt.field(k, getattr(p, k))
        for k in ("per_patient_day", "ack_share", "ack_p50_s", "ack_max_s"):
            if getattr(p, k) is not None:
                pt = pt.field(k, getattr(p, k))
        for reason, n in p.other:
            pt = pt.field(reason, n)
        assert burden_line(p) == pt.time(p.start_ns).to_line_protocol()
    line = burden_line(EXPECTED[1], measurement="burden v2")
    assert line.startswith(r"burden\ v2,priority=medium,rule=desaturation ")
    assert "ack_share" not in line and "ack_p50_s" not in line  # None: left out
    assert "flapping=1i" in line and "raised=0i" in line  # counts as integers, 0 included
    assert "per_patient_day=0," in line  # a float (a whole one written without ".0")
    clash = BurdenPoint(0, 1, "r", "low", other=(("raised", 2), ("ack_share", 1)))
    assert "reason_raised=2i" in burden_line(clash) and "reason_ack_share=1i" in burden_line(clash)


def test_burden_lines_read_back_from_victoriametrics(victoria):
    from influxdb_client import InfluxDBClient, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    points = EXPECTED + [EOF_ROW]
    with InfluxDBClient(url=victoria.url, token="unused-by-victoria", org="vitalstream") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="vitals", record="\n".join(burden_line(p) for p in points),
            write_precision=WritePrecision.NS)
    # metric = measurement_field, tags as labels, time in ms (hour starts: exact)
    want: dict[tuple[str, str, str], dict[int, float]] = {}
    for p in points:
        fields = {k: getattr(p, k) for k in ("raised", "acknowledged", "renotified",
                                             "escalated", "flapping", "suppressed", "resolved",
                                             "per_patient_day", "ack_share", "ack_p50_s",
                                             "ack_max_s") if getattr(p, k) is not None}
        fields.update(p.other)
        for k, v in fields.items():
            want.setdefault((f"alarm_burden_{k}", p.rule, p.priority), {})[p.start_ns // 10**6] = v
    n = sum(len(v) for v in want.values())
    # the store is shared by the session (pipelines of other tests write their burden too):
    # only this timeline's hours, in 2026-10, are this test's
    mine = {ts for v in want.values() for ts in v}
    def read() -> dict:
        got = {}
        for r in victoria.export('{__name__=~"alarm_burden_.*"}'):
            points = {t: v for t, v in zip(r["timestamps"], r["values"]) if t in mine}
            if points:
                got[(r["metric"]["__name__"], r["metric"]["rule"], r["metric"]["priority"])] = points
        return got if sum(len(v) for v in got.values()) >= n else None
    got = wait_for(read, f"{n} burden samples", 10.0, 0.05)
    assert set(got) == set(want)
    for series, values in want.items():
        assert got[series].keys() == values.keys(), series
        for ts, v in values.items():
            # integers exactly; VictoriaMetrics stores floats as decimals (2/3 to ~12 digits)
            assert got[series][ts] == (v if isinstance(v, int) else pytest.approx(v, rel=1e-9))
    assert got[("alarm_burden_per_patient_day", "bradycardia", "high")] == {
        T0 // 10**6: 36.0, (T0 + H * NS) // 10**6: 8.0}
