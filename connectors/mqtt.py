"""MQTT source: paho-mqtt 2.x, QoS 1, persistent session, manual acknowledgement.

- MQTT v5 with ``clean_start=False`` and a session expiry, so QoS 1 messages
  published while the pipeline is down are delivered when it comes back.
- ``manual_ack=True``: a message is acknowledged only when the caller invokes
  its token, which the pipeline does after the readings it carried are stored.
  An unacknowledged message is redelivered after a reconnect; stage A dedups it.
- Reconnects with exponential backoff (paho's loop thread); subscriptions are
  renewed on every connect in case the broker lost the session.
- Several pipeline processes share the load with a shared subscription
  (``$share/<group>/<topic>``); each needs its own client id.

URL form: ``mqtt://user:pass@host:1883`` (``mqtts://`` for TLS, default port 8883).
Over ``mqtts://`` the broker's certificate and host name are verified against
the system's CAs, or only against ``ca_file`` (a PEM bundle, e.g. a private CA)
when it is set; ``ca_file`` with a plain ``mqtt://`` URL is a ConfigError, not
a silent fall-back to clear text.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vitalstream.errors import ConfigError
from vitalstream.model import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MqttConfig:
    url: str = "mqtt://127.0.0.1:1883"
    topic: str = "vitalstream/+/+"
    qos: int = 1
    client_id: str = "vitalstream"
    shared_group: str | None = None
    session_expiry_s: int = 3600
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    ca_file: str | None = None  # PEM CA bundle for mqtts:// (None: the system's CAs)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """
    >>> parse_mqtt_url("mqtt://user:p%40ss@10.0.0.5:1884")
    BrokerAddress(host='10.0.0.5', port=1884, username='user', password='p@ss', tls=False)
    >>> parse_mqtt_url("mqtts://broker").port
    8883
    """
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError("mqtt", None, "bad_url", f"{url!r}: scheme must be mqtt:// or mqtts://")
    tls = u.scheme in ("mqtts", "ssl")
    return BrokerAddress(u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883),
                         unquote(u.username) if u.username else None,
                         unquote(u.password) if u.password else None, tls)


def subscription(cfg: MqttConfig) -> str:
    return f"$share/{cfg.shared_group}/{cfg.topic}" if cfg.shared_group else cfg.topic


class MqttReceiver:
    """Receives into an in-memory queue; ``drain`` hands batches to the dataflow.

    ``polled=True`` (what the dataflow uses) runs paho's network loop inside
    ``drain``, on the caller's thread, instead of in paho's own thread: reading a
    burst of packets, queueing their PUBACKs and writing them in one pass. That
    removes the GIL hand-offs and the one-``select``-per-packet of paho's loop
    thread, which were most of the cost of receiving. The caller must then also
    be the only thread that acks (stage A's sink runs on the source's worker).
    """

    def __init__(self, cfg: MqttConfig, client_suffix: str = "", *, polled: bool = False) -> None:
        self.cfg = cfg
        self.polled = polled
        self._retry_at = 0.0
        self._backoff = cfg.reconnect_min_s
        self.addr = parse_mqtt_url(cfg.url)
        self.client_id = cfg.client_id + client_suffix
        self._queue: deque[Message] = deque()
        self._connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker granted the subscription
        self.received = 0
        self.acked = 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        if self.addr.username is not None:
            c.username_pw_set(self.addr.username, self.addr.password)
        if cfg.ca_file is not None and not self.addr.tls:
            raise ConfigError("mqtt", None, "bad_url",
                              f"ca_file {cfg.ca_file!r} needs an mqtts:// URL, not {cfg.url!r}")
        if self.addr.tls:
            if cfg.ca_file is not None and not os.path.isfile(cfg.ca_file):
                raise ConfigError("mqtt", None, "missing_file", f"ca_file {cfg.ca_file!r} not found")
            c.tls_set(ca_certs=cfg.ca_file)
        c.reconnect_delay_set(min_delay=max(1, round(cfg.reconnect_min_s)),
                              max_delay=max(1, round(cfg.reconnect_max_s)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        if polled:
            # Defer PUBACK writes to the next drain (one pass for the whole batch).
            c.on_socket_register_write = lambda *_: None
        self._client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt connect refused: %s", reason_code)
            return
        client.subscribe(subscription(self.cfg), qos=self.cfg.qos)
        self._connected.set()
        log.info("mqtt connected as %s (session present: %s)", self.client_id,
                 flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("mqtt subscription refused: %s", reason_codes)
            return
        if not self.subscribed.is_set():
            log.info("mqtt subscribed as %s", self.client_id)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if reason_code != 0:
            log.warning("mqtt disconnected: %s; reconnecting", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        token = partial(self._ack, msg.mid, msg.qos) if msg.qos > 0 else None
        self._queue.append(Message(msg.topic, msg.payload, time.time_ns(), token))

    def _ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)
        self.acked += 1

    def _connect_props(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        return props

    def start(self, wait_s: float = 10.0) -> None:
        if self.polled:
            self._polled_connect()
            deadline = time.monotonic() + wait_s
            while not self.subscribed.is_set() and time.monotonic() < deadline:
                self._pump(max_packets=10)
                time.sleep(0.01)
        else:
            self._client.connect_async(self.addr.host, self.addr.port,
                                       keepalive=self.cfg.keepalive_s, clean_start=False,
                                       properties=self._connect_props())
            self._client.loop_start()
        if not self._connected.wait(0 if self.polled else wait_s):
            log.warning("mqtt broker %s:%d not reachable yet; still trying",
                        self.addr.host, self.addr.port)

    def _polled_connect(self) -> None:
        """Connect or reconnect, with exponential backoff between failed attempts."""
        if time.monotonic() < self._retry_at:
            return
        c = self._client
        try:
            if c.socket() is None and not self._ever_connected:
                c.connect(self.addr.host, self.addr.port, keepalive=self.cfg.keepalive_s,
                          clean_start=False, properties=self._connect_props())
            else:
                c.reconnect()
            self._ever_connected = True
            self._backoff = self.cfg.reconnect_min_s
        except OSError as exc:
            log.warning("mqtt connect to %s:%d failed: %s; retry in %.1f s",
                        self.addr.host, self.addr.port, exc, self._backoff)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.cfg.reconnect_max_s)

    _ever_connected = False

    def _pump(self, max_packets: int) -> None:
        """Read up to ``max_packets`` packets, then write queued acks and keepalives."""
        c = self._client
        if c.socket() is None:
            self._polled_connect()
            if c.socket() is None:
                return
        idle = 0
        for _ in range(max_packets):
            n = len(self._queue)
            if c.loop_read() != mqtt.MQTT_ERR_SUCCESS or c.socket() is None:
                break
            # loop_read reads one packet and reports "no data" as success: stop
            # after two reads that queued nothing.
            if len(self._queue) == n:
                idle += 1
                if idle >= 2:
                    break
            else:
                idle = 0
        if c.socket() is not None:
            c.loop_write()
            c.loop_misc()

    def drain(self, max_items: int = 5000) -> list[Message]:
        q = self._queue
        if self.polled and len(q) < max_items:
            self._pump(max_items - len(q) + 2)
        n = min(len(q), max_items)
        return [q.popleft() for _ in range(n)]

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        c = self._client
        if self.polled:
            if c.socket() is not None:
                c.loop_write()  # the last acks
                c.disconnect()
                c.loop_write()
            return
        c.disconnect()
        c.loop_stop()
