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

from dataclasses import dataclass
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
