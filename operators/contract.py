"""The one contract every per-key operator follows (bytewax's ``StatefulLogic`` is the model).

A frozen *config* builds a *logic* for one key::

    logic = config.build(resume_state, key="p0042")

and the logic answers five verbs, with one return shape everywhere::

    logic.on_item(item)      -> (outputs, discard)   # an item for this key arrived
    logic.on_notify(now_ns)  -> (outputs, discard)   # the runtime's clock reached notify_at()
    logic.notify_at()        -> int | None           # when to call on_notify next (clock ns)
    logic.on_eof()           -> (outputs, discard)   # bounded input ended: flush everything
    logic.snapshot()         -> state                # what build() resumes from

``discard`` is ``DISCARD`` (True) when the key's state may be dropped (a silent
patient evicted), else ``RETAIN``. Times are event time, or the runtime clock's
nanoseconds handed in as ``now_ns``: a logic never reads the wall clock, which
is what makes a replay give the same answers as a live run and lets the contract
check (``vitalstream.operators.check``) prove it.

Snapshots are complete by construction: a logic's state is one dataclass, and
``snapshot_of`` copies every field of it (a field added later is copied too),
sharing only immutable records.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import enum
from typing import Any, Generic, Iterable, Protocol, TypeVar

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
S = TypeVar("S")

RETAIN = False
DISCARD = True

Emit = tuple[list[Any], bool]


class Logic(Protocol[In, S]):
    """The per-key logic (see the module docstring)."""

    def on_item(self, item: In) -> Emit: ...
    def on_notify(self, now_ns: int) -> Emit: ...
    def notify_at(self) -> int | None: ...
    def on_eof(self) -> Emit: ...
    def snapshot(self) -> S: ...


class Operator(Protocol[S]):
    """A frozen config that builds one ``Logic`` per key."""

    def build(self, resume_state: S | None = None, *, key: str = "") -> Logic: ...


def snapshot_of(state: S) -> S:
    """An independent copy of ``state``, every field included.

    Containers (dict, list, set, deque, dataclasses) are copied all the way down;
    immutable values are shared, not copied: numbers, strings, enums, tuples of
    them, and frozen records (``Reading``, ``Alert``...) that define ``__deepcopy__``
    as identity. Runtimes snapshot every epoch, so this is a type-dispatched copy
    rather than ``copy.deepcopy`` (several times slower on the same state).

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class St:
    ...     seen: set = field(default_factory=set)
    ...     n: int = 0
    >>> a = St({1}); b = snapshot_of(a); a.seen.add(2)
    >>> b.seen, b == St({1})
    ({1}, True)
    """
    return _copy(state)


_SHARED = {int, float, str, bool, bytes, type(None), frozenset, complex}  # grows with enums
_FIELDS: dict[type, tuple[str, ...]] = {}  # dataclass -> field names


def _copy(x: Any) -> Any:
    t = type(x)
    if t in _SHARED:
        return x
    shared = _SHARED  # inlined checks below: most values are shared, and calls cost
    if t is dict:  # keys are hashable, so immutable
        return {k: v if type(v) in shared else _copy(v) for k, v in x.items()}
    if t is list:
        return [v if type(v) in shared else _copy(v) for v in x]
    if t is tuple:
        for v in x:
            if type(v) not in _SHARED:
                return tuple(v if type(v) in shared else _copy(v) for v in x)
        return x
    if t is set:
        return set(x)  # members are hashable: immutable
    if t is collections.deque:
        return collections.deque((_copy(v) for v in x), x.maxlen)
    names = _FIELDS.get(t)
    if names is None:
        if issubclass(t, enum.Enum) or "__deepcopy__" in t.__dict__:
            _SHARED.add(t)  # enum members and frozen records are their own copies
            return x
        if not dataclasses.is_dataclass(t):
            return copy.deepcopy(x)
        names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(t))
    new = object.__new__(t)
    for name in names:
        v = getattr(x, name)
        object.__setattr__(new, name, v if type(v) in shared else _copy(v))
    return new


def earliest(*times: int | None) -> int | None:
    """The earliest of several optional deadlines.

    >>> earliest(None, 5, 3), earliest(None, None)
    (3, None)
    """
    known = [t for t in times if t is not None]
    return min(known) if known else None


class Stateless(Generic[S]):
    """Mixin for logics with no timers and nothing to flush at EOF."""

    def on_notify(self, now_ns: int) -> Emit:
        return [], RETAIN

    def notify_at(self) -> int | None:
        return None

    def on_eof(self) -> Emit:
        return [], RETAIN


def drive(logic: Logic, items: Iterable[Any]) -> list[Any]:
    """Feed items to a logic and flush it (for doctests and simple callers)."""
    out: list[Any] = []
    for x in items:
        out.extend(logic.on_item(x)[0])
    out.extend(logic.on_eof()[0])
    return out
