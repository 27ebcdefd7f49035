"""The per-device rate limit of stage A (operators/ratelimit.py, Ingest): a device flooding
gets exactly its bucket's allowance, one dead letter per message for the rest, counted;
every other device in the same batches goes on.

Expected allowances are computed by hand (token bucket: ``burst`` at the start, one token
back every ``1/rate``) or by an independent token bucket in exact fractions."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings as hsettings, strategies as hs

from vitalstream.errors import ConfigError
from vitalstream.model import DeadLetter, Message, Reading
from vitalstream.operators.check import Case, check_operator
from vitalstream.operators.ratelimit import RateLimit
from vitalstream.signals import Signal
from vitalstream.stream import assembly
from vitalstream.stream.ingest import Ack, Ingest
from vitalstream.stream.settings import load
from vitalstream.operators.normalise import Normaliser

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_790_000_000 * NS


def _msg(device: str, recv_ns: int, n: int = 1, seq: int = 0) -> Message:
    assert n < 16
    # live device times (within the skew), distinct per reading (seq, k) so dedup keeps all
    body = {"v": 1, "device": device,
            "readings": [{"signal": "heart_rate", "value": 60.0 + k % 50,
                          "t_ns": T0 + seq * 16 + k} for k in range(n)]}
    return Message(f"vitalstream/{device}/json", json.dumps(body).encode(), recv_ns, token=seq)


def _ingest(rate: float = 50.0, burst: int = 500) -> Ingest:
    return Ingest(Normaliser(), rate_limit=RateLimit(rate, burst))


def _run(ing: Ingest, msgs: list[Message], batch: int = 100) -> list:
    out: list = []
    for i in range(0, len(msgs), batch):
        out += ing.process_batch(msgs[i:i + batch])
    return out


def _stored(out: list, device: str) -> int:
    return sum(1 for o in out if type(o) is Reading and o.device == device)


def _limited(out: list) -> list[DeadLetter]:
    return [o for o in out if type(o) is DeadLetter and o.reason == "rate_limited"]


def test_a_device_at_ten_times_its_rate_gets_exactly_its_allowance():
    # 50/s, burst 500. "flood" sends 500 messages/s for 10 s (one reading
    # each, every 2 ms: t = 0 .. 9.998 s); "calm" sends 50/s, exactly its rate.
    # By hand: flood has 500 tokens at t=0 and gets one back every 20 ms; by its last
    # message at 9.998 s that is 499 more (at 20 ms, 40 ms, ..., 9.98 s): 999 pass.
    msgs = []
    for i in range(5000):
        t = T0 + i * 2 * MS
        msgs.append(_msg("flood", t, seq=i))
        if i % 10 == 0:
            msgs.append(_msg("calm", t + MS, seq=i))
    ing = _ingest()
    out = _run(ing, msgs)
    assert _stored(out, "flood") == 999
    assert _stored(out, "calm") == 500  # loses nothing
    dead = _limited(out)
    assert len(dead) == 5000 - 999 and {d.device for d in dead} == {"flood"}
    assert ing.stats.rate_limited == 4001
    assert ing.stats.by_reason["rate_limited"] == 4001
    assert sum(1 for o in out if type(o) is Ack) == len(msgs)  # every message acked


def test_one_dead_letter_per_message_however_many_of_its_readings_are_refused():
    # 10 readings a message, 50 messages/s for 10 s (t = m x 20 ms, m = 0..499): 500/s.
    # By hand: before message m the bucket holds 500 - 10m + m; messages 0..54 pass whole
    # (4 tokens left after 54), message 55 finds 5 (5 refused), and each later one finds
    # the single token that came back: 1 passes, 9 are refused. Passed: 550 + 5 + 444.
    msgs = [_msg("pack", T0 + m * 20 * MS, n=10, seq=m) for m in range(500)]
    ing = _ingest()
    out = _run(ing, msgs, batch=37)
    assert _stored(out, "pack") == 999
    dead = _limited(out)
    assert len(dead) == 500 - 55
    assert dead[0].detail.startswith("5 of 10 readings") and dead[1].detail.startswith("9 of 10")
    assert dead[0].payload == msgs[55].payload and dead[0].recv_ns == msgs[55].recv_ns
    assert ing.stats.rate_limited == 5000 - 999


def test_a_device_that_was_quiet_has_its_full_burst_again():
    ing = _ingest(rate=10.0, burst=5)
    first = _run(ing, [_msg("d", T0, n=8)])
    again = _run(ing, [_msg("d", T0 + 500 * MS, n=8, seq=1)])  # 5 tokens x 100 ms: full
    assert (_stored(first, "d"), _stored(again, "d")) == (5, 5)


# -- any arrival pattern: an independent token bucket in exact fractions --

def _oracle(times_ns: list[int], rate: float, burst: int) -> list[bool]:
    tokens, last, out = Fraction(burst), None, []
    per_ns = Fraction(1) / (NS // int(rate))  # rate divides 1e9 in these tests
    for t in times_ns:
        if last is not None:
            tokens = min(Fraction(burst), tokens + (t - last) * per_ns)
        last = t
        ok = tokens >= 1
        out.append(ok)
        if ok:
            tokens -= 1
    return out


RATE, BURST = 10.0, 5  # T = 100 ms
T = 100 * MS


@hsettings(max_examples=60, deadline=None)
@given(flood=hs.lists(hs.tuples(hs.integers(0, 60 * MS), hs.integers(1, 4)), min_size=1,
                      max_size=120),
       calm_burst=hs.integers(1, BURST),
       calm_gaps=hs.lists(hs.integers(T, 3 * T), max_size=40),
       batch=hs.integers(1, 25))
def test_any_arrivals_allowance_never_exceeded_and_a_compliant_device_never_starved(
        flood, calm_burst, calm_gaps, batch):
    # flood: messages with gaps up to 60 ms and 1-4 readings each (bursty, often over rate).
    # calm: a burst within its bucket, then gaps of at least T: compliant by construction.
    msgs, t = [], T0
    f_times: list[int] = []
    for i, (gap, n) in enumerate(flood):
        t += gap
        msgs.append(_msg("flood", t, n=n, seq=i))
        f_times += [t] * n
    c, calm = T0 + 7 * MS, []
    calm.extend([c] * calm_burst)
    for g in calm_gaps:
        c += g
        calm.append(c)
    for j, tc in enumerate(calm):
        msgs.append(_msg("calm", tc, seq=10_000 + j))
    msgs.sort(key=lambda m: m.recv_ns)  # stable: a message's readings stay in order
    ing = _ingest(RATE, BURST)
    out = _run(ing, msgs, batch)

    assert _stored(out, "calm") == len(calm)
    passed = [r.recv_ns for r in out if type(r) is Reading and r.device == "flood"]
    assert len(passed) == sum(_oracle(f_times, RATE, BURST))
    # in any stretch [a, b] of receive time, at most BURST + (b - a) / T readings pass
    for i in range(len(passed)):
        for j in range(i, len(passed)):
            assert j - i + 1 <= BURST + (passed[j] - passed[i]) // T
    assert ing.stats.rate_limited == len(f_times) - len(passed)
    # one dead letter for each flood message with a refused reading, none for calm
    flags, refused_msgs = iter(_oracle(f_times, RATE, BURST)), 0
    for _, n in flood:
        refused_msgs += not all([next(flags) for _ in range(n)])
    dead = _limited(out)
    assert len(dead) == refused_msgs and all(d.device == "flood" for d in dead)


@hsettings(max_examples=200, deadline=None)
@given(gaps=hs.lists(hs.integers(0, 3 * T), min_size=1, max_size=200))
def test_the_limiter_is_the_token_bucket(gaps):
    lim = RateLimit(RATE, BURST).limiter()
    times, t = [], T0
    for g in gaps:
        t += g
        times.append(t)
    assert [lim.admit("d", x) for x in times] == _oracle(times, RATE, BURST)


# -- bounded state --

def test_state_holds_only_devices_whose_bucket_is_not_full():
    # 100,000 devices, one reading each, 1 ms apart: each bucket is full again 20 ms later,
    # and the limiter sweeps every burst x T = 10 s: it never holds more than 10 s of them.
    lim = RateLimit(50.0, 500).limiter()
    most = 0
    for i in range(100_000):
        assert lim.admit(f"dev-{i}", T0 + i * MS)
        most = max(most, len(lim))
    assert most <= 10_000 + 20


def test_an_id_spray_past_max_devices_forgets_rather_than_refuses():
    lim = RateLimit(1.0, 1, max_devices=100).limiter()
    assert all(lim.admit(f"dev-{i}", T0) for i in range(1000))  # each one's first reading
    assert len(lim) <= 101


# -- the operator contract --

def _hr(t_ns: int) -> Reading:
    return Reading("p1", "d1", Signal.HEART_RATE, 70.0, "/min", t_ns, t_ns)


def _stream(n: int) -> list[Reading]:
    # 20/s for a second, then a 2 s pause, again: over a 10/s limit, and full again between
    return [_hr(T0 + (i // 20) * 3 * NS + (i % 20) * 50 * MS) for i in range(n)]


def test_rate_limit_meets_the_operator_contract():
    # order matters (a reading delayed may find the bucket refilled), and a re-sent
    # reading costs a token, so neither reorder_ns nor absorbs_duplicates; full again
    # (state dropped) burst x T after the last reading
    check_operator(Case("rate-limit", RateLimit(RATE, BURST), _stream(120), key="d1",
                        latency_ns=MS, evict_after_ns=BURST * T, long_items=_stream))


def test_the_operator_refuses_what_the_limiter_refuses():
    lg = RateLimit(RATE, BURST).build(key="d1")
    readings = _stream(60)
    got = [bool(lg.on_item(r)[0]) for r in readings]
    assert got == _oracle([r.recv_ns for r in readings], RATE, BURST)
    assert lg.st.refused == got.count(False) > 0


# -- settings, assembly, metric --

def test_settings_build_the_limit_and_null_or_trusted_times_switch_it_off():
    assert assembly.rate_limit(load(env={})) == RateLimit(50.0, 10_000)  # burst: a day of back-fill
    off = {("pipeline", "device_rate_per_s"): "null"}
    assert assembly.rate_limit(load(env={}, overrides=off)) is None
    trusted = {("pipeline", "max_clock_skew_s"): "null"}
    assert assembly.rate_limit(load(env={}, overrides=trusted)) is None
    ing = assembly.ingest(load(env={}, overrides={("pipeline", "device_burst"): 2}),
                          patient_of=lambda raw: raw.device)
    assert _stored(ing.process_batch([_msg("d", T0, n=3)]), "d") == 2


@pytest.mark.parametrize("key,value", [("device_rate_per_s", 0), ("device_rate_per_s", -5),
                                       ("device_burst", 0)])
def test_settings_refuse_a_limit_that_admits_nothing(key, value):
    with pytest.raises(ConfigError):
        load(env={}, overrides={("pipeline", key): value})


def test_the_metric_counts_refused_readings():
    from vitalstream.stream.app import _METRICS, Live

    ing = _ingest(RATE, BURST)
    ing.process_batch([_msg("d", T0, n=8)])
    assert Live(ingests=[ing]).totals()["rate_limited"] == 3
    assert _METRICS["rate_limited"][0] == "vitalstream_rate_limited_total"
