"""Hosts many per-patient logics behind one stateful step, with one timer heap.

Runtimes key readings by shard, not by patient: a bytewax or faust step then
holds a few shard states instead of one per patient, and only the patients
whose deadlines are due are touched when time passes (a scan of every key on
every wake-up is what makes naive per-key event-time windows slow).

The host is itself an operator under the contract (``PatientHost.build(state,
key=shard)``): ``on_notify(now_ns)`` takes the runtime's system time and
``notify_at()`` answers in it. Patients' clocks move between readings with
the data's frontier, not with processing time (see ``FrontierClock``).

Eviction: a patient a ``PatientLogic`` discards (silent for ``evict_after``)
leaves the host; its anomaly baselines stay, compact, in ``dormant`` for
``baseline_ttl_ns`` and seed the patient's logic when they return. After that
the patient's detectors restart from population priors.

Gateways: ``Heard`` items (a patient's data came through a BLE gateway) are keyed by the
gateway (``shard_of(GATEWAY_KEY + gateway)``) and kept here too, one ``GatewayLogic`` per
gateway with its offline timer: the same step, state and snapshots as the patients.
"""

from __future__ import annotations

import dataclasses
import heapq
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vitalstream.model import Heard, Reading
from vitalstream.operators.liveness import GATEWAY_KEY, GatewayLogic, GatewayState, GatewayWatch
from vitalstream.operators.clock import FrontierClock
from vitalstream.operators.contract import RETAIN, Emit, earliest, snapshot_of
from vitalstream.operators.patient import Output, PatientFlow, PatientLogic, PatientState

NS = 1_000_000_000


def shard_of(patient: str, shards: int) -> str:
    """Stable across processes and runs (``hash()`` of a str is salted per process)."""
    return str(zlib.crc32(patient.encode()) % shards)


def shard_key(item: "Reading | Heard", shards: int) -> str:
    """The shard of what the host is fed: a reading by its patient, ``Heard`` by its gateway."""
    if type(item) is Heard:
        return shard_of(GATEWAY_KEY + item.gateway, shards)
    return shard_of(item.patient, shards)


@dataclass(frozen=True)
class PatientHost:
    """Config: the per-patient flow, the idle grace of the frontier clock, baseline TTL.

    ``caught_up`` (optional) tells whether the runtime's receive queues are empty.
    """

    flow: PatientFlow = PatientFlow()
    idle_grace_ns: int = 0
    baseline_ttl_ns: int = 30 * 86_400 * NS
    caught_up: Callable[[], bool] | None = None
    gateways: GatewayWatch | None = None  # None: gateway liveness off (Heard is ignored)

    def build(self, resume_state: "HostState | None" = None, *, key: str = "") -> "ShardHost":
        return ShardHost(self, resume_state)


@dataclass
class HostState:
    patients: dict[str, PatientState] = field(default_factory=dict)
    dormant: dict[str, tuple[int, Any]] = field(default_factory=dict)  # patient -> (since, baseline)
    evicted: int = 0
    gateways: dict[str, GatewayState] = field(default_factory=dict)


class ShardHost:
    def __init__(self, cfg: PatientHost, resume_state: HostState | None = None) -> None:
        self.cfg = cfg
        self.flow = cfg.flow
        st = resume_state or HostState()
        self.state = st
        self.frontier = FrontierClock(cfg.idle_grace_ns, cfg.caught_up)
        self.patients: dict[str, PatientLogic] = {}
        self._timers: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}
        for patient, pst in st.patients.items():
            self.patients[patient] = self.flow.build(pst, key=patient)
            if pst.last_recv_ns:
                self.frontier.saw(pst.last_recv_ns)  # the frontier survives a restart
        for patient in self.patients:
            self._schedule(patient)
        self.gateways: dict[str, GatewayLogic] = {}
        if cfg.gateways is not None:
            for g, gst in st.gateways.items():
                self.gateways[g] = cfg.gateways.build(gst, key=g)

    # -- the operator contract --

    def on_item(self, r: Reading) -> Emit:
        return self.on_batch([r])

    def on_batch(self, readings: Iterable[Reading]) -> Emit:
        out: list[Output] = []
        touched = set()
        for r in readings:
            self.frontier.saw(r.recv_ns)
            if type(r) is Heard:
                if self.cfg.gateways is not None:
                    out.extend(self._gateway(r.gateway).heard(r.patient, r.recv_ns))
                continue
            out.extend(self._logic(r.patient).on_item(r)[0])
            touched.add(r.patient)
        for p in touched:
            self._schedule(p)
        return out, RETAIN

    def on_notify(self, now_ns: int) -> Emit:
        out: list[Output] = []
        now = self.frontier.now_ns(now_ns)
        timers = self._timers
        done = []
        while timers and timers[0][0] <= now:
            due, patient = heapq.heappop(timers)
            if self._scheduled.get(patient) != due:
                continue  # superseded by an earlier deadline that already ran
            del self._scheduled[patient]
            emitted, discard = self.patients[patient].on_notify(now)
            out.extend(emitted)
            if discard:
                self._evict(patient, now)
            else:
                done.append(patient)
        for patient in done:
            # Rescheduled after the loop: a deadline that is still "now" waits for
            # the next call instead of spinning here.
            self._schedule(patient)
        for g in sorted(self.gateways):  # a handful per shard: no heap needed
            out.extend(self.gateways[g].fire(now))
        return out, RETAIN

    def saw_time(self, system_ns: int) -> None:
        """The runtime's current time, handed in without a notification: ``notify_at``
        then estimates from it (a runtime that knows its time asks this way)."""
        self.frontier.now_ns(system_ns)

    def notify_at(self) -> int | None:
        """System time of the next timer, as the frontier clock would reach it if data keeps
        coming at its last pace (from the last system time handed in, never read)."""
        due = earliest(self._timers[0][0] if self._timers else None,
                       *(g.due() for g in self.gateways.values()))
        return None if due is None else self.frontier.to_system(due)

    def on_eof(self) -> Emit:
        """Bounded input has ended: flush every buffer and close every window."""
        out: list[Output] = []
        for p in sorted(self.patients):
            out.extend(self.patients[p].on_eof()[0])
        self._timers.clear()
        self._scheduled.clear()
        return out, RETAIN

    def snapshot(self) -> HostState:
        patients = {p: logic.snapshot() for p, logic in self.patients.items()}
        return dataclasses.replace(
            snapshot_of(dataclasses.replace(self.state, patients={}, gateways={})),
            patients=patients, gateways={g: lg.snapshot() for g, lg in self.gateways.items()})

    # -- internals --

    def _logic(self, patient: str) -> PatientLogic:
        logic = self.patients.get(patient)
        if logic is None:
            resume = None
            dormant = self.state.dormant.pop(patient, None)
            if dormant is not None:
                resume = PatientState(anomaly=dormant[1])
            logic = self.patients[patient] = self.flow.build(resume, key=patient)
        return logic

    def _gateway(self, gateway: str) -> GatewayLogic:
        logic = self.gateways.get(gateway)
        if logic is None:
            gst = self.state.gateways[gateway] = GatewayState()
            logic = self.gateways[gateway] = self.cfg.gateways.build(gst, key=gateway)
        return logic

    def _schedule(self, patient: str) -> None:
        due = self.patients[patient].notify_at()
        if due is None:
            return
        current = self._scheduled.get(patient)
        if current is None or due < current:
            self._scheduled[patient] = due
            heapq.heappush(self._timers, (due, patient))

    def _evict(self, patient: str, now: int) -> None:
        logic = self.patients.pop(patient)
        baseline = logic.baseline()
        self.state.evicted += 1
        # Expired baselines go when another patient leaves: evictions are rare, and
        # the dormant set stays bounded by the patients the shard has known.
        ttl = self.cfg.baseline_ttl_ns
        dormant = self.state.dormant
        for p in [p for p, (t, _) in dormant.items() if t + ttl <= now]:
            del dormant[p]
        if baseline is not None:
            dormant[patient] = (now, baseline)

    @property
    def open_windows(self) -> int:
        return sum(len(p.window) for p in self.patients.values())

    def late_counts(self) -> tuple[int, int]:
        w = sum(p.late_window for p in self.patients.values())
        r = sum(p.state.late_rules for p in self.patients.values())
        return w, r
