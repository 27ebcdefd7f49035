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
from typing import Any, Callable, Mapping, get_args, get_type_hints
from urllib.parse import urlsplit

import yaml

from vitalstream.connectors.mqtt import MqttConfig
from vitalstream.errors import ConfigError
from vitalstream.sinks.influx import InfluxConfig
from vitalstream.sinks.redis_streams import RedisConfig



DEFAULT_STATE_DIR = "vitalstream-data/state"  # relative to the working directory
DEFAULT_REDIS_SPOOL = "vitalstream-data/redis-spool"  # likewise


@dataclass(frozen=True)
class PipelineConfig:
    window_size_s: float = 60.0
    allowed_lateness_s: float = 10.0
    rule_delay_s: float = 2.0
    dedup_horizon_s: float = 120.0
    max_clock_skew_s: float | None = 300.0
    # Back-fill: a reading measured longer than this before it arrived (a phone uploading
    # yesterday) keeps its time, is flagged HISTORICAL and never pages as if live; its
    # windows close, and one summary message goes out, once none arrived for
    # backfill_idle_s. Null: old readings are clock-corrected like any skew.
    backfill_after_s: float | None = 3600.0
    backfill_idle_s: float = 120.0
    backfill_max_s: float = 7 * 86_400.0
    # The extremes of device time are dead letters, never corrected to "now": further ahead
    # of the receive time than future_limit_s (time_in_future), or behind it than
    # past_limit_s (time_too_old: an RTC reset, a stale queue). Null: corrected as any skew.
    # Both at least max_clock_skew_s; past_limit_s at least backfill_max_s.
    future_limit_s: float | None = 86_400.0
    past_limit_s: float | None = 7 * 86_400.0
    # Per-device token bucket in stage A, on receive time: a device may send device_burst
    # readings at once and device_rate_per_s on average; the excess is dead-lettered
    # (rate_limited). Null: off; also off when max_clock_skew_s is null (recorded or
    # time-compressed data, whose devices legitimately send faster than real time). The
    # burst holds a phone's upload of yesterday (a day of 1/min data of six signals, 8640
    # readings): back-fill is a normal thing for a device to do, a flood is not.
    device_rate_per_s: float | None = 50.0
    device_burst: int = 10_000
    # The broker connection lost this long raises one pipeline alarm (broker_lost), which
    # stands for every patient's stale-data alarm until it is back. Null: no such alarm.
    broker_lost_after_s: float | None = 30.0
    workers: int = 1
    shards: int = 64
    metrics_port: int | None = 9108
    # Durable state (bytewax recovery): per-patient state (open windows, rule phases,
    # baselines) is snapshotted every snapshot_interval_s into this directory, created on
    # first run and resumed on every start. None switches it off: a stop then writes the
    # windows still open, flagged partial.
    state_dir: str | None = DEFAULT_STATE_DIR
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
    # The alarm lifecycle service (stream/alarms.py) in process 0 of a run: re-notification,
    # escalation, acks and snoozes. Off: alert events only go to the outreach stream.
    lifecycle: bool = True


@dataclass(frozen=True)
class ConsoleConfig:
    """``vitalstream console``: where it listens and how it reads (config section ``console``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # A vital older than this is shown as stale (greyed, with its age) on the ward screen.
    stale_after_s: float = 600.0
    session_ttl_s: float = 8 * 3600.0  # without use
    login_max_failures: int = 5  # per user name within login_window_s (4x per address)
    login_window_s: float = 900.0
    # How series are read back: victoria-metrics (its export API), influxql (InfluxDB 1.x,
    # or 2.x's v1-compatible /query with a DBRP mapping), or auto (ask the server).
    series: str = "auto"
    database: str = ""  # InfluxQL database; "" is the bucket's name
    instance: str = ""  # this process's name in the live feed's consumer group ("": host:port)


@dataclass(frozen=True)
class CareConfig:
    """The care stage (config section ``care``): health profiles, nudges, experiments."""

    enabled: bool = True
    # nudge strategies, caps, quiet hours, experiments and the patients' default time zone
    # (YAML, operators/nudge); "": the packaged nudges-default.yaml
    nudges: str = ""
    guideline: str = "acc-aha-2017"  # the blood-pressure guideline of the hypertension tag
    persons: bool = True  # readings of a merged patient id go to the person (Redis registry)
    commands_poll_s: float = 1.0  # how often the care team's commands are read from Redis


@dataclass(frozen=True)
class Settings:
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    # Outreach waits out a Redis outage on disk here (None: in memory only)
    redis: RedisConfig = field(default_factory=lambda: RedisConfig(spool_dir=DEFAULT_REDIS_SPOOL))
    influx: InfluxConfig = field(default_factory=InfluxConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    care: CareConfig = field(default_factory=CareConfig)
    rules_path: str | None = None  # None: the packaged adult defaults
    detectors: Mapping[str, Any] | None = None


ENV = {
    "VITALSTREAM_MQTT_URL": ("mqtt", "url"),
    "VITALSTREAM_REDIS_URL": ("redis", "url"),
    "VITALSTREAM_INFLUX_URL": ("influx", "url"),
    "VITALSTREAM_INFLUX_TOKEN": ("influx", "token"),
    "VITALSTREAM_INFLUX_ORG": ("influx", "org"),
    "VITALSTREAM_INFLUX_BUCKET": ("influx", "bucket"),
    "VITALSTREAM_STATE_DIR": ("pipeline", "state_dir"),
    "VITALSTREAM_CONSOLE_PORT": ("console", "port"),
}

# config-file section -> (Settings attribute, {file key: dataclass field})
_FILE_KEYS = {
    "mqtt": ("mqtt", {k: k for k in ("url", "topic", "shared_group", "client_id", "qos",
                                     "session_expiry_s", "ca_file")}),
    "redis": ("redis", {k: k for k in ("url", "alerts_stream", "deadletter_stream",
                                       "quarantine_stream", "maxlen", "dedup_ttl_s", "buffer_max",
                                       "retry_initial_s", "retry_max_s", "socket_timeout_s",
                                       "spool_dir", "spool_max_bytes")}),
    "influx": ("influx", {k: k for k in ("url", "token", "org", "bucket", "spool_dir")}),
    "windows": ("pipeline", {"size_s": "window_size_s", "allowed_lateness_s": "allowed_lateness_s"}),
    "metrics": ("pipeline", {"port": "metrics_port"}),
    "state": ("pipeline", {"dir": "state_dir", "snapshot_interval_s": "snapshot_interval_s"}),
    "pipeline": ("pipeline", {f.name: f.name for f in fields(PipelineConfig)}),
    "console": ("console", {f.name: f.name for f in fields(ConsoleConfig)}),
    "care": ("care", {f.name: f.name for f in fields(CareConfig)}),
}


def _set(s: Settings, section: str, key: str, value: Any) -> Settings:
    return replace(s, **{section: replace(getattr(s, section), **{key: value})})


# Values that must lie in a set or a range, beyond their type: (section, field) -> check.
_ALLOWED: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("pipeline", "identity"): (lambda v: v in ("payload", "registry"), "payload or registry"),
    ("mqtt", "qos"): (lambda v: v in (0, 1, 2), "0, 1 or 2"),
    ("pipeline", "workers"): (lambda v: v >= 1, "at least 1"),
    ("pipeline", "shards"): (lambda v: v >= 1, "at least 1"),
    ("pipeline", "window_size_s"): (lambda v: v > 0, "greater than 0"),
    ("pipeline", "snapshot_interval_s"): (lambda v: v > 0, "greater than 0"),
    ("pipeline", "backfill_idle_s"): (lambda v: v > 0, "greater than 0"),
    ("pipeline", "device_rate_per_s"): (lambda v: v is None or 0 < v <= 1e9,
                                        "greater than 0 (at most 1e9)"),
    ("pipeline", "device_burst"): (lambda v: v >= 1, "at least 1"),
    ("pipeline", "metrics_port"): (lambda v: v is None or 0 <= v <= 65535, "a port 0-65535"),
    ("console", "port"): (lambda v: 0 <= v <= 65535, "a port 0-65535"),
    ("console", "series"): (lambda v: v in ("auto", "victoria-metrics", "influxql"),
                            "auto, victoria-metrics or influxql"),
    ("console", "login_max_failures"): (lambda v: v >= 1, "at least 1"),
    ("care", "commands_poll_s"): (lambda v: v > 0, "greater than 0"),
    ("mqtt", "url"): (lambda v: urlsplit(v).scheme in ("mqtt", "mqtts", "tcp", "ssl")
                      and bool(urlsplit(v).hostname), "mqtt://host[:port] or mqtts://..."),
    ("redis", "url"): (lambda v: urlsplit(v).scheme in ("redis", "rediss", "unix"),
                       "redis://host[:port][/db], rediss:// or unix://"),
    ("influx", "url"): (lambda v: urlsplit(v).scheme in ("http", "https")
                        and bool(urlsplit(v).hostname), "http(s)://host[:port]"),
}
for _name in ("allowed_lateness_s", "rule_delay_s", "dedup_horizon_s", "max_clock_skew_s",
              "backfill_after_s", "backfill_max_s", "broker_lost_after_s",
              "future_limit_s", "past_limit_s",
              "idle_grace_s", "evict_after_s", "baseline_ttl_s"):
    _ALLOWED[("pipeline", _name)] = (lambda v: v is None or v >= 0, "0 or more")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field's type (environment strings become numbers), or a ConfigError."""
    args = get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "")
                         and optional and base is not str):
        if optional:
            return None
        raise ConfigError("config", None, "bad_value", f"{where}: a value is required")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif base in (int, float):
        if isinstance(value, str):
            try:
                value = float(value) if base is float else int(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if base is float:
                return float(value)
            if float(value).is_integer():
                return int(value)
    elif base is str:
        if isinstance(value, str):
            return value
    else:
        return value
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[base]
    raise ConfigError("config", None, "bad_value", f"{where}: expected {kind}, got {value!r}")


def _validated(s: Settings, origin: Mapping[tuple[str, str], str]) -> Settings:
    for section in ("mqtt", "redis", "influx", "pipeline", "console", "care"):
        cfg = getattr(s, section)
        hints = get_type_hints(type(cfg))
        changes = {}
        for f in fields(cfg):
            where = origin.get((section, f.name), f"{section}.{f.name}")
            value = _coerce(getattr(cfg, f.name), hints[f.name], where)
            check = _ALLOWED.get((section, f.name))
            if check is not None and value is not None and not check[0](value):
                raise ConfigError("config", None, "bad_value",
                                  f"{where}: {value!r} is not allowed (must be {check[1]})")
            changes[f.name] = value
        s = replace(s, **{section: replace(cfg, **changes)})
    _check_time_limits(s.pipeline, origin)
    return s


def _check_time_limits(p: PipelineConfig, origin: Mapping[tuple[str, str], str]) -> None:
    """Limits that hold between fields: a device-time limit inside the skew, or one that
    cuts the back-fill horizon short, would silently mean something else."""
    if p.max_clock_skew_s is None:
        return  # every device time trusted: no limit applies
    pairs = [("future_limit_s", "max_clock_skew_s"), ("past_limit_s", "max_clock_skew_s")]
    if p.backfill_after_s is not None:
        pairs.append(("past_limit_s", "backfill_max_s"))
    for name, floor in pairs:
        value = getattr(p, name)
        if value is not None and value < getattr(p, floor):
            where = origin.get(("pipeline", name), f"pipeline.{name}")
            raise ConfigError("config", None, "bad_value",
                              f"{where}: {value!r} is below pipeline.{floor} "
                              f"({getattr(p, floor)!r}); raise it or set it to null")


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[tuple[str, str], Any] | None = None,
         option_names: Mapping[tuple[str, str], str] | None = None) -> Settings:
    """Defaults < config file < environment < ``overrides`` (the command line), validated:
    a wrong type or value raises a ConfigError naming the file and key, the variable or
    the option."""
    s = Settings()
    origin: dict[tuple[str, str], str] = {}
    if path is not None:
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            reason = "unreadable" if isinstance(exc, OSError) else "bad_yaml"
            detail = exc.strerror if isinstance(exc, OSError) else str(exc).replace("\n", " ")
            raise ConfigError("config", None, reason, f"{path}: {detail}") from None
        doc = {} if doc is None else doc
        if not isinstance(doc, dict):
            raise ConfigError("config", None, "bad_config", f"{path}: not a mapping of sections")
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
                if (section, k) == ("care", "nudges") and isinstance(v, str) and v:
                    v = str((Path(path).parent / v).resolve())  # like rules: beside the config
                s = _set(s, attr, keys[k], v)
                origin[(attr, keys[k])] = f"{path}: {section}.{k}"
    env = os.environ if env is None else env
    for var, (section, key) in ENV.items():
        if env.get(var):
            s = _set(s, section, key, env[var])
            origin[(section, key)] = var
    for (section, key), v in (overrides or {}).items():
        if v is not None:
            s = _set(s, section, key, v)
            origin[(section, key)] = (option_names or {}).get((section, key),
                                                                f"option for {section}.{key}")
    return _validated(s, origin)


def rules_document(settings: Settings) -> dict:
    """The rules YAML as a dict (packaged adult defaults unless a path is set)."""
    where = settings.rules_path or "packaged rules-default.yaml"
    try:
        if settings.rules_path:
            text = Path(settings.rules_path).read_text()
        else:
            text = resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text()
        doc = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError("rules", None, "unreadable", f"{where}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("rules", None, "bad_yaml",
                          f"{where}: {str(exc).replace(chr(10), ' ')}") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict) or not isinstance(doc.get("rules", []), list):
        raise ConfigError("rules", None, "bad_rules_file", f"{where}: 'rules' must be a list")
    return doc
