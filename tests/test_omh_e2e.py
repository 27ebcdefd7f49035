"""Open mHealth end to end: shared shouldPass samples over MQTT (topic codec ``omh``)
and through the file import land in the store (real mosquitto, Redis and
VictoriaMetrics); stored readings exported back as data points keep value, unit
and time of the sample.

Expected values come from the samples (value, unit, time frame) converted with
the formulas written out in ``by_hand``, never from the codec.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from vitalstream.connectors.omh_file import export_points, import_file
from vitalstream.connectors.omh_schemas import ENV_VAR, parse_date_time
from vitalstream.model import DeadLetter, Quality, RawReading, Reading
from vitalstream.operators.clock import FakeClock
from vitalstream.operators.normalise import Normaliser
from vitalstream.signals import Signal, spec
from vitalstream.simulators.publisher import publish
from vitalstream.simulators.scenario import OutMessage
from vitalstream.sinks.influx import InfluxWriter
from vitalstream.sinks.redis_streams import RedisOutreach
from vitalstream.stream.store import OutcomeWriter
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import VictoriaMetrics

OMH = Path(os.environ.get(ENV_VAR) or
           Path(__file__).resolve().parents[2] / "shared/reference/openmhealth/schema/omh").parent.parent
NS = 1_000_000_000
MS = 1_000_000

# type -> [(body property, signal)]; OMH unit written back for each canonical unit
TYPES = {
    "heart-rate": [("heart_rate", "heart_rate")],
    "blood-pressure": [("systolic_blood_pressure", "bp_systolic"),
                       ("diastolic_blood_pressure", "bp_diastolic")],
    "oxygen-saturation": [("oxygen_saturation", "spo2")],
    "body-temperature": [("body_temperature", "body_temp")],
    "respiratory-rate": [("respiratory_rate", "resp_rate")],
    "blood-glucose": [("blood_glucose", "glucose")],
    "step-count": [("step_count", "steps")],
}
OMH_UNIT = {"heart_rate": "beats/min", "bp_systolic": "mmHg", "bp_diastolic": "mmHg", "spo2": "%",
            "body_temp": "C", "resp_rate": "breaths/min", "glucose": "mg/dL", "steps": "steps"}


def by_hand(value: float, unit: str) -> float:
    """Canonical value (SI definitions; glucose 180.156 g/mol -> 18.0156 mg/dL per mmol/L)."""
    return {"F": (value - 32) * 5 / 9, "K": value - 273.15, "mmol/L": value * 18.0156}.get(unit, value)


def event_ns(tf: dict) -> int:
    if "date_time" in tf:
        return int(datetime.fromisoformat(tf["date_time"]).timestamp()) * NS
    ti = tf["time_interval"]
    return int(datetime.fromisoformat(ti["end_date_time"]).timestamp()) * NS


@dataclasses.dataclass(frozen=True)
class Sample:
    n: int
    name: str
    version: str
    body: dict
    path: str

    def point(self, **header) -> dict:
        return {"header": {"id": f"s-{self.n}", "creation_date_time": "2024-01-01T00:00:00Z",
                           "schema_id": {"namespace": "omh", "name": self.name,
                                         "version": self.version}, **header},
                "body": self.body}

    def expected(self) -> list[tuple[str, float, int]]:
        """(signal, canonical value, event ns) per reading the sample carries."""
        t = event_ns(self.body["effective_time_frame"])
        return [(sig, by_hand(float(self.body[prop]["value"]), self.body[prop]["unit"]), t)
                for prop, sig in TYPES[self.name]]


def _samples() -> list[Sample]:
    out = []
    for path in sorted((OMH / "test-data/omh").glob("*/*/shouldPass/*.json")):
        name, version = path.parts[-4], path.parts[-3]
        if name not in TYPES:
            continue
        body = json.loads(path.read_text())
        ti = body["effective_time_frame"].get("time_interval", {})
        if "part_of_day" in ti:
            continue  # a date + part of day is no instant: rejected by design, not a reading
        if "start_date_time" in ti and "end_date_time" in ti and \
                datetime.fromisoformat(ti["end_date_time"]) < datetime.fromisoformat(ti["start_date_time"]):
            continue  # body-temperature 4.0 "with-statistic" ends 3 years before it starts: bad_interval
        s = Sample(len(out), name, version, body, f"{name}/{version}/{path.stem}")
        # Physically impossible values are dead letters by design (catalogue bounds).
        if all(spec(sig).plausible(v) for sig, v, _ in s.expected()):
            out.append(s)
    return out


SAMPLES = _samples()


def _stored(series):
    out = collections.defaultdict(list)
    for s in series:
        m = s["metric"]
        out[(m["patient"], m["device"], m["signal"])] += list(zip(s["timestamps"], s["values"]))
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def e2e(mosquitto, redis_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("omh-e2e")
    points = tmp / "import.json"
    points.write_text(json.dumps([s.point(user_id=f"imp-{s.n}",
                                          acquisition_provenance={"source_name": f"file-{s.n}"})
                                  for s in SAMPLES]))
    with VictoriaMetrics(tmp / "vm") as vm:
        settings = settings_for(mosquitto.url, redis_server.url, vm.url, tmp / "spool",
                                max_clock_skew_s=None)
        msgs = [OutMessage(0.0, f"vitalstream/omh-{s.n}/omh",
                           json.dumps(s.point(user_id=f"mqtt-{s.n}")).encode()) for s in SAMPLES]
        with PipelineRun(settings, idle_stop_s=2.0) as run:
            publish(msgs, mosquitto.url, rate=0, progress=False)
            totals = run.join()
        imported = list(import_file(points, clock=FakeClock(5)))
        # the import yields raw readings; the normaliser makes Readings (no skew check: a back-fill)
        norm = Normaliser(max_clock_skew_ns=None)
        outcomes = [norm.normalise(r, 5) if isinstance(r, RawReading) else r for r in imported]
        writer = OutcomeWriter(InfluxWriter(settings.influx), RedisOutreach(settings.redis))
        writer.write([r for r in outcomes if isinstance(r, (Reading, DeadLetter))])
        series = vm.export('{__name__="vitals_value"}')
    return totals, imported, _stored(series)


def _want(prefix: str) -> dict:
    want = collections.defaultdict(list)
    for s in SAMPLES:
        device = f"omh-{s.n}" if prefix == "mqtt" else f"file-{s.n}"
        for sig, v, t in s.expected():
            want[(f"{prefix}-{s.n}", device, sig)].append((t // MS, v))
    return want


def test_enough_shared_samples_of_every_type_are_used():
    assert {s.name for s in SAMPLES} == set(TYPES)
    assert len(SAMPLES) >= 20


@pytest.mark.parametrize("prefix", ["mqtt", "imp"])
def test_shared_samples_land_as_readings_over_mqtt_and_via_import(e2e, prefix):
    totals, _, stored = e2e
    if prefix == "mqtt":
        assert totals["dead_letters"] == 0 and totals["acked"] == len(SAMPLES)
    want = _want(prefix)
    got = {k: v for k, v in stored.items() if k[0].startswith(prefix + "-")}
    assert got.keys() == want.keys()
    for key, pts in want.items():
        assert [t for t, _ in got[key]] == [t for t, _ in pts], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in pts], rel=1e-11), key


def test_imported_readings_are_historical_and_none_is_a_dead_letter(e2e):
    _, imported, _ = e2e
    assert not [d for d in imported if isinstance(d, DeadLetter)]
    assert all(r.quality & Quality.HISTORICAL for r in imported)


def test_stored_readings_export_back_to_the_sample_value_unit_and_time(e2e):
    _, _, stored = e2e
    for s in SAMPLES:
        readings = []
        for sig, _, _ in s.expected():
            [(t_ms, value)] = stored[(f"mqtt-{s.n}", f"omh-{s.n}", sig)]
            sp = spec(Signal(sig))
            readings.append(Reading(f"mqtt-{s.n}", f"omh-{s.n}", Signal(sig), value, sp.unit,
                                    t_ms * MS, 0, "omh"))
        ti = s.body["effective_time_frame"].get("time_interval")
        dur = None
        if s.name == "step-count":
            dur = parse_date_time(ti["end_date_time"]) - parse_date_time(ti["start_date_time"])
        [point] = list(export_points(readings, duration_ns=dur))
        body = point["body"]
        assert event_ns(body["effective_time_frame"]) == event_ns(s.body["effective_time_frame"]), s.path
        for prop, sig in TYPES[s.name]:
            assert body[prop]["unit"] == OMH_UNIT[sig], s.path
            want = by_hand(float(s.body[prop]["value"]), s.body[prop]["unit"])
            assert body[prop]["value"] == pytest.approx(want, rel=1e-11), s.path
