"""Test doubles that ship with the package, so tests do not copy them: the fake clock
and the location of the shared reference data. (Private service processes are product
code, in ``vitalstream.stream.embedded``; the bounded pipeline run is ``vitalstream.stream.bounded``.)"""

import os
import time
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

from vitalstream.clock import FakeClock

__all__ = ["FakeClock", "metric", "shared_dir", "wait_for"]

T = TypeVar("T")


def wait_for(cond: Callable[[], T], what: str, timeout_s: float = 20.0, every_s: float = 0.1) -> T:
    """Poll ``cond`` until it returns something truthy, and return that; AssertionError
    naming ``what`` after ``timeout_s``. For end-to-end tests on real services: a condition
    polled with a deadline, never a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def shared_dir() -> Path:
    """``$VITALSTREAM_SHARED``, else ``shared/`` beside the repository (CI lays it there)."""
    env = os.environ.get("VITALSTREAM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def metric(port: int, name: str) -> float:
    """The value of an unlabelled sample ``name`` on a local ``/metrics`` endpoint; -1.0
    when the endpoint does not answer (yet) or does not have it."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0
