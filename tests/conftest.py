"""Shared fixtures: real services on free ports, and the shared reference data.

Services start lazily, once per session, only when a test asks for them.
A missing binary skips those tests on a developer machine but fails them under
CI (env ``CI`` set to anything but "", "0", "false"): CI must never go green by
skipping. Tests that use a service fixture get the ``services`` marker, so
``pytest -m "not services"`` runs without any binary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, NoReturn

import pytest

from vitalstream.testing import shared_dir
from vitalstream.stream.embedded import (
    InfluxDB1,
    Mosquitto,
    RedisServer,
    Service,
    ServiceUnavailable,
    VictoriaMetrics,
)

# pytester runs the fixtures' skip-versus-fail rule in a child pytest (tests/test_services.py).
pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# CI clones the repo next to ../shared, as on a developer machine (/work/main, /work/shared);
# VITALSTREAM_SHARED points elsewhere (same variable as the BLE and Open mHealth tests).
SHARED_DIR = shared_dir()
SERVICE_FIXTURES = frozenset({"mosquitto", "redis_server", "redis_client", "victoria", "influxdb1"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a missing service fails the run; run scripts/setup.sh)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def _run(service: Service) -> Iterator[Service]:
    try:
        service.start()
    except ServiceUnavailable as e:
        _unavailable(str(e))
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    yield from _run(Mosquitto())  # type: ignore[misc]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _run(RedisServer())  # type: ignore[misc]


@pytest.fixture(scope="session")
def victoria() -> Iterator[VictoriaMetrics]:
    yield from _run(VictoriaMetrics())  # type: ignore[misc]


@pytest.fixture(scope="session")
def influxdb1() -> Iterator[InfluxDB1]:
    yield from _run(InfluxDB1())  # type: ignore[misc]


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator["redis.Redis"]:  # noqa: F821
    """A client on database 0, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (reference data, notes), or $VITALSTREAM_SHARED."""
    if not (SHARED_DIR / "reference").is_dir():
        _unavailable(f"shared reference data not found at {SHARED_DIR}/reference")
    return SHARED_DIR


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    return shared_dir / "reference"
