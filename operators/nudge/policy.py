"""``NudgePolicy``: the frozen config of the nudge engine, read from YAML.

The format is documented in the package docstring (``vitalstream.operators.nudge``);
the packaged default is ``vitalstream/data/nudges-default.yaml``.

>>> p = NudgePolicy.default()
>>> [s.name for s in p.strategies][:2], p.timezone
(['bp-missing', 'glucose-after-meal'], 'Europe/London')
>>> NudgePolicy.from_yaml("strategies: [{name: x, when: {tag_set: a}, send: {kind: sms, channel: sms}}]")
Traceback (most recent call last):
...
vitalstream.errors.ConfigError: nudge-policy: bad_policy: strategy 'x': send.kind: 'sms' is not one of patient-reminder, care-task
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vitalstream.errors import ConfigError
from vitalstream.operators.nudge.logic import NudgeLogic, NudgeState
from vitalstream.operators.nudge.strategy import (STEP, Cap, QuietHours, Strategy, bad, mapping,
                                                  seconds, zone)

TOP = ("timezone", "quiet_hours", "caps", "digest_s", "max_delay_s", "strategies")


@dataclass(frozen=True)
class NudgePolicy:
    """Strategies (in priority order), caps, quiet hours and digest window of every patient."""

    strategies: tuple[Strategy, ...]
    timezone: str = "UTC"
    quiet_hours: QuietHours | None = None
    caps: tuple[Cap, ...] = ()
    digest_s: int = 0

    @classmethod
    def from_dict(cls, doc: Any) -> "NudgePolicy":
        doc = mapping(doc, "policy", TOP, ("strategies",))
        tz = zone(doc.get("timezone", "UTC"), "timezone")
        quiet = None if doc.get("quiet_hours") is None else \
            QuietHours.from_dict(doc["quiet_hours"], "quiet_hours")
        caps = doc.get("caps") or []
        if not isinstance(caps, list):
            raise bad("caps", "must be a list")
        digest = seconds(doc.get("digest_s", 0), "digest_s", zero=True)
        max_delay = doc.get("max_delay_s")
        max_delay = None if max_delay is None else seconds(max_delay, "max_delay_s", zero=True)
        rows = doc["strategies"]
        if not isinstance(rows, list) or not rows:
            raise bad("strategies", "must be a non-empty list")
        strategies = tuple(Strategy.from_dict(d, i, max_delay_s=max_delay) for i, d in enumerate(rows))
        names = [s.name for s in strategies]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise bad(f"strategy {dup!r}", "name used twice (ids and state are by name)")
        return cls(strategies, tz, quiet, tuple(Cap.from_dict(c, f"caps[{i}]")
                                                for i, c in enumerate(caps)), digest)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike) -> "NudgePolicy":
        """From a file path, or from YAML text (a string with no such file)."""
        where = str(source)
        try:
            if isinstance(source, os.PathLike) or ("\n" not in source and os.path.isfile(source)):
                text = Path(source).read_text()
            else:
                text, where = str(source), "policy text"
            doc = yaml.safe_load(text)
        except OSError as exc:
            raise ConfigError(STEP, None, "unreadable", f"{where}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(STEP, None, "bad_yaml",
                              f"{where}: {str(exc).replace(chr(10), ' ')}") from None
        return cls.from_dict(doc)

    @classmethod
    def default(cls) -> "NudgePolicy":
        """The packaged policy (``vitalstream/data/nudges-default.yaml``)."""
        text = resources.files("vitalstream").joinpath("data/nudges-default.yaml").read_text()
        return cls.from_yaml(text)

    def build(self, resume_state: NudgeState | None = None, *, key: str = "") -> NudgeLogic:
        if resume_state is not None and not isinstance(resume_state, NudgeState):
            raise TypeError(f"cannot resume a nudge logic from {type(resume_state).__name__}")
        return NudgeLogic(self, NudgeState() if resume_state is None else resume_state, key)
