"""The distribution maps the design-card folders under ``vitalstream`` and nothing else.

Builds a real wheel, installs it into an empty target directory and imports
from a process whose working directory is outside the repo, so a passing test
cannot be explained by the source tree being on ``sys.path``. The Open mHealth
schemas are package data: a wheel installed in a fresh virtual environment
decodes a shared OMH sample to readings with no source tree and no
``VITALSTREAM_OMH_SCHEMAS`` (before, every OMH message was a ``decoder_crash``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vitalstream.testing import shared_dir

REPO = Path(__file__).resolve().parent.parent
SHARED_OMH = shared_dir() / "reference" / "openmhealth"
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
    # the Open mHealth schemas (all 59 of the shared folder) ship with their licence
    omh = {n.rsplit("/", 1)[1] for n in names if n.startswith("vitalstream/connectors/data/omh/")}
    assert {p.name for p in (SHARED_OMH / "schema" / "omh").glob("*.json")} | {"LICENSE", "NOTICE"} == omh
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


_DECODE_IN_VENV = """
import json, sys
# The system site-packages hold the editable install, whose finder would serve any
# module the wheel lacks from the source tree: drop it, so only the wheel answers.
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", "")]
import vitalstream
from vitalstream.model import Message, Reading
from vitalstream.operators.normalise import Normaliser
from vitalstream.stream.ingest import Ingest

out = []
ingest = Ingest(Normaliser(max_clock_skew_ns=None))
ingest.process(Message("vitalstream/watch-1/omh", open(sys.argv[1], "rb").read(), 0), out)
print(json.dumps({"file": vitalstream.__file__,
                  "readings": [[r.signal.value, r.value, r.unit] for r in out if isinstance(r, Reading)],
                  "dead": [getattr(o, "reason", None) for o in out
                           if type(o).__name__ == "DeadLetter"]}))
"""


def test_wheel_in_a_fresh_venv_decodes_a_shared_open_mhealth_sample(wheel, tmp_path):
    # A venv that sees the system site-packages for the dependencies (jsonschema...,
    # no network here); the wheel goes into the venv's own site-packages, which
    # comes first, and vitalstream.__file__ proves the import is the wheel's.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   capture_output=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True)
    body = json.loads((SHARED_OMH / "test-data/omh/heart-rate/2.0/shouldPass/"
                       "with-temporal-relationship-to-sleep.json").read_text())
    point = {"header": {"id": "s-1", "creation_date_time": "2024-01-01T00:00:00Z",
                        "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
             "body": body}
    sample = tmp_path / "point.json"
    sample.write_text(json.dumps(point))
    run = tmp_path / "cwd"  # outside the repo: the source tree is not on sys.path
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VITALSTREAM_OMH_SCHEMAS")}
    res = subprocess.run([str(py), "-c", _DECODE_IN_VENV, str(sample)], cwd=run, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    site = Path(got["file"]).resolve()
    assert site.is_relative_to(venv.resolve()) and not site.is_relative_to(REPO), got["file"]
    assert got["dead"] == []
    hr = body["heart_rate"]
    assert hr["unit"] == "beats/min"
    assert got["readings"] == [["heart_rate", float(hr["value"]), "/min"]]


def test_editable_install_maps_the_source_folders():
    # CI and scripts/setup.sh install editable; the import must resolve into the repo folders.
    code = ("import vitalstream, vitalstream.operators, vitalstream.stream;"
            "print(vitalstream.__file__); print(vitalstream.operators.__file__)")
    res = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         check=True)
    core, ops = res.stdout.split()
    assert Path(core) == REPO / "core" / "__init__.py"
    assert Path(ops) == REPO / "operators" / "__init__.py"
