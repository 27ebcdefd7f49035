"""Stale data: a "no data for T" alert per patient and signal, on processing time.

A sensor that falls silent raises nothing in a threshold rule: no reading, no crossing.
So for each signal listed (``after_s``: signal -> seconds) that a patient has sent at
least once, this fires a ``no_data`` alert (a technical alarm, IEC 60601-1-8's term, as
opposed to a physiological one) when nothing has arrived for that long, and resolves it
when data comes back. Time is the runtime's: when readings *arrived* (``recv_ns``) and
the ``now`` the runtime hands to ``on_notify``, so a device that sends nothing at all
still fires. Signals not listed, or never seen for the patient, never fire: a patient
without a cuff has no stale blood pressure.

>>> from vitalstream.operators.liveness import StaleData
>>> lg = StaleData({"heart_rate": 600}).build(key="p1")
>>> lg.seen("heart_rate", 0), lg.due() // 10**9
([], 600)
>>> [(a.rule, a.state, a.explanation) for a in lg.fire(600 * 10**9)]
[('no_data', 'firing', 'no heart_rate for 10 min (last 1970-01-01T00:00:00Z)')]
>>> [a.state for a in lg.seen("heart_rate", 700 * 10**9)]
['resolved']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vitalstream.model import Alert, AlertState, alert_id
from vitalstream.operators.contract import snapshot_of
from vitalstream.timeutil import iso_z

NS = 1_000_000_000


@dataclass
class StaleState:
    last: dict[str, int] = field(default_factory=dict)  # signal -> arrival ns of the newest
    open: dict[str, int] = field(default_factory=dict)  # signal -> episode start of its alert


@dataclass(frozen=True)
class StaleData:
    after_s: Mapping[str, float]
    severity: str = "warning"

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.after_s.items() if not v > 0}
        if bad:
            raise ValueError(f"stale: seconds must be > 0, got {bad}")

    def build(self, resume_state: StaleState | None = None, *, key: str = "") -> "StaleLogic":
        return StaleLogic(self, resume_state if resume_state is not None else StaleState(), key)


class StaleLogic:
    def __init__(self, cfg: StaleData, st: StaleState, patient: str) -> None:
        self.cfg, self.st, self.patient = cfg, st, patient
        self._after_ns = {s: round(v * NS) for s, v in cfg.after_s.items()}

    def seen(self, signal: str, at_ns: int) -> list[Alert]:
        """A reading of ``signal`` arrived at ``at_ns``: resolves its open alert, if any."""
        if signal not in self._after_ns:
            return []
        st = self.st
        if at_ns > st.last.get(signal, -1):
            st.last[signal] = at_ns
        start = st.open.pop(signal, None)
        if start is None:
            return []
        return [self._alert(signal, AlertState.RESOLVED, at_ns, start, 1,
                            f"{signal} data again at {iso_z(at_ns)}")]

    def due(self) -> int | None:
        times = [t + self._after_ns[s] for s, t in self.st.last.items() if s not in self.st.open]
        return min(times) if times else None

    def fire(self, now_ns: int) -> list[Alert]:
        out = []
        for s, t in sorted(self.st.last.items()):
            after = self._after_ns[s]
            if s not in self.st.open and t + after <= now_ns:
                start = t + after
                self.st.open[s] = start
                out.append(self._alert(s, AlertState.FIRING, now_ns, start, 0,
                                       f"no {s} for {_span(after)} (last {iso_z(t)})"))
        return out

    def _alert(self, signal: str, state: str, t: int, start: int, seq: int, text: str) -> Alert:
        return Alert(alert_id(self.patient, f"no_data:{signal}", start), self.patient, "no_data",
                     signal, self.cfg.severity, state, float("nan"),
                     self._after_ns[signal] / NS, t, start, seq, "", text)

    def snapshot(self) -> StaleState:
        return snapshot_of(self.st)


def _span(ns: int) -> str:
    s = ns / NS
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g} h"
    return f"{s / 60:g} min" if s >= 60 else f"{s:g} s"
