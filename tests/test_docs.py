"""The examples in docstrings are run: a documented example that no longer holds fails here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import vitalstream
import vitalstream.operators

# Every module of core/ and operators/ (found on disk, so a new module is covered
# without editing this list), plus the named connector and sink modules.
_CORE = [m.name for m in pkgutil.walk_packages(vitalstream.__path__, "vitalstream.")
         if m.name != "vitalstream.__main__"]  # importing __main__ runs the CLI
_OPERATORS = [m.name for m in pkgutil.walk_packages(vitalstream.operators.__path__,
                                                    "vitalstream.operators.")]
_OTHERS = ["vitalstream.connectors.codecs", "vitalstream.connectors.limits",
           "vitalstream.connectors.mqtt",
           "vitalstream.sinks.lineproto", "vitalstream.stream.console.layout",
           "vitalstream.connectors.persons", "vitalstream.simulators.adherence",
           "vitalstream.simulators.history", "vitalstream.stream.console.profiles",
           "vitalstream.stream.care_sim", "vitalstream.stream.experiment_cli",
           "vitalstream.sinks.redis_streams",
           "vitalstream.stream.experiment_report"]
MODULES = ["vitalstream", "vitalstream.operators"] + _CORE + _OPERATORS + _OTHERS


def _run(name: str) -> doctest.TestResults:
    mod = importlib.import_module(name)
    return doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False, report=False)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name):
    res = _run(name)
    assert res.failed == 0, f"{res.failed} of {res.attempted} doctest examples failed in {name}"
    src = Path(importlib.import_module(name).__file__).read_text()
    if ">>> " in src:
        assert res.attempted > 0, f"{name} has examples that doctest did not find"


@pytest.mark.parametrize("name", ["vitalstream.errors", "vitalstream.operators.clock",
                                  "vitalstream.operators.dedup", "vitalstream.operators.window",
                                  "vitalstream.operators.normalise",
                                  "vitalstream.connectors.codecs", "vitalstream.connectors.mqtt"])
def test_documented_modules_keep_their_examples(name):
    assert _run(name).attempted > 0


def test_doctests_found_across_packages():
    total = sum(_run(n).attempted for n in MODULES)
    assert total >= 20
    assert len(_CORE) >= 5 and len(_OPERATORS) >= 8
