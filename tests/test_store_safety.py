"""One payload must neither write series of its choosing nor stop storage (issue 9, defect 1).

Three layers, each tested on its own:

- ingest refuses any device or patient id that is not a bounded printable token
  (dead letter ``bad_identifier``), so the injection payload of the issue never
  reaches the store;
- line protocol is escaped exactly as influxdb-client escapes it (its
  ``Point.to_line_protocol`` is the oracle, over every code point), so no name
  can split a line, and tag values read back from VictoriaMetrics and from a
  real InfluxDB 1.x as written;
- a store that refuses points for good (4xx) gets them split off and
  dead-lettered one by one while the rest is stored, live or from the spool,
  and only a real outage (5xx, no answer) spools.

The strict store is a small local HTTP server answering ``/api/v2/write`` the way
InfluxDB 2.x does (204, or a status with a JSON ``{"code", "message"}`` body);
the writer under test talks to it through influxdb-client over a real socket.
"""

from __future__ import annotations

import doctest
import json
import math
import threading
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from hypothesis import given, settings, strategies as st
from influxdb_client import Point

from vitalstream.model import Alert, DeadLetter, Message, Reading, WindowAggregate
from vitalstream.signals import Signal
from vitalstream.sinks.influx import InfluxConfig, InfluxWriter
from vitalstream.sinks.lineproto import aggregate_line, reading_line, tag
from vitalstream.stream.ingest import Ack, Ingest
from vitalstream.stream.store import OutcomeWriter, ResultWriter

NS = 1_000_000_000
T0 = 1_764_064_800 * NS  # 2025-11-25T10:00:00Z
INJECTION = "p\nvitals,patient=evil,device=x,signal=heart_rate value=1"


# --- helpers ------------------------------------------------------------------------

class RecordingOutreach:
    """An Outreach that keeps what it is given (Redis is not what these tests are about)."""

    def __init__(self) -> None:
        self.dead: list[DeadLetter] = []
        self.quarantine: list[dict] = []
        self.alerts: list[Alert] = []

    def write_alerts(self, alerts) -> int:
        self.alerts += list(alerts)
        return len(self.alerts)

    def write_dead_letters(self, letters) -> None:
        self.dead += list(letters)

    def write_quarantine(self, items) -> None:
        self.quarantine += list(items)


def reading(patient: str, t_s: int, value: float = 70.0, device: str | None = None) -> Reading:
    t = T0 + t_s * NS
    return Reading(patient, device or f"dev-{patient}", Signal.HEART_RATE, value, "/min", t, t)


def aggregate(patient: str, device: str, count: int, lo: float, hi: float, mean: float,
              last: float) -> WindowAggregate:
    """A one-minute window at T0 (aggregates are a ``values`` mapping since the operator
    contract; the positional form is the one before it, kept so this file runs on both)."""
    try:
        from vitalstream.model import vital_stats
    except ImportError:
        return WindowAggregate(patient, Signal.HEART_RATE, T0, T0 + 60 * NS, count, lo, hi, mean,
                               last, device=device)
    return WindowAggregate(patient, Signal.HEART_RATE, T0, T0 + 60 * NS,
                           vital_stats(count, lo, hi, mean, last), device=device)


def json_message(device: str, patient: str, t_s: int = 0, value: float = 71.0) -> Message:
    payload = {"v": 1, "device": device, "patient": patient,
               "readings": [{"signal": "heart_rate", "value": value, "unit": "/min",
                             "t_ns": T0 + t_s * NS}]}
    return Message(f"vitalstream/{device}/json", json.dumps(payload).encode(), T0 + t_s * NS)


class StrictStore:
    """``/api/v2/write`` on a free port, strict like InfluxDB 2.x.

    - ``mode = "strict"``: 204 and the lines are kept in ``stored``, unless a line
      holds ``refuse`` (e.g. ``patient=p-bad``): then the whole request is refused,
      400, as InfluxDB refuses a batch with a field type conflict;
    - ``mode = "down"``: 503 (an outage); ``mode = "unauthorized"``: 401;
    - ``max_lines``: a request with more lines is refused with 413;
    - ``fail_after``: answer that many more requests normally, then 503.
    """

    def __init__(self) -> None:
        self.mode = "strict"
        self.refuse = "patient=p-bad"
        self.max_lines: int | None = None
        self.fail_after: int | None = None
        self.stored: list[str] = []
        self.requests = 0
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, code: str = "", message: str = "") -> None:
                body = json.dumps({"code": code, "message": message}).encode() if code else b""
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                store._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, h, body: str) -> None:
        self.requests += 1
        if not h.path.startswith("/api/v2/write"):
            return h._answer(404, "not found", "path not found")
        if self.fail_after is not None:
            if self.fail_after <= 0:
                return h._answer(503, "unavailable", "service unavailable")
            self.fail_after -= 1
        if self.mode == "down":
            return h._answer(503, "unavailable", "service unavailable")
        if self.mode == "unauthorized":
            return h._answer(401, "unauthorized", "unauthorized access")
        lines = [line for line in body.split("\n") if line]
        if self.max_lines is not None and len(lines) > self.max_lines:
            return h._answer(413, "request too large", f"{len(lines)} lines > {self.max_lines}")
        for line in lines:
            if self.refuse in line:
                return h._answer(400, "invalid", "partial write: field type conflict: input field "
                                 '"value" on measurement "vitals" is type integer, already exists '
                                 f"as type float: {line[:80]}")
        self.stored += lines
        h._answer(204)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def strict_store() -> Iterator[StrictStore]:
    s = StrictStore()
    try:
        yield s
    finally:
        s.close()


def writer_for(url: str, tmp_path) -> InfluxWriter:
    return InfluxWriter(InfluxConfig(url=url, token="t", spool_dir=str(tmp_path / "spool"),
                                     max_retries=2, backoff_s=0.001, probe_interval_s=0.0,
                                     timeout_ms=3000))


# --- layer 1: identifiers at ingest -----------------------------------------------------

IDS_IN_USE = ["p-7", "dev_7", "cuff-7", "p0042", "site/a", "AA:BB:CC:DD:EE:01",
              "aa-bb-cc-dd-ee-01", "AABBCCDDEEFF", "urn:dev:ow:10e2073a01080063", "cuff#u1",
              "mimic-s00001", "gw-1", "omh-3", "s00001", "p-svc-1", "Müller", "d", "x" * 128]
BAD_IDS = [INJECTION, "", "x" * 129, "a b", "tab\there", "cr\rx", "nul\x00x", "del\x7fx",
           "ls\u2028x", "zw\u200bx", "bidi\u202ex", "nbsp\xa0x", "back\\slash", 'q"uote',
           "it's", "tick`x", "\ud800"]


def test_ids_in_use_today_are_valid_and_bad_ones_are_refused():
    from vitalstream.ids import MAX_ID_LEN, check_identifier, is_identifier

    assert MAX_ID_LEN == 128
    assert [i for i in IDS_IN_USE if not is_identifier(i)] == []
    assert [i for i in BAD_IDS if is_identifier(i)] == []
    with pytest.raises(Exception) as info:
        check_identifier("patient", INJECTION, "dev-1")
    assert (info.value.reason, info.value.step, info.value.device) == ("bad_identifier", "identity", "dev-1")
    assert "U+000A" in info.value.detail
    import vitalstream.ids
    assert doctest.testmod(vitalstream.ids).failed == 0


def test_ingest_dead_letters_bad_topic_device_payload_patient_and_resolved_patient():
    ing = Ingest()
    out: list = []
    ing.process(json_message("dev-1", INJECTION), out)  # the payload's patient
    ing.process(Message("vitalstream/dev\n2/json", json_message("dev\n2", "p-2").payload, T0), out)
    ing.process(Message("vitalstream/gw-1/ble", json.dumps(
        {"device": "AA:BB CC", "uuid": "2A37", "hex": "1E 55 32 00 21 00",
         "t": "2026-11-25T10:00:00Z"}).encode(), T0), out)  # a BLE device id from the envelope
    ing.process(json_message("dev-3", "p-3"), out)  # valid: goes through
    dead = [o for o in out if type(o) is DeadLetter]
    readings = [o for o in out if type(o) is Reading]
    assert [d.reason for d in dead] == ["bad_identifier"] * 3
    assert [(r.device, r.patient) for r in readings] == [("dev-3", "p-3")]
    assert ing.stats.by_reason == {"bad_identifier": 3}

    # a registry (any resolver) handing out a bad patient id is refused too
    ing2 = Ingest(patient_of=lambda raw: "patient 7")
    out2: list = []
    ing2.process(json_message("dev-4", "ignored"), out2)
    assert [(type(o).__name__, getattr(o, "reason", None)) for o in out2] == [
        ("DeadLetter", "bad_identifier"), ("Ack", None)]


@pytest.mark.parametrize("codec", ["json", "senml", "mixed"])
def test_simulated_fleet_ids_are_all_valid(codec):
    from vitalstream.simulators.scenario import Scenario

    sc = Scenario(patients=6, duration_s=120, seed=3, codec=codec)
    ing = Ingest()
    for m in sc.messages():
        ing.process(Message(m.topic, m.payload, sc.start_ns), [])  # received as sent: ids, not clocks, are tested here
    assert ing.stats.readings > 0
    assert "bad_identifier" not in ing.stats.by_reason


def test_injection_payload_is_dead_lettered_and_creates_no_series(victoria, redis_client, tmp_path):
    """The exact payload of the issue, through Ingest, OutcomeWriter, InfluxWriter,
    VictoriaMetrics and the Redis dead-letter stream."""
    from vitalstream.sinks.redis_streams import RedisConfig, RedisOutreach

    ok = f"p-ok-{uuid.uuid4().hex[:8]}"
    msgs = [json_message("dev-x", INJECTION, 1), json_message("dev-y", ok, 2)]
    outcomes = Ingest().process_batch(msgs)
    w = writer_for(victoria.url, tmp_path)
    acked: list = []
    ow = OutcomeWriter(w, RedisOutreach(RedisConfig(url="redis://unused"), client=redis_client),
                       ack=acked.append)
    ow.write(outcomes)
    w.close()
    dead = redis_client.xrange("vitalstream:deadletter")
    assert [(f[b"reason"], f[b"step"], f[b"payload"]) for _, f in dead] == [
        (b"bad_identifier", b"identity", msgs[0].payload)]
    rows = victoria.export('{__name__!=""}')
    assert not [r for r in rows if "evil" in json.dumps(r["metric"])]
    assert not [r for r in rows if r["metric"].get("device") == "dev-x"]
    assert [r["values"] for r in rows if r["metric"].get("patient") == ok] == [[71]]


# --- layer 2: escaping ------------------------------------------------------------------

def _ref_tag_value(s: str) -> str:
    lp = Point("m").tag("k", s).field("f", 1).to_line_protocol()
    assert lp.startswith("m,k=") and lp.endswith(" f=1i"), lp
    return lp[len("m,k="):-len(" f=1i")]


def _chunks(step: int = 512) -> Iterator[str]:
    """Every code point 0..0x10FFFF, in strings of ``step`` consecutive ones."""
    for lo in range(0, 0x110000, step):
        yield "".join(map(chr, range(lo, min(lo + step, 0x110000))))


SAMPLES = ["a\\", "\\", "a\\ b", "\\\\", "a\\\\", "=\\", ",", "x y,z=w\\", 'say "hi"\\',
           INJECTION, "\r\n\t", "#comment"]


def test_tag_value_escaping_equals_influxdb_client_for_every_code_point():
    for c in range(0x10000):  # every BMP character alone (a tag value is never empty)
        ch = chr(c)
        assert tag(ch) == _ref_tag_value(ch), f"U+{c:04X}"
    for s in [*_chunks(), *SAMPLES]:
        assert tag(s) == _ref_tag_value(s), repr(s[:20])


def test_measurement_key_and_string_field_escaping_equal_influxdb_client_for_every_code_point():
    from vitalstream.sinks.lineproto import field_key, measurement, string_field, tag_key

    def ref_measurement(s: str) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # a leading "#" warns
            return Point(s).field("f", 1).to_line_protocol()[:-len(" f=1i")]

    def ref_tag_key(s: str) -> str:
        return Point("m").tag(s, "v").field("f", 1).to_line_protocol()[len("m,"):-len("=v f=1i")]

    def ref_field_key(s: str) -> str:
        return Point("m").field(s, 1).to_line_protocol()[len("m "):-len("=1i")]

    def ref_string(s: str) -> str:
        return Point("m").field("f", s).to_line_protocol()[len("m f="):]

    strings = [chr(c) for c in range(0x10000)] + list(_chunks()) + SAMPLES
    for ours, ref in ((measurement, ref_measurement), (tag_key, ref_tag_key),
                      (field_key, ref_field_key), (string_field, ref_string)):
        bad = [s for s in strings if ours(s) != ref(s)]
        assert bad == [], f"{ours.__name__}: {[repr(s[:10]) for s in bad[:5]]}"


names = st.text(min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(patient=names, device=names, value=st.floats(20, 300), t=st.integers(0, 2**62),
       quality=st.sampled_from([0, 1, 4, 12]))
def test_reading_line_is_the_line_influxdb_client_writes(patient, device, value, t, quality):
    from vitalstream.model import Quality

    r = Reading(patient, device, Signal.SPO2, value, "%", t, t, quality=Quality(quality))
    p = Point("vitals").tag("patient", patient).tag("device", device).tag("signal", "spo2")
    p = p.field("value", float(value)).time(t)
    if quality:
        p = p.field("quality", quality)
    assert reading_line(r) == p.to_line_protocol()


def test_aggregate_line_is_the_line_influxdb_client_writes():
    a = aggregate("p a,b=c", "AA:BB:CC:DD:EE:01", 3, 60.0, 72.5, 66.25, 70.0)
    p = (Point("vitals_1m").tag("patient", a.patient).tag("device", a.device)
         .tag("signal", "heart_rate").field("count", 3).field("min", 60.0).field("max", 72.5)
         .field("mean", 66.25).field("last", 70.0).time(T0))
    assert aggregate_line(a, "vitals_1m") == p.to_line_protocol()
    # an empty tag value is invalid line protocol: left out, as the client does
    assert ",device=" not in aggregate_line(aggregate("p", "", 1, 1, 1, 1, 1), "v")


# Tag values the stores give back exactly as written: influxdb-client does not
# escape a backslash, which reads back as itself unless it is doubled or trails.
ROUND_TRIP = ["a b", "a,b", "a=b", "x=1,y=2 z", "a\\b", 'q"u\'o`te', "Müller/ü", "#1", "end,"]


def test_special_tag_values_round_trip_through_victoriametrics(victoria, tmp_path):
    run = uuid.uuid4().hex[:8]
    readings = [reading(v, i, 60.0 + i, device=f"d {run},={i}") for i, v in enumerate(ROUND_TRIP)]
    newline = reading(f"nl{run}\nvitals,patient=evil{run} value=1", 50, device=f"dev-{run}")
    w = writer_for(victoria.url, tmp_path)
    ow = OutcomeWriter(w, RecordingOutreach())
    ow.write([*readings, newline])
    w.close()
    assert ow.stats.readings == len(ROUND_TRIP) + 1
    rows = victoria.export('{__name__="vitals_value", device=~"d %s.*"}' % run)
    got = sorted((r["metric"]["patient"], r["metric"]["device"], r["values"]) for r in rows)
    assert got == sorted((r.patient, r.device, [r.value]) for r in readings)
    # A newline cannot be carried by a line-protocol tag at all: it is written as
    # the two characters "\n", so it stays one point of one series, named by us.
    rows = victoria.export('{__name__=~".+", patient=~".*%s.*"}' % run)
    assert [(r["metric"]["__name__"], r["metric"]["patient"], r["values"]) for r in rows
            if r["metric"].get("device") == f"dev-{run}"] == [
        ("vitals_value", f"nl{run}\\nvitals,patient=evil{run} value=1", [70])]
    assert not victoria.export('{patient="evil%s"}' % run)


def test_special_tag_values_round_trip_through_influxdb1(influxdb1):
    """InfluxDB's own parser: what InfluxDB stores is what was meant."""
    db = f"rt{uuid.uuid4().hex[:8]}"
    influxdb1.create_database(db)
    readings = [reading(v, i, device=f"dev {i},x=y") for i, v in enumerate(ROUND_TRIP)]
    influxdb1.write([reading_line(r) for r in readings], db)
    rows = influxdb1.select('SELECT "value" FROM "vitals" GROUP BY *', db)
    assert sorted((r["patient"], r["device"]) for r in rows) == sorted(
        (r.patient, r.device) for r in readings)


# --- layer 3: what the writer does with the store's answers ---------------------------------

def test_one_refused_point_is_dead_lettered_alone_and_the_rest_is_stored(strict_store, tmp_path):
    w = writer_for(strict_store.url, tmp_path)
    out, acked = RecordingOutreach(), []
    ow = OutcomeWriter(w, out, ack=acked.append)
    batch = [reading(f"p{i}", i) for i in range(8)]
    batch[5] = reading("p-bad", 5)
    lines = [reading_line(r) for r in batch]
    ow.write([*batch, Ack("m1")])
    assert strict_store.stored == lines[:5] + lines[6:]
    assert [(d.step, d.reason, d.payload, d.device, d.recv_ns) for d in out.dead] == [
        ("store", "store_rejected", lines[5].encode(), "dev-p-bad", batch[5].recv_ns)]
    assert "HTTP 400" in out.dead[0].detail and "field type conflict" in out.dead[0].detail
    assert not w.in_outage and len(w.spool) == 0 and w.batches_spooled == 0
    assert acked == ["m1"]
    # 1 + 2 requests per halving level: not one request per point
    assert strict_store.requests == 1 + 2 * math.ceil(math.log2(8))
    # later writes are not blocked
    ow.write([reading("p1", 100), Ack("m2")])
    assert strict_store.stored[-1] == reading_line(reading("p1", 100)) and acked == ["m1", "m2"]
    assert (ow.stats.readings, ow.stats.store_rejected, ow.stats.dead_letters) == (8, 1, 1)
    assert (ow.stats.readings_spooled, w.points_written, w.points_rejected) == (0, 8, 1)
    w.close()


def test_outage_spools_replays_in_order_and_counts_stored_apart_from_spooled(strict_store, tmp_path):
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    ow = OutcomeWriter(w, out)
    first = [reading("p1", i) for i in range(3)]
    ow.write(first)
    strict_store.mode = "down"
    during = [[reading("p1", 10 + i)] for i in range(3)]
    for batch in during:
        ow.write(batch)
    assert w.in_outage and len(w.spool) == 3
    assert ow.stats.readings == 3  # only what the store confirmed
    assert ow.stats.readings_spooled == 3
    strict_store.mode = "strict"
    last = [reading("p1", 20)]
    ow.write(last)
    assert not w.in_outage and len(w.spool) == 0
    assert strict_store.stored == [reading_line(r) for r in first + sum(during, []) + last]
    assert (ow.stats.readings, ow.stats.readings_spooled) == (7, 3)  # replays confirmed now
    assert out.dead == []
    w.close()


def test_spool_replay_splits_a_refused_batch_and_never_stops_at_it(strict_store, tmp_path):
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    ow = OutcomeWriter(w, out)
    strict_store.mode = "down"
    b1 = [reading("p1", 1), reading("p1", 2)]
    b2 = [reading("p2", 3), reading("p-bad", 4), reading("p2", 5)]
    b3 = [reading("p3", 6)]
    for b in (b1, b2, b3):
        ow.write(b)
    assert len(w.spool) == 3 and out.dead == []
    strict_store.mode = "strict"
    b4 = [reading("p4", 7)]
    ow.write(b4)
    good = [r for r in b1 + b2 + b3 + b4 if r.patient != "p-bad"]
    assert strict_store.stored == [reading_line(r) for r in good]
    assert len(w.spool) == 0 and not w.in_outage
    assert [(d.reason, d.payload) for d in out.dead] == [
        ("store_rejected", reading_line(b2[1]).encode())]
    assert (ow.stats.readings, ow.stats.readings_spooled, ow.stats.store_rejected) == (6, 6, 1)
    w.close()


def test_replay_cut_by_a_new_outage_keeps_the_rest_and_reports_a_refusal_once(strict_store, tmp_path):
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    ow = OutcomeWriter(w, out)
    strict_store.mode = "down"
    a = [reading("p1", 0), reading("p-bad", 1), reading("p1", 2), reading("p1", 3)]
    ow.write(a)
    # back, but only for 4 requests: [0,4) 400, [0,2) 400, [0,1) 204, [1,2) 400, then 503
    strict_store.mode, strict_store.fail_after = "strict", 4
    b = [reading("p1", 4)]
    ow.write(b)
    assert strict_store.stored == [reading_line(a[0])]
    assert [d.payload for d in out.dead] == [reading_line(a[1]).encode()]
    files = w.spool.pending()
    assert [f.read_text() for f in files] == [
        "\n".join(reading_line(r) for r in a[2:]), reading_line(b[0])]
    strict_store.fail_after = None
    c = [reading("p1", 5)]
    ow.write(c)
    assert strict_store.stored == [reading_line(r) for r in [a[0], *a[2:], *b, *c]]
    assert len(out.dead) == 1 and len(w.spool) == 0
    assert (ow.stats.readings, ow.stats.store_rejected) == (5, 1)
    w.close()


def test_too_large_splits_and_stores_everything(strict_store, tmp_path):
    strict_store.max_lines = 3
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    ow = OutcomeWriter(w, out)
    batch = [reading("p1", i) for i in range(10)]
    ow.write(batch)
    assert strict_store.stored == [reading_line(r) for r in batch]
    assert out.dead == [] and len(w.spool) == 0 and ow.stats.readings == 10
    w.close()


def test_unauthorized_is_an_outage_not_a_refusal_of_every_point(strict_store, tmp_path):
    strict_store.mode = "unauthorized"
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    ow = OutcomeWriter(w, out)
    batch = [reading("p1", i) for i in range(4)]
    ow.write(batch)
    assert out.dead == [] and w.in_outage and len(w.spool) == 1
    strict_store.mode = "strict"  # the token was fixed
    ow.flush()
    assert strict_store.stored == [reading_line(r) for r in batch] and len(w.spool) == 0
    assert ow.stats.readings == 4
    w.close()


def test_result_writer_dead_letters_a_refused_aggregate_and_counts_confirmed_only(strict_store, tmp_path):
    w = writer_for(strict_store.url, tmp_path)
    out = RecordingOutreach()
    rw = ResultWriter(w, out, 60 * NS)
    aggs = [aggregate(p, "d", 2, 60.0, 70.0, 65.0, 70.0) for p in ("p1", "p-bad", "p2")]
    rw.write(aggs)
    assert strict_store.stored == [aggregate_line(a, "vitals_1m") for a in (aggs[0], aggs[2])]
    assert [(d.step, d.reason, d.device) for d in out.dead] == [("store", "store_rejected", "d")]
    assert (rw.stats.aggregates, rw.stats.store_rejected, rw.stats.dead_letters) == (2, 1, 1)
    strict_store.mode = "down"
    rw.write(aggs[:1])
    assert (rw.stats.aggregates, rw.stats.aggregates_spooled) == (2, 1)
    strict_store.mode = "strict"
    rw.flush()  # at shutdown: the spool is drained and counted
    assert (rw.stats.aggregates, len(w.spool)) == (3, 0)
    w.close()
