"""The distribution maps the design-card folders under ``vitalstream`` and nothing else.

Builds a real wheel, installs it into an empty target directory and imports
from a process whose working directory is outside the repo, so a passing test
cannot be explained by the source tree being on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"core": "vitalstream", "operators": "vitalstream.operators", "stream": "vitalstream.stream",
           "connectors": "vitalstream.connectors", "sinks": "vitalstream.sinks",
           "simulators": "vitalstream.simulators"}


def _expected_modules() -> set[str]:
    mods = set()
    for folder, pkg in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            rel = path.relative_to(REPO / folder).with_suffix("")
            mods.add(".".join([pkg, *rel.parts]))
    return mods


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(REPO)], check=True, capture_output=True)
    (whl,) = out.glob("vitalstream-*.whl")
    return whl


def test_wheel_holds_every_module_under_the_vitalstream_namespace_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"vitalstream"}
    in_wheel = {n[:-3].replace("/", ".") for n in names if n.endswith(".py")}
    assert _expected_modules() <= in_wheel, sorted(_expected_modules() - in_wheel)
    assert "vitalstream/data/rules-default.yaml" in names
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "vitalstream = vitalstream.stream.cli:main" in entry


def test_wheel_install_imports_outside_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import vitalstream, vitalstream.operators.window as w, vitalstream.stream.ingest, "
            "vitalstream.connectors.codecs, vitalstream.sinks.lineproto, vitalstream.simulators.scenario;"
            "from vitalstream.stream.settings import rules_document, Settings;"
            "print(vitalstream.__file__); print(len(rules_document(Settings())['rules']))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True)
    file_line, n_rules = res.stdout.split()
    assert Path(file_line).is_relative_to(target)
    assert int(n_rules) > 5


def test_editable_install_maps_the_source_folders():
    # CI and scripts/setup.sh install editable; the import must resolve into the repo folders.
    code = ("import vitalstream, vitalstream.operators, vitalstream.stream;"
            "print(vitalstream.__file__); print(vitalstream.operators.__file__)")
    res = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         check=True)
    core, ops = res.stdout.split()
    assert Path(core) == REPO / "core" / "__init__.py"
    assert Path(ops) == REPO / "operators" / "__init__.py"
