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

URL form: ``mqtt://user:pass@host:1883`` (``mqtts://`` for TLS).
"""

from __future__ import annotations

import logging
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
    """Receives into an in-memory queue; ``drain`` hands batches to the dataflow."""

    def __init__(self, cfg: MqttConfig, client_suffix: str = "") -> None:
        self.cfg = cfg
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
        if self.addr.tls:
            c.tls_set()
        c.reconnect_delay_set(min_delay=max(1, round(cfg.reconnect_min_s)),
                              max_delay=max(1, round(cfg.reconnect_max_s)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
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

    def start(self, wait_s: float = 10.0) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        self._client.connect_async(self.addr.host, self.addr.port, keepalive=self.cfg.keepalive_s,
                                   clean_start=False, properties=props)
        self._client.loop_start()
        if not self._connected.wait(wait_s):
            log.warning("mqtt broker %s:%d not reachable yet; still trying",
                        self.addr.host, self.addr.port)

    def drain(self, max_items: int = 5000) -> list[Message]:
        q = self._queue
        n = min(len(q), max_items)
        return [q.popleft() for _ in range(n)]

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
