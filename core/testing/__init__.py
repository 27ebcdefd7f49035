"""Test doubles that ship with the package, so tests do not copy them: the fake clock
and the location of the shared reference data. (Private service processes are product
code, in ``vitalstream.stream.embedded``; the bounded pipeline run is ``vitalstream.stream.bounded``.)"""

import os
from pathlib import Path

from vitalstream.clock import FakeClock

__all__ = ["FakeClock", "shared_dir"]


def shared_dir() -> Path:
    """``$VITALSTREAM_SHARED``, else ``shared/`` beside the repository (CI lays it there)."""
    env = os.environ.get("VITALSTREAM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
