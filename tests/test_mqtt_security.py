"""MQTT ingress security against a real mosquitto: logins, the shipped per-device ACL, TLS.

The broker runs the ACL file that ships (deploy/mosquitto.acl), so these tests check
the deployed rules, not a copy. What mosquitto 2.0 does (measured here, Debian 2.0.11):

- a refused login (anonymous, unknown user, wrong password) gets CONNACK 0x87 Not
  authorized over MQTT v5, return code 5 over 3.1.1;
- a publish outside the ACL gets PUBACK 0x87 over v5 but PUBACK *success* over 3.1.1:
  the message is dropped silently, so a 3.1.1 device cannot tell;
- a SUBSCRIBE outside the ACL is granted, and the messages are filtered on delivery.

"The subscriber never got it" is checked without sleeping: the same publisher then
sends an allowed message on the same connection, and mosquitto forwards one
publisher's messages in order, so once that sentinel has arrived the refused one
would have arrived before it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import paho.mqtt.client as mqtt
import pytest

from conftest import _run
import redis
from paho.mqtt.enums import CallbackAPIVersion

from vitalstream.connectors.mqtt import MqttConfig, MqttReceiver
from vitalstream.errors import ConfigError
from vitalstream.stream.bounded import PipelineRun, settings_for
from vitalstream.stream.embedded import Mosquitto, VictoriaMetrics

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ACL = (ROOT / "deploy/mosquitto.acl").read_text()
PIPELINE = ("vitalstream", "pipeline-secret")
USERS = {PIPELINE[0]: PIPELINE[1], "dev-1": "dev-1-secret", "dev-2": "dev-2-secret"}
NOT_AUTHORIZED = 0x87
WAIT_S = 10.0

pytestmark = pytest.mark.services


def _start(broker: Mosquitto) -> Iterator[Mosquitto]:
    yield from _run(broker)  # conftest's: skip, or fail under CI, when mosquitto is missing


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Mosquitto]:
    yield from _start(Mosquitto(tmp_path_factory.mktemp("mq-acl"), users=USERS, acl=SHIPPED_ACL))


class Client:
    """A paho client that records what it gets; ``connect`` returns the CONNACK reason code."""

    def __init__(self, user: str | None, password: str | None = None, *, v5: bool = True,
                 client_id: str = "", tls_ca: str | None = None, tls: bool = False) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls or tls_ca is not None:
            self.c.tls_set(ca_certs=tls_ca)
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        self.connack: int | None = None
        self._connacked = threading.Event()
        self._cond = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = lambda *a: self._notify(lambda: setattr(self, "subacked", a[3]))
        self.subacked = None

    def _notify(self, change) -> None:
        with self._cond:
            change()
            self._cond.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code.value
        self._connacked.set()
        if reason_code.is_failure:
            client.disconnect()

    def _on_message(self, client, userdata, msg) -> None:
        self._notify(lambda: self.messages.append((msg.topic, msg.payload)))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._notify(lambda: self.pubacks.__setitem__(mid, reason_code.value))

    def wait(self, predicate, what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, WAIT_S), f"timed out waiting for {what}"

    def connect(self, host: str, port: int) -> int:
        self.c.connect(host, port)
        self.c.loop_start()
        assert self._connacked.wait(WAIT_S), "no CONNACK"
        return self.connack

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, qos=1)
        self.wait(lambda: self.subacked is not None, "SUBACK")

    def publish(self, topic: str, payload: bytes) -> int:
        """QoS 1; returns the PUBACK reason code."""
        info = self.c.publish(topic, payload, qos=1)
        self.wait(lambda: info.mid in self.pubacks, f"PUBACK of {topic}")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


def _connected(clients: list[Client], broker: Mosquitto, user: str, **kw) -> Client:
    c = Client(user, USERS.get(user), **kw)
    clients.append(c)
    assert c.connect(broker.host, broker.port) == 0
    return c


def _pipeline_subscriber(clients, broker) -> Client:
    sub = _connected(clients, broker, PIPELINE[0])
    sub.subscribe("$share/vitalstream/vitalstream/+/+")  # what the pipeline subscribes to
    assert [rc.value for rc in sub.subacked] == [1]  # granted QoS 1
    return sub


def test_device_publishes_under_its_own_topic_to_the_pipeline_user(broker, clients) -> None:
    sub = _pipeline_subscriber(clients, broker)
    dev = _connected(clients, broker, "dev-1")
    assert dev.publish("vitalstream/dev-1/json", b"own") == 0
    sub.wait(lambda: sub.messages, "the device's message")
    assert sub.messages == [("vitalstream/dev-1/json", b"own")]


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_device_publishing_on_another_devices_topic_is_refused(broker, clients, v5) -> None:
    sub = _pipeline_subscriber(clients, broker)
    dev = _connected(clients, broker, "dev-1", v5=v5)
    rc = dev.publish("vitalstream/dev-2/json", b"spoofed")
    # v5: Not authorized. 3.1.1 has no reason code in PUBACK: mosquitto acks and drops.
    assert rc == (NOT_AUTHORIZED if v5 else 0)
    assert dev.publish("vitalstream/dev-1/json", b"sentinel") == 0
    sub.wait(lambda: (("vitalstream/dev-1/json", b"sentinel") in sub.messages), "the sentinel")
    assert sub.messages == [("vitalstream/dev-1/json", b"sentinel")]


def test_the_acl_follows_the_user_name_not_the_client_id(broker, clients) -> None:
    # %u in the pattern: a client id is whatever the client says, so naming itself
    # dev-2 must not let dev-1 publish as dev-2.
    sub = _pipeline_subscriber(clients, broker)
    dev = _connected(clients, broker, "dev-1", client_id="dev-2")
    assert dev.publish("vitalstream/dev-2/json", b"spoofed") == NOT_AUTHORIZED
    assert dev.publish("vitalstream/dev-1/json", b"sentinel") == 0
    sub.wait(lambda: sub.messages, "the sentinel")
    assert sub.messages == [("vitalstream/dev-1/json", b"sentinel")]


def test_the_pipeline_user_cannot_publish_device_readings(broker, clients) -> None:
    pipe = _connected(clients, broker, PIPELINE[0])
    assert pipe.publish("vitalstream/dev-1/json", b"forged") == NOT_AUTHORIZED


def test_a_device_cannot_read_other_devices(broker, clients) -> None:
    spy = _connected(clients, broker, "dev-2")
    spy.subscribe("vitalstream/#")
    assert [rc.value for rc in spy.subacked] == [1]  # mosquitto grants, then filters per message
    dev = _connected(clients, broker, "dev-1")
    assert dev.publish("vitalstream/dev-1/json", b"private") == 0
    # Sentinel on the spy's own connection: mosquitto forwarded dev-1's message (if at all)
    # before it acked it, so it would be ahead of the spy's own PUBACK on the spy's socket.
    assert spy.publish("vitalstream/dev-2/json", b"own") == 0
    assert spy.messages == []


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("user, password", [(None, None), ("dev-1", "wrong"), ("nobody", "x")],
                         ids=["anonymous", "wrong-password", "unknown-user"])
def test_logins_without_valid_credentials_are_refused(broker, clients, user, password, v5) -> None:
    c = Client(user, password, v5=v5)
    clients.append(c)
    # 3.1.1 return code 5 (not authorised) is reported by paho as the v5 code 0x87
    assert c.connect(broker.host, broker.port) == NOT_AUTHORIZED


def test_a_device_added_with_mosquitto_passwd_and_sighup_can_publish(broker, clients) -> None:
    """The README's procedure: mosquitto_passwd -b, then SIGHUP; no restart, sessions kept."""
    sub = _pipeline_subscriber(clients, broker)
    new = Client("dev-9", "dev-9-secret")
    clients.append(new)
    assert new.connect(broker.host, broker.port) == NOT_AUTHORIZED
    subprocess.run([Mosquitto.passwd_path, "-b", str(broker.dir / "passwd"), "dev-9", "dev-9-secret"],
                   check=True, capture_output=True)
    os.kill(broker.pid, signal.SIGHUP)
    deadline = time.monotonic() + WAIT_S  # the reload happens in the broker's next loop
    while True:
        c = Client("dev-9", "dev-9-secret")
        clients.append(c)
        if c.connect(broker.host, broker.port) == 0:
            break
        assert time.monotonic() < deadline, "dev-9 still refused after SIGHUP"
        time.sleep(0.05)
    assert c.publish("vitalstream/dev-9/json", b"hello") == 0
    assert c.publish("vitalstream/dev-1/json", b"spoofed") == NOT_AUTHORIZED
    sub.wait(lambda: sub.messages, "dev-9's message")
    assert sub.messages == [("vitalstream/dev-9/json", b"hello")]
    assert sub.c.is_connected()  # the reload kept the pipeline's connection


def test_a_device_removed_with_mosquitto_passwd_and_sighup_is_disconnected(broker, clients) -> None:
    pw = str(broker.dir / "passwd")
    subprocess.run([Mosquitto.passwd_path, "-b", pw, "dev-8", "dev-8-secret"], check=True,
                   capture_output=True)
    os.kill(broker.pid, signal.SIGHUP)
    deadline = time.monotonic() + WAIT_S
    while True:
        dev = Client("dev-8", "dev-8-secret")
        clients.append(dev)
        if dev.connect(broker.host, broker.port) == 0:
            break
        assert time.monotonic() < deadline, "dev-8 still refused after SIGHUP"
        time.sleep(0.05)
    gone = threading.Event()
    dev.c.on_disconnect = lambda *a: gone.set()
    subprocess.run([Mosquitto.passwd_path, "-D", pw, "dev-8"], check=True, capture_output=True)
    os.kill(broker.pid, signal.SIGHUP)
    assert gone.wait(WAIT_S), "the removed device's connection stayed open"
    again = Client("dev-8", "dev-8-secret")
    clients.append(again)
    assert again.connect(broker.host, broker.port) == NOT_AUTHORIZED


def test_the_shipped_dev_password_file_logs_in_the_compose_users_and_takes_a_device(
        tmp_path, clients) -> None:
    # The README's "add a device" on the shipped file. mosquitto_passwd 2.0.11 rewrites a
    # file with a comment line into that line plus the new user: the file must hold none.
    passwd = tmp_path / "mosquitto.passwd"
    passwd.write_bytes((ROOT / "deploy/mosquitto.passwd").read_bytes())
    subprocess.run([Mosquitto.passwd_path, "-b", str(passwd), "dev-7", "dev-7-secret"],
                   check=True, capture_output=True)
    conf = f"password_file {passwd}\nacl_file {ROOT / 'deploy/mosquitto.acl'}\n"
    for b in _start(Mosquitto(tmp_path / "mq", allow_anonymous=False, extra_config=conf)):
        for user, password, rc in (("vitalstream", "vitalstream-dev-mqtt", 0),
                                   ("simulator", "simulator-dev-mqtt", 0),
                                   ("dev-7", "dev-7-secret", 0),
                                   ("vitalstream", "simulator-dev-mqtt", NOT_AUTHORIZED)):
            c = Client(user, password)
            clients.append(c)
            assert c.connect(b.host, b.port) == rc, user


# --- end to end: the pipeline with its credentials ---------------------------------------

def _reading(device: str, patient: str, t_ns: int, value: float) -> bytes:
    return json.dumps({"v": 1, "device": device, "patient": patient, "readings": [
        {"signal": "heart_rate", "value": value, "unit": "/min", "t_ns": t_ns}]}).encode()


def test_pipeline_stores_the_authorised_device_and_nothing_of_a_spoofed_topic(
        broker, clients, redis_server, tmp_path) -> None:
    t0 = time.time_ns() // 1_000_000_000 * 1_000_000_000
    with VictoriaMetrics(tmp_path / "vm") as vm:
        url = f"mqtt://{PIPELINE[0]}:{PIPELINE[1]}@{broker.host}:{broker.port}"
        settings = settings_for(url, redis_server.url, vm.url, tmp_path / "spool")
        with PipelineRun(settings, idle_stop_s=3.0) as run:
            dev = _connected(clients, broker, "dev-1")
            own = [70.0, 71.0, 72.0]
            for i, v in enumerate(own):
                payload = _reading("dev-1", "p-1", t0 + i * 1_000_000_000, v)
                assert dev.publish("vitalstream/dev-1/json", payload) == 0
            # on dev-2's topic, naming dev-2 in the payload too: only the broker can stop this
            spoof = _reading("dev-2", "p-2", t0, 150.0)
            assert dev.publish("vitalstream/dev-2/json", spoof) == NOT_AUTHORIZED
            # on its own topic naming dev-2: the pipeline's identity_mismatch check
            assert dev.publish("vitalstream/dev-1/json", _reading("dev-2", "p-2", t0, 151.0)) == 0
            totals = run.join()
        series = vm.export('{__name__="vitals_value"}')
    stored = {(s["metric"]["patient"], s["metric"]["device"]): sorted(s["values"]) for s in series}
    assert stored == {("p-1", "dev-1"): own}
    assert totals["messages"] == 4  # the refused publish never reached the pipeline
    dead = redis.Redis.from_url(redis_server.url).xrange(settings.redis.deadletter_stream)
    assert [(e[1][b"topic"], e[1][b"reason"]) for e in dead] == [
        (b"vitalstream/dev-1/json", b"identity_mismatch")]


# --- TLS ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, str]:
    """A self-signed CA and a server certificate it signed, for 127.0.0.1 only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, issuer, pub, signer, *, ca: bool, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san is not None:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(signer, hashes.SHA256())

    def write(path: Path, key, crt) -> None:
        path.with_suffix(".crt").write_bytes(crt.public_bytes(serialization.Encoding.PEM))
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("vitalstream test CA"), name("vitalstream test CA"), ca_key.public_key(), ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = cert(name("127.0.0.1"), ca.subject, srv_key.public_key(), ca_key, ca=False,
               san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    write(d / "ca", ca_key, ca)
    write(d / "server", srv_key, srv)
    # a second CA that signed nothing here: trusting it must not be enough
    other_key = ec.generate_private_key(ec.SECP256R1())
    write(d / "other", other_key, cert(name("other CA"), name("other CA"), other_key.public_key(),
                                       other_key, ca=True))
    return {"ca": str(d / "ca.crt"), "cert": str(d / "server.crt"), "key": str(d / "server.key"),
            "other_ca": str(d / "other.crt")}


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, pki) -> Iterator[Mosquitto]:
    yield from _start(Mosquitto(tmp_path_factory.mktemp("mq-tls"), users=USERS, acl=SHIPPED_ACL,
                                tls=(pki["ca"], pki["cert"], pki["key"])))


def test_the_receiver_gets_a_message_over_mqtts_with_the_ca_file(tls_broker, pki, clients) -> None:
    cfg = MqttConfig(url=f"mqtts://{PIPELINE[0]}:{PIPELINE[1]}@127.0.0.1:{tls_broker.tls_port}",
                     client_id="vs-tls", shared_group="vitalstream", ca_file=pki["ca"])
    rx = MqttReceiver(cfg, polled=True)
    rx.start()
    try:
        assert rx.subscribed.is_set()
        dev = Client("dev-1", USERS["dev-1"], tls_ca=pki["ca"])
        clients.append(dev)
        assert dev.connect("127.0.0.1", tls_broker.tls_port) == 0
        assert dev.publish("vitalstream/dev-1/json", b"over tls") == 0
        got = []
        deadline = time.monotonic() + WAIT_S
        while not got and time.monotonic() < deadline:
            got = rx.drain()
        assert [(m.topic, m.payload) for m in got] == [("vitalstream/dev-1/json", b"over tls")]
        got[0].token()
    finally:
        rx.stop()


@pytest.mark.parametrize("trust", ["system-cas", "other-ca"])
def test_a_client_without_the_ca_is_refused(tls_broker, pki, trust) -> None:
    c = Client("dev-1", USERS["dev-1"], tls=True,
               tls_ca=pki["other_ca"] if trust == "other-ca" else None)
    with pytest.raises(ssl.SSLCertVerificationError):
        c.c.connect("127.0.0.1", tls_broker.tls_port)


def test_the_host_name_is_verified(tls_broker, pki) -> None:
    # the certificate names 127.0.0.1 only; "localhost" reaches the same socket
    c = Client("dev-1", USERS["dev-1"], tls_ca=pki["ca"])
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        c.c.connect("localhost", tls_broker.tls_port)


def test_clear_text_on_the_tls_port_gets_no_connack(tls_broker) -> None:
    # a bare 3.1.1 CONNECT: the TLS listener resets the connection (mosquitto 2.0.11), and
    # whatever else it might do, it never answers with a CONNACK (0x20)
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=WAIT_S) as s:
        s.sendall(connect)
        try:
            answer = s.recv(4)
        except ConnectionResetError:
            answer = b""
    assert answer[:1] != b"\x20"


def test_a_ca_file_with_a_clear_text_url_is_a_config_error(pki) -> None:
    with pytest.raises(ConfigError, match="mqtts://"):
        MqttReceiver(MqttConfig(url="mqtt://127.0.0.1:1883", ca_file=pki["ca"]))
    with pytest.raises(ConfigError, match="not found"):
        MqttReceiver(MqttConfig(url="mqtts://127.0.0.1:8883", ca_file=pki["ca"] + ".missing"))
