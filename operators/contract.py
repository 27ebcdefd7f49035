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

import copy
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

    Frozen records (``Reading``, ``Alert``...) are shared, not copied: they
    define ``__deepcopy__`` as identity, which keeps snapshots cheap.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class St:
    ...     seen: set = field(default_factory=set)
    >>> a = St({1}); b = snapshot_of(a); a.seen.add(2)
    >>> b.seen
    {1}
    """
    return copy.deepcopy(state)


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
