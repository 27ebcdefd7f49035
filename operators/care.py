"""The care stage of one person: profile, nudges and experiment outcomes, chained.

``CareFlow`` holds the configs of the parts, in order: the profile
(``operators.profile``: readings -> tag changes), the nudge engine
(``operators.nudge``: readings, tag changes, care events -> nudges, suppressions,
exposures) and the outcome tracker (``operators.experiment.outcomes``: exposures,
readings -> outcome records). Each part is offered the input item and every
output of the parts before it, so a tag set by a reading reaches the nudge
engine in the same step, and an exposure reaches the outcome tracker. Outputs
of every part leave the stage. Any part may be None.

It is one logic under the operator contract, keyed by person; its state is the
parts' states. Clinical alerts do not pass through here at all: they have their
own stage and their own outreach stream, so nothing in the care stage (caps,
quiet hours, digests) can hold one back.

>>> from vitalstream.operators.profile import ProfileRules
>>> flow = CareFlow(profile=ProfileRules())
>>> logic = flow.build(key="p1")
>>> logic.on_item(object())
([], False)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from vitalstream.operators.contract import RETAIN, Emit, earliest

_PARTS = ("profile", "nudges", "outcomes")


def _time_of(x: Any) -> int:
    """The event time a care record stands at (readings and care events: event_ns; tag
    changes, nudges, exposures: at_ns)."""
    t = getattr(x, "event_ns", None)
    return t if t is not None else getattr(x, "at_ns", 0)


@dataclass(frozen=True)
class CareFlow:
    profile: Any = None  # ProfileRules
    nudges: Any = None  # NudgePolicy
    outcomes: Any = None  # OutcomeTracker

    def build(self, resume_state: "CareState | None" = None, *, key: str = "") -> "CareLogic":
        return CareLogic(self, key, resume_state)


@dataclass
class CareState:
    key: str = ""  # the person (runtimes that do not hand the key to a builder read it here)
    profile: Any = None
    nudges: Any = None
    outcomes: Any = None


class CareLogic:
    def __init__(self, cfg: CareFlow, key: str, state: CareState | None = None) -> None:
        state = state if state is not None else CareState()
        self.key = key
        self.parts: list[tuple[str, Any]] = []
        for name in _PARTS:
            part = getattr(cfg, name)
            if part is not None:
                self.parts.append((name, part.build(getattr(state, name), key=key)))

    def part(self, name: str) -> Any:
        return next((logic for n, logic in self.parts if n == name), None)

    def _offer(self, start: int, items: list) -> list:
        """Offer ``items`` to the parts from ``start`` on; each part's outputs go to the rest,
        in event-time order: a part that caught up to an item's time first (a silence due at
        10:00 served when a 15:00 reading arrives) emits records older than the item, and a
        later part must see them before the item or judge them late."""
        out: list = []
        for i in range(start, len(self.parts)):
            logic = self.parts[i][1]
            made: list = []
            for x in items:
                made += logic.on_item(x)[0]
            out += made
            if made:
                items = sorted(items + made, key=_time_of)  # stable: the item before its own results
        return out

    def on_item(self, item: Any) -> Emit:
        return self._offer(0, [item]), RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        out: list = []
        for i, (_, logic) in enumerate(self.parts):
            due = logic.notify_at()
            if due is None or due > now_ns:
                continue
            made = logic.on_notify(now_ns)[0]
            out += made + self._offer(i + 1, made)
        return out, RETAIN

    def notify_at(self) -> int | None:
        return earliest(*(logic.notify_at() for _, logic in self.parts))

    def on_eof(self) -> Emit:
        out: list = []
        for i, (_, logic) in enumerate(self.parts):
            made = logic.on_eof()[0]
            out += made + self._offer(i + 1, made)
        return out, RETAIN

    def snapshot(self) -> CareState:
        return CareState(self.key, **{name: logic.snapshot() for name, logic in self.parts})


def _hosted() -> tuple[type, ...]:
    from vitalstream.care import CareEvent
    from vitalstream.model import Reading

    return (Reading, CareEvent)


_HOSTED = _hosted()


@dataclass(frozen=True)
class CareHost:
    """Many persons' care logics in one keyed logic (a shard), as ``PatientHost`` does for
    the clinical stage: a runtime then keys by shard (a few dozen keys) instead of by
    person, and each batch costs one call per shard rather than one per person. Items are
    routed by ``item.patient`` (the person: stage A resolved merged ids); timers are kept
    in a heap, so ``notify_at`` is the earliest person's deadline without a scan."""

    flow: CareFlow

    def build(self, resume_state: "CareHostState | None" = None, *, key: str = "") -> "CareHostLogic":
        return CareHostLogic(self.flow, resume_state)


@dataclass
class CareHostState:
    persons: dict = field(default_factory=dict)  # person -> CareState


class CareHostLogic:
    def __init__(self, flow: CareFlow, state: "CareHostState | None" = None) -> None:
        self.flow = flow
        self.logics: dict[str, CareLogic] = {}
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int | None] = {}  # each person's deadline as last pushed
        for person, st in (state.persons if state is not None else {}).items():
            self.logics[person] = flow.build(st, key=person)
            self._schedule(person)

    def _schedule(self, person: str) -> None:
        due = self.logics[person].notify_at()
        if due != self._due.get(person):
            self._due[person] = due
            if due is not None:
                heapq.heappush(self._heap, (due, person))

    def on_item(self, item: Any) -> Emit:
        if type(item) not in _HOSTED:
            return [], RETAIN  # the clinical stage's other items (gateway liveness) share the stream
        person = item.patient
        logic = self.logics.get(person)
        if logic is None:
            logic = self.logics[person] = self.flow.build(key=person)
        out = logic.on_item(item)[0]
        self._schedule(person)
        return out, RETAIN

    def on_batch(self, items: list) -> Emit:
        out: list = []
        for x in items:
            out += self.on_item(x)[0]
        return out, RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        out: list = []
        heap, served = self._heap, []
        while heap and heap[0][0] <= now_ns:
            due, person = heapq.heappop(heap)
            if self._due.get(person) != due:
                continue  # stale: that person's deadline moved (and was pushed again)
            self._due[person] = None
            out += self.logics[person].on_notify(now_ns)[0]
            served.append(person)
        for person in served:  # after the loop: a deadline not moved on waits for the next call
            self._schedule(person)
        return out, RETAIN

    def notify_at(self) -> int | None:
        heap = self._heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale entries go as they reach the top
        return heap[0][0] if heap else None

    def on_eof(self) -> Emit:
        out: list = []
        for logic in self.logics.values():
            out += logic.on_eof()[0]
        return out, RETAIN

    def snapshot(self) -> CareHostState:
        return CareHostState({p: lg.snapshot() for p, lg in self.logics.items()})
