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

from vitalstream.model import Alert, AlertState, Quality, Reading, alert_id
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


# -- the sources patients depend on: a BLE gateway, the broker connection --

GATEWAY_KEY = "gateway:"  # a gateway's alarms live under this key prefix, not a patient's
PIPELINE_KEY = "pipeline"  # the pipeline's own alarms (the broker connection)


@dataclass
class GatewayState:
    last_ns: int = 0  # arrival of the newest message through it
    patients: dict[str, int] = field(default_factory=dict)  # patient -> last heard through it
    open: int | None = None  # episode start of its offline alarm
    covers: tuple[str, ...] = ()  # the patients that alarm named (its end releases them)


@dataclass(frozen=True)
class GatewayWatch:
    """One "gateway offline" alarm when a BLE gateway falls silent, naming the patients
    behind it (heard through it within ``remember_s``), so the service holds back their
    own stale-data alarms (``Alert.covers``). On processing time, like ``StaleData``, and
    ``offline_after_s`` must be shorter than the patients' stale T, so the gateway's alarm
    comes first.

    >>> lg = GatewayWatch(offline_after_s=300).build(key="gw-1")
    >>> lg.heard("p1", 0) + lg.heard("p2", 10 * NS), lg.due() // NS
    ([], 310)
    >>> [(a.patient, a.rule, a.covers) for a in lg.fire(310 * NS)]
    [('gateway:gw-1', 'gateway_offline', ('p1', 'p2'))]
    >>> [a.state for a in lg.heard("p1", 400 * NS)]
    ['resolved']
    """

    offline_after_s: float = 600.0
    remember_s: float = 3600.0
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not self.offline_after_s > 0 or not self.remember_s > 0:
            raise ValueError("gateways: offline_after_s and remember_s must be > 0")

    def build(self, resume_state: GatewayState | None = None, *, key: str = "") -> "GatewayLogic":
        return GatewayLogic(self, resume_state if resume_state is not None else GatewayState(), key)


class GatewayLogic:
    def __init__(self, cfg: GatewayWatch, st: GatewayState, gateway: str) -> None:
        self.cfg, self.st, self.gateway = cfg, st, gateway
        self.key = GATEWAY_KEY + gateway
        self._after_ns = round(cfg.offline_after_s * NS)

    def heard(self, patient: str, at_ns: int) -> list[Alert]:
        st = self.st
        st.last_ns = max(st.last_ns, at_ns)
        st.patients[patient] = max(st.patients.get(patient, 0), at_ns)
        if st.open is None:
            return []
        start, st.open = st.open, None
        covers, st.covers = st.covers, ()
        return [self._alert(AlertState.RESOLVED, at_ns, start, 1,
                            f"gateway {self.gateway} back at {iso_z(at_ns)}", covers)]

    def due(self) -> int | None:
        st = self.st
        return None if st.open is not None or not st.last_ns else st.last_ns + self._after_ns

    def fire(self, now_ns: int) -> list[Alert]:
        due = self.due()
        if due is None or now_ns < due:
            return []
        st = self.st
        horizon = st.last_ns - round(self.cfg.remember_s * NS)
        for p in [p for p, t in st.patients.items() if t < horizon]:
            del st.patients[p]  # moved on to another gateway long ago
        st.open = due
        behind = st.covers = tuple(sorted(st.patients))
        return [self._alert(AlertState.FIRING, now_ns, due, 0,
                            f"gateway {self.gateway} silent for {_span(self._after_ns)} "
                            f"(last {iso_z(st.last_ns)}); patients behind it: "
                            f"{', '.join(behind) or 'none'}", behind)]

    def _alert(self, state: str, t: int, start: int, seq: int, text: str,
               covers: tuple[str, ...]) -> Alert:
        return Alert(alert_id(self.key, "gateway_offline", start), self.key, "gateway_offline",
                     "gateway", self.cfg.severity, state, float("nan"), self._after_ns / NS,
                     t, start, seq, "", text, covers=covers)

    def snapshot(self) -> GatewayState:
        return snapshot_of(self.st)


@dataclass
class LinkState:
    down_since: int | None = None
    open: int | None = None  # episode start of the broker_lost alarm


@dataclass(frozen=True)
class LinkWatch:
    """One pipeline alarm when the broker connection is lost for ``after_s`` (a restart of
    the broker that takes a second pages nobody), resolved when it is back. It covers every
    patient: while it is active nobody's stale-data alarm is sent on its own.

    >>> lg = LinkWatch(after_s=30).build(key="mqtt")
    >>> lg.observe(False, 0), lg.observe(False, 29 * NS)
    ([], [])
    >>> [(a.rule, a.severity, a.covers) for a in lg.observe(False, 30 * NS)]
    [('broker_lost', 'critical', ('*',))]
    >>> [a.state for a in lg.observe(True, 95 * NS)], lg.observe(True, 96 * NS)
    (['resolved'], [])
    """

    after_s: float = 30.0
    severity: str = "critical"

    def build(self, resume_state: LinkState | None = None, *, key: str = "mqtt") -> "LinkLogic":
        return LinkLogic(self, resume_state if resume_state is not None else LinkState(), key)


class LinkLogic:
    def __init__(self, cfg: LinkWatch, st: LinkState, link: str) -> None:
        self.cfg, self.st, self.link = cfg, st, link
        self._after_ns = round(cfg.after_s * NS)

    def observe(self, up: bool, now_ns: int) -> list[Alert]:
        st = self.st
        if up:
            st.down_since = None
            if st.open is None:
                return []
            start, st.open = st.open, None
            return [self._alert(AlertState.RESOLVED, now_ns, start, 1,
                                f"{self.link} broker connection back at {iso_z(now_ns)}")]
        if st.down_since is None:
            st.down_since = now_ns
        if st.open is None and now_ns - st.down_since >= self._after_ns:
            st.open = st.down_since
            return [self._alert(AlertState.FIRING, now_ns, st.open, 0,
                                f"{self.link} broker connection lost since {iso_z(st.open)}: "
                                "no data from any device reaches the pipeline")]
        return []

    def _alert(self, state: str, t: int, start: int, seq: int, text: str) -> Alert:
        return Alert(alert_id(PIPELINE_KEY, "broker_lost", start), PIPELINE_KEY, "broker_lost",
                     self.link, self.cfg.severity, state, float("nan"), self.cfg.after_s,
                     t, start, seq, "", text, covers=("*",))


@dataclass
class ContactState:
    flagged: dict[str, int] = field(default_factory=dict)  # "device|signal" -> run start
    open: dict[str, int] = field(default_factory=dict)  # "device|signal" -> episode start


@dataclass(frozen=True)
class ContactWatch:
    """A ``contact_lost`` technical alarm when a device's readings of a signal have all been
    flagged (``MOTION_ARTEFACT``: the HR strap's "no skin contact", a motion report) for
    ``for_s`` of event time; its next clean reading ends it. Fed in event-time order.

    >>> from vitalstream.model import Quality, Reading
    >>> from vitalstream.signals import Signal
    >>> lg = ContactWatch(for_s=120).build(key="p1")
    >>> hr = lambda t, q: Reading("p1", "strap", Signal.HEART_RATE, 70.0, "/min", t * NS, t * NS,
    ...                           "ble:2A37", q)
    >>> lg.on_reading(hr(0, Quality.MOTION_ARTEFACT)) + lg.on_reading(hr(60, Quality.MOTION_ARTEFACT))
    []
    >>> [(a.rule, a.state) for a in lg.on_reading(hr(120, Quality.MOTION_ARTEFACT))]
    [('contact_lost', 'firing')]
    >>> [(a.rule, a.state) for a in lg.on_reading(hr(180, Quality.OK))]
    [('contact_lost', 'resolved')]
    """

    for_s: float = 120.0
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not self.for_s >= 0:
            raise ValueError("contact: for_s must be >= 0")

    def build(self, resume_state: ContactState | None = None, *, key: str = "") -> "ContactLogic":
        return ContactLogic(self, resume_state if resume_state is not None else ContactState(), key)


class ContactLogic:
    def __init__(self, cfg: ContactWatch, st: ContactState, patient: str) -> None:
        self.cfg, self.st, self.patient = cfg, st, patient
        self._for_ns = round(cfg.for_s * NS)

    def on_reading(self, r: Reading) -> list[Alert]:
        st = self.st
        k = f"{r.device}|{r.signal.value}"
        if r.quality & Quality.MOTION_ARTEFACT:
            start = st.flagged.setdefault(k, r.event_ns)
            if k not in st.open and r.event_ns - start >= self._for_ns:
                st.open[k] = start
                return [self._alert(r, AlertState.FIRING, start, 0,
                                    f"{r.signal.value} from {r.device}: no sensor contact "
                                    f"(or motion) since {iso_z(start)}")]
            return []
        st.flagged.pop(k, None)
        start = st.open.pop(k, None)
        if start is None:
            return []
        return [self._alert(r, AlertState.RESOLVED, start, 1,
                            f"{r.signal.value} from {r.device}: contact again at {iso_z(r.event_ns)}")]

    def _alert(self, r: Reading, state: str, start: int, seq: int, text: str) -> Alert:
        return Alert(alert_id(self.patient, f"contact_lost:{r.device}:{r.signal.value}", start),
                     self.patient, "contact_lost", r.signal.value, self.cfg.severity, state,
                     float("nan"), self.cfg.for_s, r.event_ns, start, seq, "", text)

    def snapshot(self) -> ContactState:
        return snapshot_of(self.st)
