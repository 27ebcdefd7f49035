"""The parts of a nudge policy, each parsed and checked from its YAML mapping.

Every parser names where it is (``strategy 'bp-missing': when.no_reading.for_s``) in
the ``ConfigError`` it raises, because a policy file is written by hand and the
person fixing it needs the strategy and the key, not a ``KeyError``.

>>> s = Strategy.from_dict({"name": "welcome", "when": {"tag_set": "hypertension"},
...                         "send": {"kind": "care-task", "channel": "care-team"}}, 0)
>>> s.trigger.kind, s.trigger.tag, s.send.channel
('tag_set', 'hypertension', 'care-team')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalstream.care import CARE_TASK, PATIENT_REMINDER
from vitalstream.errors import ConfigError
from vitalstream.operators.experiment.assign import Experiment
from vitalstream.signals import Signal

STEP = "nudge-policy"
KINDS = (PATIENT_REMINDER, CARE_TASK)
EVENT_KINDS = ("visit", "meal", "enrol", "leave", "manual-tag", "clear-tag", "timezone")
TRIGGERS = ("tag_set", "no_reading", "after_event", "schedule")
PERIODS = ("day", "week")
SIGNALS = frozenset(s.value for s in Signal)


def bad(where: str, why: str) -> ConfigError:
    return ConfigError(STEP, None, "bad_policy", f"{where}: {why}")


def mapping(x: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> Mapping:
    """``x`` as a mapping with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(x, Mapping):
        raise bad(where, f"must be a mapping, not {type(x).__name__}")
    unknown = sorted(set(map(str, x)) - set(allowed))
    if unknown:
        raise bad(where, f"unknown key {unknown[0]!r} (known: {', '.join(allowed)})")
    for k in required:
        if k not in x:
            raise bad(where, f"missing key {k!r}")
    return x


def seconds(x: Any, where: str, *, zero: bool = False) -> int:
    """A whole number of seconds, > 0 (>= 0 with ``zero``); bools are not numbers here."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x):
        raise bad(where, f"must be a whole number of seconds, not {x!r}")
    if x < 0 or (x == 0 and not zero):
        raise bad(where, f"must be {'>= 0' if zero else '> 0'}, not {x!r}")
    return int(x)


def text(x: Any, where: str) -> str:
    if not isinstance(x, str) or not x.strip():
        raise bad(where, f"must be a non-empty string, not {x!r}")
    return x


def signal(x: Any, where: str) -> str:
    if x not in SIGNALS:
        raise bad(where, f"unknown signal {x!r} (known: {', '.join(sorted(SIGNALS))})")
    return x


def zone(x: Any, where: str) -> str:
    """An IANA zone name that zoneinfo knows."""
    if not isinstance(x, str) or not x:
        raise bad(where, f"must be an IANA zone name, not {x!r}")
    try:
        ZoneInfo(x)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad(where, f"unknown time zone {x!r}") from None
    return x


def clock_time(x: Any, where: str) -> time:
    """"HH:MM" (24 h). YAML 1.1 reads an unquoted 21:00 as the number 1260 (sexagesimal),
    so a number is refused with a hint rather than guessed."""
    if not isinstance(x, str):
        raise bad(where, f"must be a quoted \"HH:MM\" string, not {x!r}")
    parts = x.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise bad(where, f"must be \"HH:MM\", not {x!r}")
    h, m = int(parts[0]), int(parts[1])
    if h > 23 or m > 59:
        raise bad(where, f"no such time of day: {x!r}")
    return time(h, m)


@dataclass(frozen=True)
class Send:
    """What a nudge is: its kind, the channel it goes out on and its text."""

    kind: str
    channel: str
    message: str

    @classmethod
    def from_dict(cls, d: Any, where: str, *, name: str) -> "Send":
        d = mapping(d, where, ("kind", "channel", "message"), ("kind", "channel"))
        kind = d["kind"]
        if kind not in KINDS:
            raise bad(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        channel = text(d["channel"], f"{where}.channel")
        if channel == "*":
            raise bad(f"{where}.channel", "'*' is for caps, not a channel to send on")
        message = text(d.get("message", name), f"{where}.message")
        return cls(kind, channel, message)

    def override(self, d: Any, where: str) -> "Send":
        d = mapping(d, where, ("kind", "channel", "message"))
        merged = {"kind": self.kind, "channel": self.channel, "message": self.message, **d}
        return Send.from_dict(merged, where, name=self.message)


@dataclass(frozen=True)
class Trigger:
    """When a strategy fires (one of ``TRIGGERS``), and for whom (``programme``)."""

    kind: str
    programme: str | None = None
    tag: str = ""  # tag_set
    signal: str = ""  # no_reading: the signal that stopped; after_event+expect: the one expected
    for_s: int = 0  # no_reading
    event: str = ""  # after_event
    within_s: int = 0  # after_event + expect
    delay_s: int = 0  # after_event + delay_s
    every_s: int = 0  # schedule

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Trigger":
        d = mapping(d, where, TRIGGERS + ("programme", "expect", "delay_s"))
        found = [k for k in TRIGGERS if k in d]
        if len(found) != 1:
            raise bad(where, f"needs exactly one of {', '.join(TRIGGERS)}, found {found or 'none'}")
        kind = found[0]
        prog = d.get("programme")
        if prog is not None:
            prog = text(prog, f"{where}.programme")
        if kind != "after_event" and ("expect" in d or "delay_s" in d):
            raise bad(where, f"'expect' and 'delay_s' go with after_event, not {kind}")
        w = f"{where}.{kind}"
        v = d[kind]
        if kind == "tag_set":
            return cls(kind, prog, tag=text(v, w))
        if kind == "no_reading":
            m = mapping(v, w, ("signal", "for_s"), ("signal", "for_s"))
            return cls(kind, prog, signal=signal(m["signal"], f"{w}.signal"),
                       for_s=seconds(m["for_s"], f"{w}.for_s"))
        if kind == "schedule":
            m = mapping(v, w, ("every_s",), ("every_s",))
            return cls(kind, prog, every_s=seconds(m["every_s"], f"{w}.every_s"))
        if v not in EVENT_KINDS or v == "timezone":
            raise bad(w, f"{v!r} is not an event kind ({', '.join(EVENT_KINDS[:-1])})")
        if ("expect" in d) == ("delay_s" in d):
            raise bad(where, "after_event needs exactly one of 'expect' or 'delay_s'")
        if "expect" in d:
            m = mapping(d["expect"], f"{where}.expect", ("signal", "within_s"), ("signal", "within_s"))
            return cls(kind, prog, event=v, signal=signal(m["signal"], f"{where}.expect.signal"),
                       within_s=seconds(m["within_s"], f"{where}.expect.within_s"))
        return cls(kind, prog, event=v, delay_s=seconds(d["delay_s"], f"{where}.delay_s", zero=True))


@dataclass(frozen=True)
class DoneIf:
    """The patient already did what the nudge asks: a reading of ``signal`` after the
    trigger event (``since="trigger"``) or after the nudge fell due (``since="due"``)."""

    signal: str
    since: str = "trigger"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "DoneIf":
        d = mapping(d, where, ("reading", "since"), ("reading",))
        since = d.get("since", "trigger")
        if since not in ("trigger", "due"):
            raise bad(f"{where}.since", f"{since!r}: 'trigger' or 'due'")
        return cls(signal(d["reading"], f"{where}.reading"), since)


@dataclass(frozen=True)
class Cap:
    """At most ``max`` messages on ``channel`` ("*": all channels together) per local
    calendar day or ISO week of the patient."""

    channel: str
    per: str
    max: int

    @property
    def label(self) -> str:
        return f"{self.channel}/{self.per}"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Cap":
        d = mapping(d, where, ("channel", "per", "max"), ("channel", "per", "max"))
        if d["per"] not in PERIODS:
            raise bad(f"{where}.per", f"{d['per']!r}: one of {', '.join(PERIODS)}")
        n = d["max"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad(f"{where}.max", f"must be a whole number >= 0, not {n!r}")
        return cls(text(d["channel"], f"{where}.channel"), d["per"], n)


@dataclass(frozen=True)
class QuietHours:
    """Local times [start, end) when nothing is sent on ``channels`` (empty: all);
    ``start`` after ``end`` spans midnight."""

    start: time
    end: time
    channels: tuple[str, ...] = ()

    def applies(self, channel: str) -> bool:
        return not self.channels or channel in self.channels

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "QuietHours":
        d = mapping(d, where, ("start", "end", "channels"), ("start", "end"))
        start, end = clock_time(d["start"], f"{where}.start"), clock_time(d["end"], f"{where}.end")
        if start == end:
            raise bad(where, "start and end are equal (leave quiet_hours out for none)")
        ch = d.get("channels", [])
        if not isinstance(ch, list) or not all(isinstance(c, str) and c for c in ch):
            raise bad(f"{where}.channels", f"must be a list of channel names, not {ch!r}")
        return cls(start, end, tuple(ch))


@dataclass(frozen=True)
class Strategy:
    """One row of the policy: a trigger, what to send, and what may stop it."""

    name: str
    priority: int  # position in the list: 0 is the highest
    trigger: Trigger
    send: Send
    repeat_s: int | None = None
    done_if: DoneIf | None = None
    max_delay_s: int | None = None
    experiment: Experiment | None = None
    variant_sends: tuple[tuple[str, Send], ...] = field(default=())

    def send_for(self, variant: str) -> Send:
        return dict(self.variant_sends).get(variant, self.send)

    @classmethod
    def from_dict(cls, d: Any, priority: int, *, max_delay_s: int | None = None) -> "Strategy":
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str) or not d["name"]:
            raise bad(f"strategies[{priority}]", "each strategy needs a 'name'")
        name = d["name"]
        where = f"strategy {name!r}"
        mapping(d, where, ("name", "when", "send", "repeat_s", "done_if", "max_delay_s",
                           "experiment"), ("when", "send"))
        trigger = Trigger.from_dict(d["when"], f"{where}: when")
        send = Send.from_dict(d["send"], f"{where}: send", name=name)
        repeat = d.get("repeat_s")
        repeat = None if repeat is None else seconds(repeat, f"{where}: repeat_s")
        done = None if d.get("done_if") is None else DoneIf.from_dict(d["done_if"], f"{where}: done_if")
        if trigger.signal and done is None:
            # the reading a silence or a meal asked for, come late, still counts
            done = DoneIf(trigger.signal, "trigger")
        delay = d.get("max_delay_s", max_delay_s)
        delay = None if delay is None else seconds(delay, f"{where}: max_delay_s", zero=True)
        exp, sends = None, ()
        if d.get("experiment") is not None:
            exp, sends = _experiment(d["experiment"], f"{where}: experiment", send)
        return cls(name, priority, trigger, send, repeat, done, delay, exp, sends)


def _experiment(d: Any, where: str, send: Send) -> tuple[Experiment, tuple[tuple[str, Send], ...]]:
    d = mapping(d, where, ("name", "seed", "variants", "holdout", "overrides"),
                ("name", "seed", "variants"))
    variants = d["variants"]
    if not isinstance(variants, Mapping) or len(variants) < 2:
        raise bad(f"{where}.variants", "a mapping of at least two variant names to weights")
    for v, w in variants.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise bad(f"{where}.variants.{v}", f"weight must be a number >= 0, not {w!r}")
    holdout = d.get("holdout", "holdout")
    if holdout is not None and holdout not in variants:
        if "holdout" in d:
            raise bad(f"{where}.holdout", f"{holdout!r} is not one of the variants")
        holdout = None
    try:
        exp = Experiment(text(d["name"], f"{where}.name"), str(d["seed"]),
                         tuple(map(str, variants)), tuple(float(w) for w in variants.values()),
                         holdout)
    except ValueError as exc:
        raise bad(f"{where}.variants", str(exc)) from None
    over = mapping(d.get("overrides", {}), f"{where}.overrides", tuple(map(str, variants)))
    sends = tuple((str(v), send.override(o, f"{where}.overrides.{v}")) for v, o in over.items())
    return exp, sends
