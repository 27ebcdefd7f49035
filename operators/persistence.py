"""How long a condition must hold before a rule fires: the condition forms.

A rule turns each reading into one boolean, "on the alarm side" (crossing), and
a form decides from the recent booleans whether the episode has started. Four
forms, all counted in event time:

- ``Consecutive(for_s)``: every reading crossing for ``for_s`` (one non-crossing
  reading restarts it). For conditions that must hold without a break.
- ``CountWithin(n, of, within_s)``: at least ``n`` crossing readings among the
  readings of the last ``within_s`` (and, with ``of``, among the last ``of``
  readings). A value oscillating around a threshold still fires; one wild
  reading does not.
- ``FractionWithin(min_fraction, within_s, hold_s)``: crossing for at least
  ``min_fraction`` of the last ``within_s``, time-weighted: each reading's verdict
  holds until the next reading, for at most ``hold_s`` (beyond that the time is
  unknown and counts as not crossing). Independent of the sampling rate, unlike
  a count.

``continuous`` says whether a data gap longer than the rule's ``max_gap_s``
cancels a pending condition. It does by default for ``Consecutive`` ("held for
5 minutes" cannot be said across a hole) and not for the windowed forms, whose
window already bounds how old the evidence may be: sparse charted data (a
temperature every 1-4 h) must be able to meet "2 readings in 12 h".

The verdict is the event time the episode started at (the first crossing
reading that counts), or None. It is given only on a crossing reading: the
reading an episode opens on is the one its alert names, so it must itself be
on the alarm side. A fraction can be completed by a reading that is not (the
previous crossing reading's verdict holds up to it): that reading only adds
its evidence, and the episode opens at the next crossing reading if the
fraction still holds then. A run whose last crossing reading is followed by a
recovery therefore does not open an episode that its very next reading would
end.

>>> form = CountWithin(n=3, within_s=600)
>>> st = PersistState()
>>> [form.step(st, c, t * NS, False) for t, c in enumerate([True, False, True, False, True])]
[None, None, None, None, 0]
>>> form = FractionWithin(min_fraction=0.5, within_s=240, hold_s=120)
>>> st = PersistState()
>>> [form.step(st, c, t * 60 * NS, False) for t, c in enumerate([False, True, True, False, True])]
[None, None, None, None, 60000000000]

(at 3 min the readings of 1 and 2 min cover 120 s of the 240 s, but the 3-min reading
is not crossing; at 4 min they still do, and the 4-min reading is.)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from vitalstream.errors import ConfigError

NS = 1_000_000_000


@dataclass
class PersistState:
    pending: bool = False
    since_ns: int = 0
    recent: deque | None = None  # (crossing, event_ns); None until a windowed form needs it


class Form(Protocol):
    continuous: bool

    def step(self, st: PersistState, crossing: bool, t: int, gap_broken: bool) -> int | None: ...

    def describe(self) -> str: ...


def _reset(st: PersistState) -> None:
    st.pending = False
    if st.recent is not None:
        st.recent.clear()


def _recent(st: PersistState, crossing: bool, t: int, restart: bool) -> deque:
    """The windowed forms' evidence with this reading added (after a restart, alone)."""
    if st.recent is None:
        st.recent = deque()
    if restart:
        st.recent.clear()
    st.recent.append((crossing, t))
    return st.recent


def reset(st: PersistState) -> None:
    """Forget the evidence: after an episode ends, a new one needs new readings."""
    _reset(st)


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class Consecutive:
    for_s: float = 0.0
    continuous: bool = True

    def step(self, st: PersistState, crossing: bool, t: int, gap_broken: bool) -> int | None:
        if not crossing:
            st.pending = False
            return None
        if not st.pending or (gap_broken and self.continuous):
            st.pending, st.since_ns = True, t
        return st.since_ns if t - st.since_ns >= self.for_s * NS else None

    def describe(self) -> str:
        return f"for {_duration(self.for_s)}" if self.for_s > 0 else "on one reading"


@dataclass(frozen=True, slots=True)
class CountWithin:
    n: int
    of: int | None = None  # also among the last ``of`` readings
    within_s: float = math.inf
    continuous: bool = False

    def step(self, st: PersistState, crossing: bool, t: int, gap_broken: bool) -> int | None:
        recent = _recent(st, crossing, t, gap_broken and self.continuous)
        horizon = t - self.within_s * NS
        while recent and recent[0][1] < horizon:
            recent.popleft()
        if self.of is not None:
            while len(recent) > self.of:
                recent.popleft()
        if not crossing:
            return None
        hits = [ts for c, ts in recent if c]
        return hits[0] if len(hits) >= self.n else None

    def describe(self) -> str:
        among = f" of the last {self.of}" if self.of is not None else ""
        within = f" in {_duration(self.within_s)}" if math.isfinite(self.within_s) else ""
        return f"on {self.n}{among} readings{within}"


@dataclass(frozen=True, slots=True)
class FractionWithin:
    min_fraction: float
    within_s: float
    hold_s: float = 300.0
    continuous: bool = False

    def step(self, st: PersistState, crossing: bool, t: int, gap_broken: bool) -> int | None:
        recent = _recent(st, crossing, t, gap_broken and self.continuous)
        start = t - self.within_s * NS
        # keep the one reading at or before the window start: its verdict covers the edge
        while len(recent) >= 2 and recent[1][1] <= start:
            recent.popleft()
        if not crossing:
            # its evidence is kept (the previous verdict held up to it), but an episode
            # does not open on a reading off the alarm side: the next crossing one may
            return None
        hold = self.hold_s * NS
        on = 0.0
        first = None
        it = iter(recent)
        prev_c, prev_t = next(it)
        for c, ts in it:
            if prev_c:
                lo, hi = max(prev_t, start), min(ts, prev_t + hold)
                if hi > lo:
                    on += hi - lo
                    if first is None:
                        first = prev_t if prev_t >= start else int(start)
            prev_c, prev_t = c, ts
        if first is None or on < self.min_fraction * self.within_s * NS:
            return None
        return first

    def describe(self) -> str:
        return f"for {self.min_fraction:.0%} of {_duration(self.within_s)}"


def form_from_dict(d: dict[str, Any], name: str, max_gap_s: float) -> Form:
    """The form of a rule's YAML: ``for_s``, ``n_of_m``, ``count`` or ``fraction``."""
    given = [k for k in ("count", "fraction", "n_of_m") if d.get(k) is not None]
    if len(given) > 1 or (given and d.get("for_s")):
        raise ConfigError("rules", None, "bad_rule",
                          f"{name}: choose one of for_s, n_of_m, count, fraction")
    cont = d.get("continuous")
    if cont is not None and not isinstance(cont, bool):
        raise ConfigError("rules", None, "bad_rule", f"{name}: continuous must be true or false")

    def bad(why: str) -> ConfigError:
        return ConfigError("rules", None, "bad_rule", f"{name}: {why}")

    try:
        if "count" in given:
            c = d["count"]
            n, of = int(c["n"]), c.get("of")
            within = float(c.get("within_s", math.inf))
            if n < 1 or (of is not None and int(of) < n) or within <= 0:
                raise bad("count needs n >= 1, of >= n, within_s > 0")
            if of is None and not math.isfinite(within):
                raise bad("count needs within_s or of")
            return CountWithin(n, None if of is None else int(of), within,
                               False if cont is None else cont)
        if "fraction" in given:
            f = d["fraction"]
            frac, within = float(f["min"]), float(f["within_s"])
            hold = float(f.get("hold_s", max_gap_s))
            if not 0 < frac <= 1 or within <= 0 or hold <= 0:
                raise bad("fraction needs 0 < min <= 1, within_s > 0, hold_s > 0")
            return FractionWithin(frac, within, hold, False if cont is None else cont)
        if "n_of_m" in given:
            nm = d["n_of_m"]
            if len(nm) != 2 or not 0 < nm[0] <= nm[1]:
                raise bad("n_of_m must be [N, M], 0<N<=M")
            # the historical form: the last M readings, and a gap restarts the count
            return CountWithin(int(nm[0]), int(nm[1]), math.inf, True if cont is None else cont)
        for_s = float(d.get("for_s", 0.0))
        if for_s < 0:
            raise bad("for_s must be >= 0")
        return Consecutive(for_s, True if cont is None else cont)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise bad(f"{exc!r}") from exc
