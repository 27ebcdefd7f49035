"""The operator contract check, in the spirit of river's ``check_estimator``.

Every per-key operator is listed once in ``tests/test_operator_contract.py`` as
a ``Case``: its config, a scripted stream and what it documents about order,
duplicates, eviction and state size. ``yield_checks(case)`` gives the checks;
``check_operator(case)`` runs them all. A check that fails raises
``AssertionError`` naming the operator and what differed.

- deterministic: the same input twice gives the same output;
- snapshot/resume: stopping at any point, pickling the snapshot and resuming
  from it gives the outputs of an uninterrupted run;
- snapshot independence: a snapshot does not change when the logic goes on;
- no wall clock: no call to ``time.time``/``time_ns``/``monotonic``/
  ``perf_counter`` or ``datetime.now``/``utcnow``/``today`` while it runs;
- bounded state: the pickled state of a key after a stream twice as long is not
  materially larger;
- out of order (``reorder_ns``): delaying each item's arrival by up to that
  much gives the same outputs (as a multiset);
- duplicates (``absorbs_duplicates``): every item sent twice gives the outputs
  of sending it once;
- eviction (``evict_after_ns``): a key silent that long is discarded.

``Clocked`` drives a logic from a ``FakeClock`` the way a runtime does; tests
use it instead of writing their own loops.
"""

from __future__ import annotations

import dataclasses
import gc
import pickle
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Iterator, Sequence

from vitalstream.clock import Clock
from vitalstream.operators.contract import Logic, Operator

Event = tuple[int, Any]  # (runtime-clock ns at arrival, item)
DISCARDED = "<discarded>"

_TIME_FUNCS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}
_DATETIME_FUNCS = {"now", "utcnow", "today"}


def _with_recv(item: Any, recv_ns: int) -> Any:
    return dataclasses.replace(item, recv_ns=recv_ns) if hasattr(item, "recv_ns") else item


def arrivals(items: Sequence[Any], *, latency_ns: int = 0, max_delay_ns: int = 0, seed: int = 0,
             arrive: Callable[[Any, int], Any] = _with_recv,
             time_of: Callable[[Any], int] = lambda x: x.event_ns) -> list[Event]:
    """Items (in event order) as a runtime sees them: each arrives ``latency_ns`` after its
    event time plus a random delay up to ``max_delay_ns``, stamped with that arrival time.

    >>> from types import SimpleNamespace as N
    >>> [t for t, _ in arrivals([N(event_ns=0), N(event_ns=10)], latency_ns=5)]
    [5, 15]
    """
    rng = random.Random(seed)
    out = []
    for i, x in enumerate(items):
        at = time_of(x) + latency_ns + (rng.randint(0, max_delay_ns) if max_delay_ns else 0)
        out.append((at, i, x))
    out.sort(key=lambda e: (e[0], e[1]))
    return [(at, arrive(x, at)) for at, _, x in out]


@dataclass(frozen=True)
class Case:
    """One operator under the contract, with the stream it is checked on."""

    name: str
    config: Operator
    items: Sequence[Any]  # in event order
    key: str = "k"
    latency_ns: int = 0
    reorder_ns: int | None = None  # None: the operator documents that order matters
    absorbs_duplicates: bool = False
    evict_after_ns: int | None = None
    long_items: Callable[[int], Sequence[Any]] | None = None  # n -> a stream of n items
    arrive: Callable[[Any, int], Any] = _with_recv
    settle_ns: int = 0  # runtime time to let pass after the last item, before EOF
    # Outputs (canonical reprs) stamped on processing time, e.g. "no data" alerts: arrival
    # delays move them, so the out-of-order check compares only how many there are.
    on_arrival: Callable[[str], bool] | None = None

    def events(self, max_delay_ns: int = 0, seed: int = 0) -> list[Event]:
        return arrivals(self.items, latency_ns=self.latency_ns, max_delay_ns=max_delay_ns,
                        seed=seed, arrive=self.arrive)


def arrival_free(x: Any) -> str:
    """``repr`` of an output without its arrival stamp (``recv_ns``), nested records included:
    delaying arrival may change when an output is stamped, not what it says."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if any(f.name == "recv_ns" for f in dataclasses.fields(x)):
            x = dataclasses.replace(x, recv_ns=0)
    return repr(x)


def run(config: Operator, events: Sequence[Event], *, key: str = "k",
        split_at: int | None = None, settle_ns: int = 0, eof: bool = True,
        canon: Callable[[Any], str] = repr) -> list[str]:
    """Drive one key's logic as a runtime would; outputs as ``canon`` strings (``repr``:
    NaN-safe, unlike ``==``)."""
    logic = config.build(None, key=key)
    out: list[str] = []

    def emit(res: tuple[list, bool]) -> None:
        nonlocal logic
        out.extend(canon(x) for x in res[0])
        if res[1]:
            out.append(DISCARDED)
            logic = config.build(None, key=key)

    def fire(now: int) -> None:
        due = logic.notify_at()
        if due is not None and due <= now:
            emit(logic.on_notify(now))

    last = 0
    for i, (now, item) in enumerate(events):
        if i == split_at:
            logic = config.build(pickle.loads(pickle.dumps(logic.snapshot())), key=key)
        fire(now)
        emit(logic.on_item(item))
        last = now
    if settle_ns:
        # Let runtime time pass in steps, as timers would fire.
        end = last + settle_ns
        while True:
            due = logic.notify_at()
            if due is None or due > end:
                break
            emit(logic.on_notify(max(due, last)))
            last = max(due, last)
    if eof:
        emit(logic.on_eof())
    return out


def _fail(case: Case, what: str, a: list[str], b: list[str]) -> None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            raise AssertionError(f"{case.name}: {what}: output {i} differs:\n  {x}\n  {y}")
    raise AssertionError(f"{case.name}: {what}: {len(a)} outputs vs {len(b)}")


def check_deterministic(case: Case) -> None:
    ev = case.events()
    a, b = run(case.config, ev, key=case.key), run(case.config, ev, key=case.key)
    if a != b:
        _fail(case, "not deterministic", a, b)


def check_snapshot_resume(case: Case) -> None:
    ev = case.events()
    whole = run(case.config, ev, key=case.key, settle_ns=case.settle_ns)
    n = len(ev)
    points = range(n) if n <= 60 else sorted({round(k * (n - 1) / 29) for k in range(30)})
    for split in points:
        resumed = run(case.config, ev, key=case.key, split_at=split, settle_ns=case.settle_ns)
        if resumed != whole:
            _fail(case, f"resumed at item {split} differs from an uninterrupted run", whole, resumed)


def check_snapshot_independent(case: Case) -> None:
    ev = case.events()
    logic = case.config.build(None, key=case.key)
    half = len(ev) // 2
    for _, item in ev[:half]:
        logic.on_item(item)
    snap = logic.snapshot()
    before = pickle.dumps(snap)
    for now, item in ev[half:]:
        logic.on_notify(now)
        logic.on_item(item)
    if pickle.dumps(snap) != before:
        raise AssertionError(f"{case.name}: a snapshot changed as the logic went on (aliased state)")


class _ClockWatch:
    """Records calls to wall-clock functions made while it is installed (C calls included)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, frame, event: str, arg) -> None:
        if event != "c_call":
            return
        name = getattr(arg, "__name__", "")
        owner = getattr(arg, "__self__", None)
        if (name in _TIME_FUNCS and owner is time) or (
                name in _DATETIME_FUNCS and isinstance(owner, type)
                and issubclass(owner, (datetime, date))):
            self.calls.append(f"{getattr(owner, '__name__', owner)}.{name} "
                              f"from {frame.f_code.co_filename}:{frame.f_lineno}")


def check_no_wall_clock(case: Case) -> None:
    ev = case.events()
    watch = _ClockWatch()
    # No garbage collection while watched: a collection runs gc.callbacks (hypothesis, once
    # imported, times collections with time.perf_counter), which are not the operator's calls.
    was_enabled = gc.isenabled()
    gc.disable()
    sys.setprofile(watch)
    try:
        run(case.config, ev, key=case.key, split_at=len(ev) // 2, settle_ns=case.settle_ns)
    finally:
        sys.setprofile(None)
        if was_enabled:
            gc.enable()
    if watch.calls:
        raise AssertionError(f"{case.name} read the wall clock: {watch.calls[:3]}")


def _state_size(case: Case, n: int) -> int:
    assert case.long_items is not None
    logic = case.config.build(None, key=case.key)
    for now, item in arrivals(case.long_items(n), latency_ns=case.latency_ns, arrive=case.arrive):
        due = logic.notify_at()
        if due is not None and due <= now:
            logic.on_notify(now)
        logic.on_item(item)
    return len(pickle.dumps(logic.snapshot()))


def check_bounded_state(case: Case) -> None:
    if case.long_items is None:
        return
    n = 2000
    small, large = _state_size(case, n), _state_size(case, 2 * n)
    if large > small * 1.25 + 4096:
        raise AssertionError(f"{case.name}: state grows with the stream: {small} B after {n} "
                             f"items, {large} B after {2 * n}")


def check_out_of_order(case: Case) -> None:
    if case.reorder_ns is None:
        return
    timed = case.on_arrival or (lambda _: False)

    def outputs(ev: list) -> list[str]:
        out = run(case.config, ev, key=case.key, settle_ns=case.settle_ns, canon=arrival_free)
        n = sum(1 for o in out if timed(o))
        return sorted(o for o in out if not timed(o)) + [f"<{n} outputs on arrival time>"]

    base = outputs(case.events())
    for seed in range(5):
        ev = case.events(max_delay_ns=case.reorder_ns, seed=seed)
        got = outputs(ev)
        if got != base:
            _fail(case, f"arrival delayed up to {case.reorder_ns} ns (seed {seed}) changed outputs",
                  base, got)


def check_duplicates(case: Case) -> None:
    if not case.absorbs_duplicates:
        return
    ev = case.events()
    twice = [e for e in ev for _ in (0, 1)]
    a = run(case.config, ev, key=case.key, settle_ns=case.settle_ns)
    b = run(case.config, twice, key=case.key, settle_ns=case.settle_ns)
    if a != b:
        _fail(case, "a re-sent item changed the outputs", a, b)


def check_eviction(case: Case) -> None:
    if case.evict_after_ns is None:
        return
    ev = case.events()
    logic = case.config.build(None, key=case.key)
    for now, item in ev:
        due = logic.notify_at()
        if due is not None and due <= now:
            logic.on_notify(now)
        logic.on_item(item)
    last = ev[-1][0]
    deadline = last + case.evict_after_ns
    now = last
    for _ in range(10_000):
        due = logic.notify_at()
        if due is None or due > deadline:
            break
        now = max(now, due)
        if logic.on_notify(now)[1]:
            return
    raise AssertionError(f"{case.name}: still holding state {case.evict_after_ns} ns after "
                         "its last item")


CHECKS = (check_deterministic, check_snapshot_resume, check_snapshot_independent,
          check_no_wall_clock, check_bounded_state, check_out_of_order, check_duplicates,
          check_eviction)


def yield_checks(case: Case) -> Iterator[Callable[[Case], None]]:
    yield from CHECKS


def check_operator(case: Case) -> None:
    for check in yield_checks(case):
        check(case)


class Clocked:
    """A logic driven by a clock, as a runtime drives it: ``on_notify()`` and the other
    verbs return only the outputs, and the clock's time is handed in.

    >>> from vitalstream.clock import FakeClock
    >>> from vitalstream.operators.dedup import Dedup
    >>> c = Clocked(Dedup().build(), FakeClock(0))
    >>> c.on_notify(), c.notify_at()
    ([], None)
    """

    def __init__(self, logic: Logic, clock: Clock) -> None:
        self.logic = logic
        self.clock = clock

    def on_item(self, item: Any) -> list:
        return self.logic.on_item(item)[0]

    def on_batch(self, items: Sequence[Any]) -> list:
        batch = getattr(self.logic, "on_batch", None)
        if batch is not None:
            return batch(items)[0]
        return [x for item in items for x in self.logic.on_item(item)[0]]

    def on_notify(self) -> list:
        return self.logic.on_notify(self.clock.now_ns())[0]

    def notify_at(self) -> int | None:
        return self.logic.notify_at()

    def on_eof(self) -> list:
        return self.logic.on_eof()[0]

    def snapshot(self) -> Any:
        return self.logic.snapshot()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logic, name)
