"""Offline registry of the Open mHealth JSON schemas, and the time and unit vocabularies they fix.

Every file of the schema folder is registered under
its canonical URI ``https://w3id.org/openmhealth/schemas/omh/<file>`` with
network retrieval disabled (the approach of ``shared/reference/openmhealth/check.py``):
a payload must never make the pipeline fetch a URL. Each schema is validated
through its own draft (draft-04 or draft-07) with ``date-time`` and ``uri``
format checking, without which several invalid samples would pass.

Version resolution (``OmhSchemas.resolve``): a body declared ``<name> M.m`` is
validated against the newest local ``<name>-M.k.json`` with ``k >= m``
(upstream's rule: data valid for 1.0 stays valid for 1.1). The newest
blood-pressure (4.0), body-temperature (4.0) and blood-glucose (4.0) schemas
``$ref`` IEEE 1752.1 schemas that are not vendored, so they cannot resolve
offline; a body declaring one of them is validated against the newest version
of the same name that resolves locally (blood-pressure 3.1, body-temperature
3.0, blood-glucose 3.0). Those versions describe the same body layout (the
upstream 4.0 samples all have the 3.x shape), so this is a best-effort check,
not an IEEE 1752.1 conformance check.

The folder is ``$VITALSTREAM_OMH_SCHEMAS`` if set, else the copy shipped as
package data, ``vitalstream/connectors/data/omh/`` (the shared reference
``openmhealth/schema/omh/`` files byte for byte, Apache-2.0, with their LICENSE
and a NOTICE of provenance and changes): an installed wheel or the Docker image
validates offline without the source tree.

Date-times (the ``date-time`` format) are read by the project's one parser,
``vitalstream.timeutil.parse_iso8601_ns`` (RFC 3339 5.6, zone required).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

from vitalstream.timeutil import format_iso8601_ns, parse_iso8601_ns

BASE_URI = "https://w3id.org/openmhealth/schemas/omh/"
ENV_VAR = "VITALSTREAM_OMH_SCHEMAS"
DATA_POINT_SCHEMA = "data-point-1.0.json"
_DRAFT7_URI = "http://json-schema.org/draft-07/schema#"
_FILE = re.compile(r"^(?P<name>.+)-(?P<major>\d+)\.(?P<minor>\d+)\.json$")
_VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)$")

NS_PER_S = 1_000_000_000
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$")
PACKAGE_DIRECTORY = Path(__file__).resolve().parent / "data" / "omh"

FORMATS = FormatChecker(formats=())

# RFC 3339 section 5.6 date-time: the zone is mandatory. date-time-1.0.json says
# a missing zone means UTC, but its "format": "date-time" makes such a value
# invalid, and guessing a zone for a clinical time is worse than rejecting it.
# Kept importable under the names this module used to define.
parse_date_time = parse_iso8601_ns
format_date_time = format_iso8601_ns


_NS_PER_DAY = 86_400 * NS_PER_S
# duration-unit-value-1.0 units in ns. Its description names the UCUM codes, so
# Mo and yr take UCUM's definitions: mean Julian month mo_j = 30.4375 d and
# Julian year a_j = 365.25 d (calendar months differ in length).
DURATION_NS: dict[str, Fraction] = {
    "ps": Fraction(1, 1000), "ns": Fraction(1), "us": Fraction(10**3), "ms": Fraction(10**6),
    "sec": Fraction(NS_PER_S), "min": Fraction(60 * NS_PER_S), "h": Fraction(3600 * NS_PER_S),
    "d": Fraction(_NS_PER_DAY), "wk": Fraction(7 * _NS_PER_DAY),
    "Mo": Fraction(_NS_PER_DAY) * Fraction("30.4375"), "yr": Fraction(_NS_PER_DAY) * Fraction("365.25"),
}
# length-unit-value-1.0 units in metres (international inch, foot, yard, mile of 1959)
LENGTH_M: dict[str, float] = {
    "fm": 1e-15, "pm": 1e-12, "nm": 1e-9, "um": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0,
    "km": 1e3, "in": 0.0254, "ft": 0.3048, "yd": 0.9144, "mi": 1609.344,
}


def duration_to_ns(value: float, unit: str) -> int:
    """Nanoseconds of a duration-unit-value, rounded to the nearest ns.

    >>> duration_to_ns(1.5, "h"), duration_to_ns(1, "Mo")
    (5400000000000, 2629800000000000)
    """
    return round(Fraction(value) * DURATION_NS[unit])


def duration_unit_value(ns: int) -> dict:
    """Exact duration-unit-value of ``ns``: the coarsest unit that divides it evenly.

    >>> duration_unit_value(90 * 60 * NS_PER_S)
    {'value': 90, 'unit': 'min'}
    """
    for unit in ("d", "h", "min", "sec", "ms", "us"):
        per = int(DURATION_NS[unit])
        if ns % per == 0:
            return {"value": ns // per, "unit": unit}
    return {"value": ns, "unit": "ns"}


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "format" only constrains strings
    parse_date_time(value)
    return True


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def _no_network(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@dataclass(frozen=True, slots=True)
class Problem:
    """The most relevant validation error: JSON path of the offending value, and why."""

    path: str
    message: str

    def __str__(self) -> str:
        message = self.message if len(self.message) <= 300 else self.message[:297] + "..."
        return f"{self.path}: {message}"


class OmhSchemas:
    """The schema files of one folder, a no-network registry over them, and cached validators."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, dict] = {
            p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(directory.glob("*.json"))
        }
        if DATA_POINT_SCHEMA not in self.files:
            raise FileNotFoundError(f"{DATA_POINT_SCHEMA} not found in {directory}")
        self.registry = Registry(retrieve=_no_network).with_resources(
            (BASE_URI + name, Resource.from_contents(doc, default_specification=DRAFT7))
            for name, doc in self.files.items())
        self.external: dict[str, frozenset[str]] = {}
        self._versions: dict[str, list[tuple[int, int, str]]] = {}
        for filename in self.files:
            m = _FILE.match(filename)
            if m is None:
                continue  # wildcard copies (name-M.x.json) are only $ref targets
            self._versions.setdefault(m["name"], []).append(
                (int(m["major"]), int(m["minor"]), filename))
            ext = self._external_refs(filename, set())
            if ext:
                self.external[filename] = frozenset(ext)
        self._validators: dict[str, Any] = {}

    def _external_refs(self, filename: str, seen: set[str]) -> set[str]:
        if filename in seen:
            return set()
        seen.add(filename)
        found: set[str] = set()
        for ref in _refs(self.files[filename]):
            target = ref.split("#", 1)[0]
            if not target:
                continue
            target = target.removeprefix(BASE_URI)
            if "://" in target or target not in self.files:
                found.add(ref.split("#", 1)[0])
            else:
                found |= self._external_refs(target, seen)
        return found

    def resolve(self, name: str, version: str) -> str | None:
        """Local schema file to validate a body declared ``name``/``version`` against, or None."""
        m = _VERSION.match(version) if isinstance(version, str) else None
        known = self._versions.get(name)
        if m is None or not known:
            return None
        major, minor = int(m["major"]), int(m["minor"])
        same_major = [(mi, f) for ma, mi, f in known if ma == major and mi >= minor]
        local = [(mi, f) for mi, f in same_major if f not in self.external]
        if local:
            return max(local)[1]
        if not same_major:
            return None  # unknown version: guessing a schema would validate nothing useful
        older = [(ma, mi, f) for ma, mi, f in known
                 if (ma, mi) < (major, minor) and f not in self.external]
        return max(older)[2] if older else None

    def newest_local(self, name: str) -> str | None:
        """Newest version of ``name`` whose references all resolve offline."""
        local = [(ma, mi, f) for ma, mi, f in self._versions.get(name, ())
                 if f not in self.external]
        return max(local)[2] if local else None

    def _validator(self, filename: str) -> Any:
        v = self._validators.get(filename)
        if v is None:
            # Validate through a $ref to the file's URI so that its relative $refs
            # resolve against the folder, under the file's own draft.
            draft = self.files[filename].get("$schema", _DRAFT7_URI)
            root = {"$schema": draft, "$ref": BASE_URI + filename}
            v = validator_for(root)(root, registry=self.registry, format_checker=FORMATS)
            self._validators[filename] = v
        return v

    def problem(self, filename: str, instance: object, path_prefix: str = "$") -> Problem | None:
        """The best-matching validation error of ``instance`` against ``filename``, or None."""
        err: ValidationError | None = best_match(self._validator(filename).iter_errors(instance))
        if err is None:
            return None
        return Problem(path_prefix + err.json_path[1:], err.message)


def default_directory() -> Path:
    """``$VITALSTREAM_OMH_SCHEMAS`` if set, else the schemas shipped in the package."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return PACKAGE_DIRECTORY


@functools.cache
def _load(directory: str) -> OmhSchemas:
    return OmhSchemas(Path(directory))


def default_schemas() -> OmhSchemas:
    """The schemas of ``default_directory()``, loaded once per folder."""
    return _load(str(default_directory().resolve()))
