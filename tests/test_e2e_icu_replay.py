"""A real ICU record (MIMIC-II numerics s00001, shared/reference/vitals) replayed over MQTT.

Each CSV row becomes one native-JSON message per bedside device; the pipeline
runs with 5-minute windows; the aggregates read back from VictoriaMetrics must
equal a batch computation over the CSV. The batch side applies the validity
rule the pipeline declares (the catalogue's plausible ranges, typed here from
its documentation) independently: an empty cell is no sample, a 0 in these
numerics marks "no valid reading" and falls outside every plausible range, so
it must be dead-lettered, not aggregated.
"""

from __future__ import annotations

import collections
import csv
import json
from datetime import datetime, timezone

import numpy as np
import pytest
import redis

from vitalstream.simulators.scenario import OutMessage
from vitalstream.simulators.publisher import publish
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics

RECORD = "s00001-2896-10-10-00-31n.csv"
# MIMIC shifts dates to year 2896, beyond int64 nanoseconds; keep the real time of day.
START_NS = int(datetime(2026, 10, 10, 0, 31, 25, 894000, tzinfo=timezone.utc).timestamp() * 1e6) * 1000
WINDOW_NS = 300 * 10**9
# column -> (device suffix, signal, unit, plausible range from core/signals.py docs)
COLUMNS = {
    "hr_bpm": ("monitor", "heart_rate", "/min", (20, 300)),
    "resp_rpm": ("monitor", "resp_rate", "/min", (2, 80)),
    "pulse_bpm": ("oximeter", "heart_rate", "/min", (20, 300)),
    "spo2_pct": ("oximeter", "spo2", "%", (40, 100)),
    "abp_sys_mmhg": ("arterial", "bp_systolic", "mm[Hg]", (40, 300)),
    "abp_dia_mmhg": ("arterial", "bp_diastolic", "mm[Hg]", (15, 200)),
    "abp_mean_mmhg": ("arterial", "bp_mean", "mm[Hg]", (20, 250)),
    "nbp_sys_mmhg": ("cuff", "bp_systolic", "mm[Hg]", (40, 300)),
    "nbp_dia_mmhg": ("cuff", "bp_diastolic", "mm[Hg]", (15, 200)),
    "nbp_mean_mmhg": ("cuff", "bp_mean", "mm[Hg]", (20, 250)),
}


def _rows(reference_dir):
    with open(reference_dir / "vitals" / RECORD, newline="") as f:
        return list(csv.DictReader(f))


def _messages(rows):
    msgs = []
    for i, row in enumerate(rows):
        t_ns = START_NS + int(row["time_s"]) * 10**9
        per_device = collections.defaultdict(list)
        for col, (dev, signal, unit, _) in COLUMNS.items():
            if row[col] != "":
                per_device[dev].append({"signal": signal, "value": float(row[col]), "unit": unit,
                                        "t_ns": t_ns})
        for dev, readings in per_device.items():
            device = f"s00001-{dev}"
            payload = json.dumps({"device": device, "patient": "s00001", "readings": readings})
            msgs.append(OutMessage(len(msgs) * 0.001, f"vitalstream/{device}/json", payload.encode()))
    return msgs


def test_mimic_s00001_5min_aggregates_match_batch_over_csv(mosquitto, redis_server, reference_dir,
                                                          tmp_path):
    rows = _rows(reference_dir)
    assert len(rows) == 1936  # as documented in shared/reference/README.md
    expected = collections.defaultdict(list)
    implausible = 0
    for row in rows:
        t_ns = START_NS + int(row["time_s"]) * 10**9
        for col, (dev, signal, _, (lo, hi)) in COLUMNS.items():
            if row[col] == "":
                continue
            v = float(row[col])
            if not lo <= v <= hi:
                implausible += 1
                continue
            start = t_ns - t_ns % WINDOW_NS
            expected[(f"s00001-{dev}", signal, start // 10**6)].append((t_ns, v))
    assert implausible > 300  # the record's dropouts (zeros) must be exercised

    with VictoriaMetrics(tmp_path / "vm") as vm:
        settings = settings_for(mosquitto.url, redis_server.url, vm.url, tmp_path / "spool",
                                max_clock_skew_s=None, window_size_s=300.0)
        with PipelineRun(settings, idle_stop_s=3.0) as run:
            publish(_messages(rows), mosquitto.url, progress=False)
            totals = run.join()
        series = vm.export('{__name__=~"vitals_5m_.*", patient="s00001"}')

    fields = collections.defaultdict(dict)
    for s in series:
        m = s["metric"]
        field = m["__name__"].removeprefix("vitals_5m_")
        for t, v in zip(s["timestamps"], s["values"]):
            fields[field][(m["device"], m["signal"], t)] = v
    assert set(fields["count"]) == set(expected)
    for key, pts in expected.items():
        pts.sort()
        v = np.array([x for _, x in pts])
        assert fields["count"][key] == len(v), key
        assert fields["min"][key] == pytest.approx(v.min(), rel=1e-11)
        assert fields["max"][key] == pytest.approx(v.max(), rel=1e-11)
        assert fields["mean"][key] == pytest.approx(v.mean(), rel=1e-10)
        assert fields["last"][key] == pytest.approx(pts[-1][1], rel=1e-11)

    r = redis.Redis.from_url(redis_server.url)
    reasons = collections.Counter(e[1][b"reason"] for e in r.xrange(settings.redis.deadletter_stream))
    assert reasons == {b"implausible": implausible}
    assert totals["readings"] == sum(len(p) for p in expected.values())
