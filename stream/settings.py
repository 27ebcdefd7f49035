"""Settings: defaults < config file (YAML) < environment < command line.

Every service address is a CLI option, an environment variable and a config
key: ``--mqtt-url``/``VITALSTREAM_MQTT_URL``/``mqtt.url``, ``--redis-url``/
``VITALSTREAM_REDIS_URL``/``redis.url``, ``--influx-url|token|org|bucket``/
``VITALSTREAM_INFLUX_URL|TOKEN|ORG|BUCKET``/``influx.url|token|org|bucket``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from vitalstream.connectors.mqtt import MqttConfig
from vitalstream.errors import ConfigError
from vitalstream.sinks.influx import InfluxConfig
from vitalstream.sinks.redis_streams import RedisConfig



@dataclass(frozen=True)
class PipelineConfig:
    window_size_s: float = 60.0
    allowed_lateness_s: float = 10.0
    rule_delay_s: float = 2.0
    dedup_horizon_s: float = 120.0
    max_clock_skew_s: float | None = 300.0
    workers: int = 1
    shards: int = 64
    metrics_port: int | None = 9108
    # bytewax recovery: per-patient state (open windows, rule phases, baselines) is
    # snapshotted every snapshot_interval_s into this directory and resumed on start.
    recovery_dir: str | None = None
    snapshot_interval_s: float = 5.0
    # "payload": the payload's patient, else the device id. "registry": the device
    # registry in Redis by event time; readings of unmapped devices are quarantined.
    identity: str = "payload"
    # Timers move a patient's clock with the newest receive time seen; with the system
    # clock once the receive queues are empty, or less this grace when that is unknown
    # (readings still queued elsewhere): a backlog never makes queued readings late.
    idle_grace_s: float = 30.0
    # A patient silent this long is evicted: open windows are written, buffers released,
    # state freed. Anomaly baselines stay dormant for baseline_ttl_s, then restart from priors.
    evict_after_s: float | None = 86_400.0
    baseline_ttl_s: float = 30 * 86_400.0


@dataclass(frozen=True)
class Settings:
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    influx: InfluxConfig = field(default_factory=InfluxConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    rules_path: str | None = None  # None: the packaged adult defaults
    detectors: Mapping[str, Any] | None = None


ENV = {
    "VITALSTREAM_MQTT_URL": ("mqtt", "url"),
    "VITALSTREAM_REDIS_URL": ("redis", "url"),
    "VITALSTREAM_INFLUX_URL": ("influx", "url"),
    "VITALSTREAM_INFLUX_TOKEN": ("influx", "token"),
    "VITALSTREAM_INFLUX_ORG": ("influx", "org"),
    "VITALSTREAM_INFLUX_BUCKET": ("influx", "bucket"),
}

# config-file section -> (Settings attribute, {file key: dataclass field})
_FILE_KEYS = {
    "mqtt": ("mqtt", {k: k for k in ("url", "topic", "shared_group", "client_id", "qos",
                                     "session_expiry_s")}),
    "redis": ("redis", {"url": "url", "alerts_stream": "alerts_stream",
                        "deadletter_stream": "deadletter_stream"}),
    "influx": ("influx", {k: k for k in ("url", "token", "org", "bucket", "spool_dir")}),
    "windows": ("pipeline", {"size_s": "window_size_s", "allowed_lateness_s": "allowed_lateness_s"}),
    "metrics": ("pipeline", {"port": "metrics_port"}),
    "recovery": ("pipeline", {"dir": "recovery_dir", "snapshot_interval_s": "snapshot_interval_s"}),
    "pipeline": ("pipeline", {f.name: f.name for f in fields(PipelineConfig)}),
}


def _set(s: Settings, section: str, key: str, value: Any) -> Settings:
    return replace(s, **{section: replace(getattr(s, section), **{key: value})})


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[tuple[str, str], Any] | None = None) -> Settings:
    s = Settings()
    if path is not None:
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError("config", None, "unreadable", f"{path}: {exc}") from exc
        for section, body in doc.items():
            if section == "rules":
                p = body.get("path") if isinstance(body, dict) else body
                s = replace(s, rules_path=str((Path(path).parent / p).resolve()) if p else None)
                continue
            if section == "detectors":
                s = replace(s, detectors=body)
                continue
            if section not in _FILE_KEYS or not isinstance(body, dict):
                raise ConfigError("config", None, "unknown_key", f"{path}: {section!r}")
            attr, keys = _FILE_KEYS[section]
            for k, v in body.items():
                if k not in keys:
                    raise ConfigError("config", None, "unknown_key", f"{path}: {section}.{k}")
                s = _set(s, attr, keys[k], v)
    env = os.environ if env is None else env
    for var, (section, key) in ENV.items():
        if env.get(var):
            s = _set(s, section, key, env[var])
    for (section, key), v in (overrides or {}).items():
        if v is not None:
            s = _set(s, section, key, v)
    return s


def rules_document(settings: Settings) -> dict:
    """The rules YAML as a dict (packaged adult defaults unless a path is set)."""
    if settings.rules_path:
        text = Path(settings.rules_path).read_text()
    else:
        text = resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text()
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc.get("rules", []), list):
        raise ConfigError("rules", None, "bad_rules_file", "'rules' must be a list")
    return doc
