"""docker-compose.yml and deploy/ hang together (no Docker here: parsed with PyYAML).

Checks what would otherwise fail only at ``docker compose up``: a depends_on on
a service that does not exist, a mounted ./deploy file that is missing, ports
that differ from the documented list, a Grafana panel on a datasource that is
not provisioned, a site.yaml the config loader refuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vitalstream.stream.settings import load

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"


def _default(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_services_present(services: dict[str, Any]) -> None:
    assert set(services) == {"influxdb", "grafana", "mosquitto", "redis", "prometheus", "vitalstream"}


def test_depends_on_names_existing_services(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), f"{name} depends on {set(deps) - set(services)}"


def test_every_mounted_deploy_file_exists(compose: dict[str, Any], services: dict[str, Any]) -> None:
    mounts = [(n, v.split(":")[0]) for n, s in services.items() for v in s.get("volumes", [])]
    binds = [(n, src) for n, src in mounts if src.startswith("./")]
    assert {src for _, src in binds} >= {"./deploy/mosquitto.conf", "./deploy/prometheus.yml",
                                         "./deploy/site.yaml", "./deploy/grafana/dashboards/vitalstream.json"}
    for name, src in binds:
        assert (ROOT / src).is_file(), f"{name} mounts missing {src}"
    named = {src for _, src in mounts if not src.startswith(("./", "/"))}
    assert named <= set(compose["volumes"])


def test_ports_match_the_documented_list_and_stay_on_loopback(services: dict[str, Any]) -> None:
    header = next(line for line in COMPOSE_FILE.read_text().splitlines() if "influxdb 8086 |" in line)
    documented = {m.group(1).split()[0]: m.group(2) for m in re.finditer(r"([a-z][a-z ]*?) (\d+)", header)}
    assert documented == {"influxdb": "8086", "grafana": "3000", "mosquitto": "1883", "redis": "6379",
                          "prometheus": "9090", "vitalstream": "9108"}
    published = {n: s["ports"] for n, s in services.items()}
    assert published == {n: [f"127.0.0.1:{p}:{p}"] for n, p in documented.items()}


def test_influxdb_initialises_org_bucket_and_dev_token(services: dict[str, Any]) -> None:
    env = {k: _default(v) for k, v in services["influxdb"]["environment"].items()}
    assert services["influxdb"]["image"] == "influxdb:2.7"
    assert (env["DOCKER_INFLUXDB_INIT_MODE"], env["DOCKER_INFLUXDB_INIT_ORG"],
            env["DOCKER_INFLUXDB_INIT_BUCKET"], env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]) == (
        "setup", "vitalstream", "vitals", "vitalstream-dev-token")


def test_vitalstream_service_env_and_command(services: dict[str, Any]) -> None:
    svc = services["vitalstream"]
    assert svc["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert svc["command"] == ["vitalstream", "run", "--config", "/etc/vitalstream/site.yaml"]
    assert "./deploy/site.yaml:/etc/vitalstream/site.yaml:ro" in svc["volumes"]
    # the durable state (site.yaml state.dir) lives in the service's named volume
    assert "vitalstream-data:/var/lib/vitalstream" in svc["volumes"]
    assert load(ROOT / "deploy/site.yaml", env={}).pipeline.state_dir.startswith("/var/lib/vitalstream/")
    assert {k: _default(v) for k, v in svc["environment"].items()} == {
        "VITALSTREAM_MQTT_URL": "mqtt://vitalstream:vitalstream-dev-mqtt@mosquitto:1883",
        "VITALSTREAM_REDIS_URL": "redis://redis:6379/0",
        "VITALSTREAM_INFLUX_URL": "http://influxdb:8086",
        "VITALSTREAM_INFLUX_TOKEN": "vitalstream-dev-token",
        "VITALSTREAM_INFLUX_ORG": "vitalstream",
        "VITALSTREAM_INFLUX_BUCKET": "vitals",
    }


def test_site_yaml_is_accepted_by_the_config_loader() -> None:
    s = load(ROOT / "deploy/site.yaml", env={})
    assert (s.mqtt.url, s.mqtt.topic, s.mqtt.shared_group, s.mqtt.client_id) == (
        "mqtt://mosquitto:1883", "vitalstream/+/+", "vitalstream", "vitalstream-1")
    assert s.redis.url == "redis://redis:6379/0"
    assert (s.influx.url, s.influx.token, s.influx.org, s.influx.bucket) == (
        "http://influxdb:8086", "vitalstream-dev-token", "vitalstream", "vitals")
    assert (s.pipeline.window_size_s, s.pipeline.allowed_lateness_s, s.pipeline.metrics_port) == (60, 10, 9108)
    assert s.rules_path is None


def test_prometheus_scrapes_the_metrics_port_of_site_yaml() -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    port = yaml.safe_load((ROOT / "deploy/site.yaml").read_text())["metrics"]["port"]
    assert (job["metrics_path"], job["static_configs"][0]["targets"]) == ("/metrics", [f"vitalstream:{port}"])


def _mosquitto_directives() -> dict[str, str]:
    directives: dict[str, str] = {}
    for line in (ROOT / "deploy/mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            directives.setdefault(key, value)
    return directives


def test_mosquitto_conf_listens_on_1883_with_persistence() -> None:
    directives = _mosquitto_directives()
    assert (directives["listener"], directives["persistence"], directives["persistence_location"]) == (
        "1883", "true", "/mosquitto/data/")


def test_mosquitto_requires_login_and_mounts_its_password_and_acl_files(services: dict[str, Any]) -> None:
    directives = _mosquitto_directives()
    assert directives["allow_anonymous"] == "false"
    mounts = dict(v.rsplit(":", 1)[0].split(":") for v in services["mosquitto"]["volumes"]
                  if v.startswith("./"))
    # each file the config names in the container is a mounted file of the repository
    assert mounts["./deploy/mosquitto.passwd"] == directives["password_file"]
    assert mounts["./deploy/mosquitto.acl"] == directives["acl_file"]


def _passwd_matches(line: str, password: str) -> bool:
    """mosquitto 2's ``$7$`` hash: PBKDF2-HMAC-SHA512, ``$7$<iterations>$<b64 salt>$<b64 hash>``."""
    import base64
    import hashlib

    _, seven, iterations, salt, digest = line.split(":", 1)[1].split("$")
    assert seven == "7", line
    return hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                               int(iterations)) == base64.b64decode(digest)


def test_pipeline_mqtt_credentials_are_in_the_dev_password_file(services: dict[str, Any]) -> None:
    from urllib.parse import unquote, urlsplit

    url = urlsplit(_default(services["vitalstream"]["environment"]["VITALSTREAM_MQTT_URL"]))
    entries = {line.split(":", 1)[0]: line for line in
               (ROOT / "deploy/mosquitto.passwd").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert _passwd_matches(entries[unquote(url.username)], unquote(url.password))
    assert not _passwd_matches(entries[unquote(url.username)], "wrong")
    # the ACL grants that user the read of every device topic
    acl = (ROOT / "deploy/mosquitto.acl").read_text()
    assert f"user {url.username}\ntopic read vitalstream/#" in acl


def test_dashboard_uses_only_provisioned_datasources() -> None:
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/vitalstream.yaml").read_text())
    uids = {d["uid"] for d in prov["datasources"]}
    influx = next(d for d in prov["datasources"] if d["type"] == "influxdb")
    # InfluxQL on InfluxDB 2.x: bucket "vitals" is database "vitals" (virtual DBRP mapping).
    assert (influx["url"], influx["jsonData"]["dbName"]) == ("http://influxdb:8086", "vitals")
    dash = json.loads((ROOT / "deploy/grafana/dashboards/vitalstream.json").read_text())
    used = {p["datasource"]["uid"] for p in dash["panels"]}
    used |= {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]}
    used |= {v["datasource"]["uid"] for v in dash["templating"]["list"]}
    assert used == uids == {"vitalstream-influx", "vitalstream-prometheus"}


def test_grafana_dashboard_provider_reads_the_mounted_dashboard(services: dict[str, Any]) -> None:
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/vitalstream.yaml").read_text())
    (provider,) = prov["providers"]
    targets = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert f"{provider['options']['path']}/vitalstream.json" in targets
    assert {"/etc/grafana/provisioning/datasources/vitalstream.yaml",
            "/etc/grafana/provisioning/dashboards/vitalstream.yaml"} <= targets
