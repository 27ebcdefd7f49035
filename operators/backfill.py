"""Back-fill: readings measured long before they arrived, kept out of the live alarms.

A phone that was offline uploads yesterday; a watch syncs a week of heart rate. The
normaliser flags such readings ``HISTORICAL`` (``Normaliser.backfill_after_ns``). They
must reach the stores and their window aggregates, but nobody may be paged about them as
if they were happening now. This operator is where a patient's historical readings go:

- **Aggregates.** They are windowed like live data, in windows of their own that stay
  open for the whole upload: the order an upload arrives in (newest first, interleaved
  devices) does not matter, and nothing is "late". The windows close when the back-fill
  ends: no historical reading for ``idle_s`` of runtime time (or at EOF). At most
  ``max_open`` windows stay open; past that the oldest close early.
- **Duplicates** within a back-fill (a retried upload) count once (``BackfillState.duplicates``).
- **One summary.** When it ends, one alert event with state ``historical`` says what the
  back-fill held: how many readings of which signals, their range, the measurement
  span and the devices. The alarm service turns it into one low-priority outreach
  message marked historical, never an alarm.

Rules, NEWS2 and the blood-pressure classes skip ``HISTORICAL`` readings themselves; the
patient flow also keeps them off its live event clock and its stale-data timers (an upload
of yesterday says nothing about whether the sensor works now).

>>> from vitalstream.model import Quality, Reading
>>> from vitalstream.signals import Signal
>>> MIN = 60 * 10**9
>>> lg = Backfill(idle_s=120).build(key="p1")
>>> hr = lambda t, v: Reading("p1", "watch", Signal.HEART_RATE, v, "/min", t * MIN,
...                           10_000 * MIN, "json", Quality.HISTORICAL)
>>> lg.on_reading(hr(2, 70.0), 10_000 * MIN) + lg.on_reading(hr(0, 38.0), 10_000 * MIN)
[]
>>> lg.due() == 10_000 * MIN + 120 * 10**9          # idle for 2 min: the back-fill ends
True
>>> out = lg.fire(10_002 * MIN)
>>> [(type(x).__name__, x.start_ns // MIN) for x in out[:-1]]
[('WindowAggregate', 0), ('WindowAggregate', 2)]
>>> out[-1].state, out[-1].value, out[-1].explanation
('historical', 2.0, 'back-fill of 2 readings measured 1970-01-01T00:00:00Z to 1970-01-01T00:02:00Z: heart_rate 2 (38-70 /min); from watch')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitalstream.model import Alert, Reading, WindowAggregate, alert_id
from vitalstream.operators.contract import snapshot_of
from vitalstream.operators.window import TumblingWindow, WindowState
from vitalstream.signals import spec
from vitalstream.timeutil import iso_z

NS = 1_000_000_000
_NEVER_LATE = -(1 << 62)  # "now" for adds: a back-fill window is never closed by time


@dataclass
class Session:
    first_recv_ns: int
    last_recv_ns: int
    first_ns: int
    last_ns: int
    count: int = 0
    duplicates: int = 0
    signals: dict[str, list[float]] = field(default_factory=dict)  # signal -> [n, min, max]
    devices: set[str] = field(default_factory=set)
    seen: set[tuple[str, str, int]] = field(default_factory=set)


@dataclass
class BackfillState:
    window: WindowState = field(default_factory=WindowState)
    session: Session | None = None
    sessions: int = 0  # back-fills summarised so far
    # copies of historical readings ignored: a count, not in the summary, whose text must
    # not depend on how often the transport delivered a message
    duplicates: int = 0


@dataclass(frozen=True)
class Backfill:
    """Config: the window (as live), when a back-fill has ended, and bounds."""

    window: TumblingWindow = TumblingWindow()
    idle_s: float = 120.0
    max_open: int = 20_000  # windows open at once (a week of 1/min data of two signals)
    max_seen: int = 200_000  # dedup keys kept per back-fill

    def __post_init__(self) -> None:
        if not self.idle_s > 0 or self.max_open < 1:
            raise ValueError("backfill: idle_s must be > 0 and max_open >= 1")

    def build(self, resume_state: BackfillState | None = None, *, key: str = "") -> "BackfillLogic":
        return BackfillLogic(self, resume_state if resume_state is not None else BackfillState(), key)


class BackfillLogic:
    """Driven by the patient flow: ``on_reading`` as historical readings arrive, ``due`` and
    ``fire`` on the runtime's (processing) time, ``flush`` at EOF."""

    def __init__(self, cfg: Backfill, st: BackfillState, patient: str) -> None:
        self.cfg, self.st, self.patient = cfg, st, patient
        self.window = cfg.window.build(st.window, key=patient, dedup=False)

    def on_reading(self, r: Reading, at_ns: int) -> list[WindowAggregate]:
        """A historical reading arrived at runtime time ``at_ns``."""
        st, cfg = self.st, self.cfg
        s = st.session
        if s is None:
            s = st.session = Session(at_ns, at_ns, r.event_ns, r.event_ns)
        s.last_recv_ns = max(s.last_recv_ns, at_ns)
        key = r.dedup_key()
        if key in s.seen:
            s.duplicates += 1
            st.duplicates += 1
            return []
        if len(s.seen) < cfg.max_seen:
            s.seen.add(key)
        s.count += 1
        s.first_ns, s.last_ns = min(s.first_ns, r.event_ns), max(s.last_ns, r.event_ns)
        s.devices.add(r.device)
        agg = s.signals.get(r.signal.value)
        if agg is None:
            s.signals[r.signal.value] = [1, r.value, r.value]
        else:
            agg[0] += 1
            agg[1], agg[2] = min(agg[1], r.value), max(agg[2], r.value)
        self.window.add(r, _NEVER_LATE)
        return self._bound()

    def due(self) -> int | None:
        s = self.st.session
        return None if s is None else s.last_recv_ns + round(self.cfg.idle_s * NS)

    def fire(self, now_ns: int) -> list:
        due = self.due()
        if due is None or now_ns < due:
            return []
        return self._end(now_ns)

    def flush(self, now_ns: int) -> list:
        """EOF: end the back-fill in progress, if any."""
        return [] if self.st.session is None else self._end(now_ns)

    def snapshot(self) -> BackfillState:
        return snapshot_of(self.st)

    # -- internals --

    def _close_all(self) -> list[WindowAggregate]:
        open_ = self.st.window.open
        if not open_:
            return []
        w = self.cfg.window
        return self.window.close_due(max(k[2] for k in open_) + w.size_ns + w.allowed_lateness_ns)

    def _bound(self) -> list[WindowAggregate]:
        open_ = self.st.window.open
        extra = len(open_) - self.cfg.max_open
        if extra <= 0:
            return []
        w = self.cfg.window
        starts = sorted({k[2] for k in open_})
        # close the oldest windows (every window of their start, so none splits)
        return self.window.close_due(starts[min(extra, len(starts)) - 1] + w.size_ns
                                     + w.allowed_lateness_ns)

    def _end(self, now_ns: int) -> list:
        st = self.st
        s = st.session
        out: list = self._close_all()
        st.session = None
        if s is None or s.count == 0:
            return out
        st.sessions += 1
        out.append(self._summary(s, now_ns))
        return out

    def _summary(self, s: Session, now_ns: int) -> Alert:
        parts = []
        for name in sorted(s.signals):
            n, lo, hi = s.signals[name]
            try:
                unit = f" {spec(name).unit}"
            except KeyError:
                unit = ""
            parts.append(f"{name} {int(n)} ({lo:g}-{hi:g}{unit})")
        text = (f"back-fill of {s.count} readings measured {iso_z(s.first_ns)} to "
                f"{iso_z(s.last_ns)}: {', '.join(parts)}; from {', '.join(sorted(s.devices))}")
        return Alert(alert_id(self.patient, "backfill", s.first_recv_ns), self.patient, "backfill",
                     "+".join(sorted(s.signals)), "info", "historical", float(s.count),
                     float("nan"), now_ns, s.first_ns, 0, "", text)
