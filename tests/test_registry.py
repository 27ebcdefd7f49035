"""Device registry on a real Redis: intervals by event time, overlap rule, per-user
mapping, key layout, cached resolver refresh, and a model-based property test.

The model in ``Model`` is the rule of the registry's docstring written out
naively (a list of intervals, linear scan), independent of the implementation.
"""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vitalstream.connectors.registry import DeviceRegistry, RegistryResolver
from vitalstream.errors import IdentityError
from vitalstream.model import RawReading

H = 3600 * 10**9


@pytest.fixture
def reg(redis_client):
    return DeviceRegistry(redis_client, prefix="t:devices")


def raw(device: str, event_ns: int, patient: str | None = None, user: int | None = None) -> RawReading:
    return RawReading(device, patient, "heart_rate", 70.0, "/min", event_ns, user=user)


def test_lookup_is_by_event_time_with_half_open_intervals(reg):
    reg.assign("strap-1", "p1", 10 * H, 20 * H)
    assert reg.lookup("strap-1", 10 * H - 1) is None
    assert reg.lookup("strap-1", 10 * H) == "p1"
    assert reg.lookup("strap-1", 20 * H - 1) == "p1"
    assert reg.lookup("strap-1", 20 * H) is None
    assert reg.lookup("other", 15 * H) is None


def test_reassignment_cuts_the_open_interval_and_history_keeps_both(reg):
    reg.assign("AA:BB:CC:DD:EE:01", "p1", 0)
    reg.assign("aa-bb-cc-dd-ee-01", "p2", 5 * H)  # same MAC, other spelling
    assert reg.lookup("aabbccddee01", 5 * H - 1) == "p1"
    assert reg.lookup("AA:BB:CC:DD:EE:01", 5 * H) == "p2"
    assert reg.lookup("AA:BB:CC:DD:EE:01", 10**6 * H) == "p2"
    hist = [(a.patient, a.start_ns, a.end_ns) for a in reg.history("AA:BB:CC:DD:EE:01")]
    assert hist == [("p1", 0, 5 * H), ("p2", 5 * H, None)]


@pytest.mark.parametrize("new", [(2 * H, 4 * H), (0, None), (-H, H + 1), (3 * H, 12 * H)])
def test_overlap_with_closed_history_or_a_later_start_is_rejected(reg, new):
    reg.assign("d", "p1", H, 5 * H)
    reg.assign("d", "p2", 10 * H)
    before = reg.history("d")
    with pytest.raises(IdentityError) as e:
        reg.assign("d", "p3", *new)
    assert e.value.reason == "overlap"
    assert reg.history("d") == before


def test_same_patient_again_is_a_no_op_and_bad_input_is_refused(reg):
    reg.assign("d", "p1", H)
    v = reg.version()
    reg.assign("d", "p1", 2 * H)
    assert reg.version() == v and len(reg.history("d")) == 1
    with pytest.raises(IdentityError, match="bad_interval"):
        reg.assign("e", "p1", 2 * H, 2 * H)
    with pytest.raises(IdentityError, match="bad_patient"):
        reg.assign("e", "", 0)


def test_unassign_closes_the_open_interval(reg):
    with pytest.raises(IdentityError, match="not_assigned"):
        reg.unassign("d", H)
    reg.assign("d", "p1", H)
    with pytest.raises(IdentityError, match="bad_interval"):
        reg.unassign("d", H)
    reg.unassign("d", 3 * H)
    assert reg.lookup("d", 3 * H - 1) == "p1" and reg.lookup("d", 3 * H) is None
    with pytest.raises(IdentityError, match="not_assigned"):
        reg.unassign("d", 4 * H)


def test_shared_cuff_maps_per_user_index_and_never_guesses(reg):
    reg.assign("cuff", "mum", 0, user=1)
    reg.assign("cuff", "dad", 0, user=2)
    assert reg.lookup("cuff", H, user=1) == "mum"
    assert reg.lookup("cuff", H, user=2) == "dad"
    assert reg.lookup("cuff", H, user=3) is None
    assert reg.lookup("cuff", H, user=255) is None  # 0xFF: unknown user
    # a single-user device that happens to send a user index maps by device
    reg.assign("scale", "p5", 0)
    assert reg.lookup("scale", H, user=1) == "p5"
    assert reg.lookup("scale", H) == "p5"


def test_redis_key_layout_is_as_documented(reg, redis_client):
    reg.assign("cuff", "mum", 7, user=1)
    reg.assign("strap", "p1", 5, 9)
    assert json.loads(redis_client.hget("t:devices:dev:cuff#u1", "7")) == {"patient": "mum", "end_ns": None}
    assert json.loads(redis_client.hget("t:devices:dev:strap", "5")) == {"patient": "p1", "end_ns": 9}
    assert redis_client.smembers("t:devices:index") == {b"cuff#u1", b"strap"}
    assert int(redis_client.get("t:devices:version")) == 2
    log = redis_client.xrange("t:devices:log")
    assert [(e[1][b"op"], e[1][b"key"]) for e in log] == [(b"assign", b"cuff#u1"), (b"assign", b"strap")]
    assert [(a.device, a.user, a.patient) for a in reg.list()] == [("cuff", 1, "mum"), ("strap", None, "p1")]


def test_concurrent_conflicting_assignments_let_exactly_one_win(reg):
    barrier, outcomes = threading.Barrier(8), []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            reg.assign("d", f"p{i}", 0, 10 * H)
            outcomes.append("ok")
        except IdentityError as e:
            outcomes.append(e.reason)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["overlap"] * 7
    assert len(reg.history("d")) == 1


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_resolver_sees_changes_after_one_poll_interval_without_restart(reg):
    clock = FakeMonotonic()
    res = RegistryResolver(reg, poll_s=0.5, monotonic=clock)
    assert res(raw("strap", H)) is None  # unknown, payload names nobody: quarantine
    reg.assign("strap", "p1", 0)
    clock.t = 0.4
    assert res(raw("strap", H)) is None  # not polled yet: cached view
    clock.t = 0.5
    assert res(raw("strap", H)) == "p1"
    reloads = res.reloads
    clock.t = 5.0
    res(raw("strap", H))
    assert res.reloads == reloads  # version unchanged: no reload


def test_resolver_registry_is_authoritative_payload_only_for_unknown_devices(reg):
    reg.assign("strap", "p1", 10 * H)
    res = RegistryResolver(reg)
    assert res(raw("strap", 11 * H, patient="someone-else")) == "p1"
    assert res(raw("strap", 9 * H, patient="someone-else")) is None  # registered, not yet assigned
    assert res(raw("json-dev", H, patient="p7")) == "p7"
    assert RegistryResolver(reg, trust_payload=False)(raw("json-dev", H, patient="p7")) is None


def test_resolver_maps_shared_cuff_readings_by_user(reg):
    reg.assign("cuff", "mum", 0, user=1)
    res = RegistryResolver(reg)
    assert res(raw("cuff", H, user=1)) == "mum"
    assert res(raw("cuff", H, user=2)) is None


class Model:
    """The documented rule, naively."""

    def __init__(self) -> None:
        self.items: list[list] = []  # [patient, start, end]

    def assign(self, patient: str, start: int, end: int | None) -> str:
        cut = None
        for it in self.items:
            p, s, e = it
            if (end is None or s < end) and (e is None or start < e):
                if e is None and p == patient and s <= start and end is None:
                    return "noop"
                if e is None and s < start and cut is None:
                    cut = it
                    continue
                return "overlap"
        if cut is not None:
            cut[2] = start
        self.items.append([patient, start, end])
        return "ok"

    def lookup(self, t: int) -> str | None:
        for p, s, e in self.items:
            if s <= t and (e is None or t < e):
                return p
        return None


ops = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 20),
                         st.one_of(st.none(), st.integers(1, 10))), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_registry_agrees_with_a_naive_model_of_the_overlap_rule(redis_client, ops):
    redis_client.flushdb()
    reg, model = DeviceRegistry(redis_client, prefix="m"), Model()
    for patient, start, length in ops:
        end = None if length is None else start + length
        want = model.assign(patient, start, end)
        try:
            reg.assign("d", patient, start, end)
            got = "ok"
        except IdentityError as e:
            got = e.reason
        assert got == ("ok" if want == "noop" else want)
    snapshot = RegistryResolver(reg)
    for t in range(-1, 32):
        assert reg.lookup("d", t) == model.lookup(t)
        assert snapshot(raw("d", t)) == model.lookup(t)


def test_cli_assign_reassign_history_and_list(redis_server, redis_client, capsys):
    from vitalstream.stream.cli import main

    common = ["--redis-url", redis_server.url, "--registry-prefix", "cli"]
    assert main(["devices", "assign", "aa:bb:cc:dd:ee:01", "p1", "--start",
                 "2026-11-25T10:00:00+01:00", *common]) == 0
    assert main(["devices", "assign", "AA:BB:CC:DD:EE:01", "p2", "--start", "1795600800000000000",
                 *common]) == 0
    assert main(["devices", "assign", "cuff", "mum", "--user", "2", "--start", "0", *common]) == 0
    assert main(["devices", "assign", "AA:BB:CC:DD:EE:01", "p3", "--start", "2026-11-25T09:30:00",
                 *common]) == 2  # a naive time is refused
    capsys.readouterr()
    assert main(["devices", "history", "AA:BB:CC:DD:EE:01", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    # 10:00+01:00 is 09:00Z = 1795597200 s; the second start is 10:00Z
    assert [(r["patient"], r["start_ns"], r["end_ns"]) for r in rows] == [
        ("p1", 1795597200 * 10**9, 1795600800 * 10**9), ("p2", 1795600800 * 10**9, None)]
    assert main(["devices", "unassign", "cuff", "--user", "2", "--at", "5", *common]) == 0
    assert main(["devices", "list", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["device"], r["user"], r["patient"], r["end_ns"]) for r in rows] == [
        ("AA:BB:CC:DD:EE:01", None, "p1", 1795600800 * 10**9),
        ("AA:BB:CC:DD:EE:01", None, "p2", None), ("cuff", 2, "mum", 5)]
