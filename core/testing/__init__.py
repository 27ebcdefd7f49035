"""Test support that ships with the package: services on free ports, a pipeline
harness, and the location of the shared reference data."""

import os
from pathlib import Path


def shared_dir() -> Path:
    """``$VITALSTREAM_SHARED``, else ``shared/`` beside the repository (CI lays it there)."""
    env = os.environ.get("VITALSTREAM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
