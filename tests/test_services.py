"""The service fixtures work end to end with the real client libraries.

Every expected value below is written by hand from the input: the point is to
show that bytes go through the real broker/store and come back unchanged.
"""

from __future__ import annotations

import os
import queue
import textwrap
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vitalstream.stream.embedded import (
    InfluxDB1,
    Mosquitto,
    ServiceStartError,
    ServiceTimeout,
    ServiceUnavailable,
    VictoriaMetrics,
)

pytestmark = pytest.mark.services
TIMEOUT_S = 10.0


class _Client:
    """A paho 2.x client (callback API v2) whose events land in queues."""

    def __init__(self, broker: Mosquitto, client_id: str = "", *, v5: bool = True) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connacks: queue.Queue[tuple[bool, int]] = queue.Queue()
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        self.broker = broker
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        self.c.on_connect = lambda c, u, flags, rc, props: self.connacks.put((flags.session_present, rc.value))
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put([r.value for r in rcs])
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)

    def connect(self, *, clean_start: bool = True, session_expiry_s: int = 0) -> tuple[bool, int]:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        self.c.connect(self.broker.host, self.broker.port, clean_start=clean_start, properties=props)
        self.c.loop_start()
        return self.connacks.get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        self.c.subscribe(topic, qos=qos)
        return self.subacks.get(timeout=TIMEOUT_S)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _publish_qos1(broker: Mosquitto, topic: str, payload: bytes) -> None:
    pub = _Client(broker)
    assert pub.connect() == (False, 0)
    info = pub.c.publish(topic, payload, qos=1)
    info.wait_for_publish(TIMEOUT_S)  # returns once the broker's PUBACK arrived
    assert info.rc == mqtt.MQTT_ERR_SUCCESS and info.is_published()
    pub.close()


def test_mqtt_qos1_publish_subscribe_round_trip(mosquitto: Mosquitto) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    sub = _Client(mosquitto)
    sub.connect()
    assert sub.subscribe("vitals/test/roundtrip/+", qos=1) == [1]  # granted QoS 1
    payload = b'{"hr": 72, "t": 0}'
    _publish_qos1(mosquitto, "vitals/test/roundtrip/dev-1", payload)
    msg = sub.messages.get(timeout=TIMEOUT_S)
    sub.close()
    assert (msg.topic, msg.payload, msg.qos) == ("vitals/test/roundtrip/dev-1", payload, 1)


def test_mqtt_persistent_session_and_queued_message_survive_broker_restart(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # A private broker: restarting the session one would cut other tests' clients.
    with Mosquitto(tmp_path / "broker") as broker:
        sub = _Client(broker, "vitalstream-persistent-sub")
        # clean_start=False from the very first CONNECT: mosquitto 2.0.11 keeps a session
        # begun with clean_start=True (and an expiry) across reconnects but drops it on a
        # broker restart, so paho's default MQTT_CLEAN_START_FIRST_ONLY is not enough.
        assert sub.connect(clean_start=False, session_expiry_s=3600) == (False, 0)
        assert sub.subscribe("vitals/p1/#", qos=1) == [1]
        sub.close()  # offline now; the session (subscription + queue) stays on the broker

        _publish_qos1(broker, "vitals/p1/hr", b"while-offline")
        port = broker.port
        broker.restart()  # SIGTERM: mosquitto writes mosquitto.db, then starts from it
        assert broker.port == port and (broker.dir / "mosquitto.db").is_file()

        back = _Client(broker, "vitalstream-persistent-sub")
        session_present, rc = back.connect(clean_start=False, session_expiry_s=3600)
        msg = back.messages.get(timeout=TIMEOUT_S)
        back.close()
    assert (session_present, rc) == (True, 0)
    assert (msg.topic, msg.payload, msg.qos) == ("vitals/p1/hr", b"while-offline", 1)


def test_mosquitto_password_file_refuses_wrong_password(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "auth", users={"gateway-1": "s3cret"}) as broker:
        good = _Client(broker)
        good.c.username_pw_set("gateway-1", "s3cret")
        assert good.connect() == (False, 0)
        good.close()
        bad = _Client(broker)
        bad.c.username_pw_set("gateway-1", "wrong")
        # MQTT 5.0 section 3.2.2.2: 0x86 Bad User Name or Password or 0x87 Not authorized
        # (mosquitto 2.0.11 answers 0x87); either refuses the connection.
        assert bad.connect()[1] in (0x86, 0x87)
        bad.c.loop_stop()


def test_redis_xadd_xrange_round_trip(redis_client) -> None:
    assert redis_client.dbsize() == 0  # the fixture flushed the database
    fields = [{"alert_id": "a1", "value": "130.5"}, {"alert_id": "a2", "value": "0"}]
    ids = [redis_client.xadd("vitalstream:alerts", f, id=f"1700000000000-{i}") for i, f in enumerate(fields)]
    assert ids == [b"1700000000000-0", b"1700000000000-1"]
    assert redis_client.xrange("vitalstream:alerts") == [
        (b"1700000000000-0", {b"alert_id": b"a1", b"value": b"130.5"}),
        (b"1700000000000-1", {b"alert_id": b"a2", b"value": b"0"}),
    ]


def _write_v2(victoria: VictoriaMetrics, lines: str) -> None:
    with InfluxDBClient(url=victoria.url, token="unused-by-victoria", org="vitalstream") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="vitals", record=lines, write_precision=WritePrecision.NS)


def test_influxdb_client_write_to_victoria_exports_exact_values_ns_to_ms(victoria: VictoriaMetrics) -> None:
    _write_v2(victoria, textwrap.dedent("""\
        vitals,patient=p-svc-1,device=d1,signal=heart_rate value=72.5 1700000000123456789
        vitals,patient=p-svc-1,device=d1,signal=heart_rate value=0 1700000001999999999
        vitals,patient=p-svc-1,device=d2,signal=spo2 value=97 1700000002000000001"""))
    rows = victoria.wait_for_points('vitals_value{patient="p-svc-1"}', 3)
    got = sorted((r["metric"]["signal"], r["metric"], r["values"], r["timestamps"]) for r in rows)
    hr_labels = {"__name__": "vitals_value", "patient": "p-svc-1", "device": "d1", "signal": "heart_rate"}
    spo2_labels = {"__name__": "vitals_value", "patient": "p-svc-1", "device": "d2", "signal": "spo2"}
    assert got == [
        # ns timestamps are truncated to ms; the 0 reading is kept as a value.
        ("heart_rate", hr_labels, [72.5, 0.0], [1700000000123, 1700000001999]),
        ("spo2", spo2_labels, [97.0], [1700000002000]),
    ]


def test_victoria_names_metrics_measurement_underscore_field(victoria: VictoriaMetrics) -> None:
    _write_v2(victoria, 'vitals_1m,patient=p-svc-2,signal=heart_rate '
                        'count=3i,min=60,max=80.5,ok=true,note="late" 1700000060000000000')
    rows = victoria.wait_for_points('{__name__=~"vitals_1m_.*",patient="p-svc-2"}', 5)
    got = {r["metric"]["__name__"]: (r["values"], r["timestamps"]) for r in rows}
    assert got == {
        "vitals_1m_count": ([3.0], [1700000060000]),
        "vitals_1m_min": ([60.0], [1700000060000]),
        "vitals_1m_max": ([80.5], [1700000060000]),
        "vitals_1m_ok": ([1.0], [1700000060000]),
        "vitals_1m_note": ([0.0], [1700000060000]),  # string fields are stored as 0
    }


def test_victoria_wait_for_points_times_out_with_count(victoria: VictoriaMetrics) -> None:
    with pytest.raises(ServiceTimeout, match="0 of 1 samples"):
        victoria.wait_for_points('never_written_metric{patient="none"}', 1, timeout_s=0.2)


def test_influxdb1_write_then_influxql_query_round_trip(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("svc_test")
    influxdb1.write([
        "vitals,patient=p1,signal=heart_rate value=60 1700000000000000000",
        "vitals,patient=p1,signal=heart_rate value=62 1700000030000000000",
        "vitals,patient=p1,signal=heart_rate value=67 1700000059999999999",
        "vitals,patient=p2,signal=heart_rate value=100 1700000010000000000",
    ], db="svc_test")
    rows = influxdb1.select(
        "SELECT count(value), mean(value), max(value) FROM vitals "
        "WHERE time >= 1700000000000000000 AND time < 1700000060000000000 GROUP BY patient",
        "svc_test")
    # mean of p1 = (60 + 62 + 67) / 3 = 63; time of an aggregate = start of the range
    assert rows == [
        {"name": "vitals", "patient": "p1", "time": 1700000000000000000, "count": 3, "mean": 63.0, "max": 67.0},
        {"name": "vitals", "patient": "p2", "time": 1700000000000000000, "count": 1, "mean": 100.0, "max": 100.0},
    ]
    raw = influxdb1.query("SELECT value FROM vitals WHERE patient = 'p1'", "svc_test", epoch="ms")
    assert raw["results"][0]["series"][0]["values"] == [
        [1700000000000, 60], [1700000030000, 62], [1700000059999, 67]]


def test_missing_binary_raises_service_unavailable_without_leaving_a_dir(tmp_path: Path) -> None:
    svc = VictoriaMetrics(tmp_path / "vm", binary=str(tmp_path / "no-such-binary"))
    with pytest.raises(ServiceUnavailable, match="no-such-binary"):
        svc.start()
    assert not (tmp_path / "vm").exists() and svc.pid is None


def test_service_that_exits_reports_its_log_tail(mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "bad", extra_config="bogus_option 1")
    with pytest.raises(ServiceStartError, match='Unknown configuration variable "bogus_option"'):
        broker.start()
    assert not broker.running


def test_stop_leaves_no_process(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "b") as broker:
        pid = broker.pid
        assert pid is not None and os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/proc/{pid}") and broker.pid is None


_CHILD_TEST = """
def test_needs_broker(mosquitto):
    assert False, "must not run: the broker binary is missing"
"""


@pytest.mark.parametrize("ci, outcome", [("", {"skipped": 1}), ("true", {"errors": 1})])
def test_missing_binary_skips_locally_but_fails_under_ci(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: dict[str, int]) -> None:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_child=_CHILD_TEST)
    pytester.makeini("[pytest]\nmarkers =\n    services: needs real service binaries\n")
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("VITALSTREAM_MOSQUITTO_BIN", str(pytester.path / "missing-mosquitto"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines(["*missing-mosquitto not found*"])
