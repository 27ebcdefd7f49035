"""NEWS2 results and blood pressure classes reach the store (a real VictoriaMetrics, read
back) as the ``news2`` and ``bp_class`` measurements, for dashboards: through the packaged
flow and the writer every runtime uses. Expected values are worked out from the RCP 2017
chart and the ACC/AHA 2017 table in the comments."""

from __future__ import annotations

import calendar

from vitalstream.model import Reading
from vitalstream.operators.contract import drive
from vitalstream.signals import Signal
from vitalstream.sinks.influx import InfluxConfig, InfluxWriter
from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach
from vitalstream.stream.assembly import patient_flow, window_size_ns
from vitalstream.stream.settings import Settings
from vitalstream.stream.store import ResultWriter

NS = 1_000_000_000
T0 = calendar.timegm((2026, 10, 10, 12, 0, 0)) * NS


def test_news2_and_bp_class_are_stored_for_dashboards(victoria, redis_server, tmp_path):
    rs = [Reading("p-store", "chart", Signal.CONSCIOUSNESS, 0.0, "1", T0, T0),
          Reading("p-store", "chart", Signal.OXYGEN, 0.0, "1", T0, T0),
          Reading("p-store", "chart", Signal.BODY_TEMP, 37.0, "Cel", T0, T0)]
    # one reading a second (a store keeps one point per series and timestamp: InfluxDB the
    # last, VictoriaMetrics all, in no set order), two cuff occasions 2 h apart
    for i, t in enumerate((T0 + NS, T0 + 2 * 3600 * NS)):
        rs += [Reading("p-store", "m", Signal.RESP_RATE, 22.0, "/min", t, t),
               Reading("p-store", "m", Signal.SPO2, 95.0, "%", t + NS, t + NS),
               Reading("p-store", "m", Signal.HEART_RATE, 112.0, "/min", t + 2 * NS, t + 2 * NS),
               Reading("p-store", "cuff", Signal.BP_SYSTOLIC, (142.0, 138.0)[i], "mm[Hg]",
                       t + 3 * NS, t + 3 * NS),
               Reading("p-store", "cuff", Signal.BP_DIASTOLIC, (85.0, 83.0)[i], "mm[Hg]",
                       t + 3 * NS, t + 3 * NS)]
    out = drive(patient_flow(Settings()).build(key="p-store"), rs)
    writer = ResultWriter(InfluxWriter(InfluxConfig(url=victoria.url, spool_dir=str(tmp_path / "s"))),
                          RedisOutreach(RedisConfig(url=redis_server.url, alerts_stream="cs:alerts")),
                          window_size_ns(Settings()))
    writer.write(out)
    series = {s["metric"]["__name__"]: s for s in
              victoria.export('{__name__=~"news2_.*|bp_class_.*", patient="p-store"}')}
    # the last NEWS2: RR 22 -> 2, SpO2 95 -> 1, air 0, SBP 138 -> 0, HR 112 -> 2, A 0,
    # 37.0 Cel 0: 5, medium (band rank 2), complete
    assert series["news2_score"]["values"][-1] == 5
    assert series["news2_band"]["values"][-1] == 2
    assert series["news2_complete"]["values"][-1] == 1
    assert series["news2_heart_rate"]["values"][-1] == 2
    # BP: (142/85 + 138/83) / 2 = 140/84 on 2 occasions: ACC/AHA stage 2 (rank 3 of
    # normal, elevated, stage-1, stage-2, crisis)
    bp = series["bp_class_rank"]
    assert bp["values"] == [3] and bp["metric"]["category"] == "stage-2"
    assert series["bp_class_sbp_mean"]["values"] == [140]
    assert writer.stats.scores >= 3
