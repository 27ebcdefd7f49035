"""Duplicate suppression (bounded horizon) and the normalise step's record shape."""

from __future__ import annotations

import json

from vitalstream.model import Message, Quality, RawReading, Reading
from vitalstream.operators.dedup import Dedup
from vitalstream.operators.normalise import Normaliser
from vitalstream.signals import Signal
from vitalstream.stream.ingest import Ingest

NS = 1_000_000_000
T0 = 1795600800 * NS


def test_duplicate_within_horizon_detected_distinct_keys_not():
    d = Dedup(horizon_ns=600 * NS, bucket_ns=10 * NS).build()
    assert d.seen_before(("dev-1", "heart_rate", T0)) is False
    assert d.seen_before(("dev-1", "heart_rate", T0)) is True
    # Same time, other signal / other device / 1 ns later: different readings.
    assert d.seen_before(("dev-1", "spo2", T0)) is False
    assert d.seen_before(("dev-2", "heart_rate", T0)) is False
    assert d.seen_before(("dev-1", "heart_rate", T0 + 1)) is False
    # A re-send after newer readings, still inside the horizon, is caught.
    assert d.seen_before(("dev-1", "heart_rate", T0 + 599 * NS)) is False
    assert d.seen_before(("dev-1", "heart_rate", T0)) is True


def test_key_exactly_at_horizon_still_remembered():
    d = Dedup(horizon_ns=600 * NS, bucket_ns=10 * NS).build()
    d.seen_before(("d", "heart_rate", T0))
    d.seen_before(("d", "heart_rate", T0 + 600 * NS))  # newest - horizon == T0
    assert d.seen_before(("d", "heart_rate", T0)) is True


def test_readings_older_than_horizon_pass_unverified():
    d = Dedup(horizon_ns=600 * NS, bucket_ns=10 * NS).build()
    d.seen_before(("d", "heart_rate", T0 + 1000 * NS))
    old = ("d", "heart_rate", T0 + 399 * NS)  # 601 s behind the newest
    assert d.seen_before(old) is False
    assert d.seen_before(old) is False  # not remembered either: memory stays bounded
    assert len(d) == 1


def test_memory_bounded_over_long_stream():
    horizon, bucket = 600 * NS, 10 * NS
    d = Dedup(horizon_ns=horizon, bucket_ns=bucket).build()
    max_keys = max_buckets = 0
    # 20 000 readings of 3 signals, one per second each: 60 000 keys over 5.5 h.
    for i in range(20_000):
        for sig in ("heart_rate", "spo2", "resp_rate"):
            assert d.seen_before(("d", sig, T0 + i * NS)) is False
        max_keys = max(max_keys, len(d))
        max_buckets = max(max_buckets, len(d.state.buckets))
    # The horizon holds 601 s x 3 signals; expiry runs past horizon/bucket + 3 = 63
    # buckets and keeps those from one bucket before the horizon: at most 64 buckets
    # of 10 s x 3 keys.
    assert max_buckets <= 64
    assert max_keys <= 64 * 10 * 3
    assert max_keys >= 601 * 3  # but everything inside the horizon is kept
    # and a re-send 10 minutes late is still caught at the end of the stream
    assert d.seen_before(("d", "spo2", T0 + (20_000 - 600) * NS)) is True


def test_dedup_snapshot_is_a_copy_and_resumes():
    cfg = Dedup(horizon_ns=60 * NS, bucket_ns=10 * NS)
    d = cfg.build()
    d.seen_before(("d", "heart_rate", T0))
    snap = d.snapshot()
    d.seen_before(("d", "heart_rate", T0 + NS))
    resumed = cfg.build(snap)
    assert resumed.seen_before(("d", "heart_rate", T0)) is True
    assert resumed.seen_before(("d", "heart_rate", T0 + NS)) is False  # taken after the snapshot


def _msg(readings: list[dict], recv_ns: int, device: str = "dev-1") -> Message:
    body = {"patient": "p-1", "readings": readings}
    return Message(f"vitalstream/{device}/json", json.dumps(body).encode(), recv_ns)


def test_ingest_drops_resent_message_and_duplicates_inside_one_pack():
    ing = Ingest(Normaliser(max_clock_skew_ns=None))
    rec = [{"signal": "heart_rate", "value": 70, "t_ns": T0},
           {"signal": "heart_rate", "value": 70, "t_ns": T0},       # repeated inside the pack
           {"signal": "heart_rate", "value": 72, "t_ns": T0 + NS}]
    first = ing.process_batch([_msg(rec, T0 + 2 * NS)])
    again = ing.process_batch([_msg(rec, T0 + 30 * NS)])            # QoS 1 redelivery
    other = ing.process_batch([_msg(rec[:1], T0 + 31 * NS, device="dev-2")])
    assert [(r.value, r.event_ns) for r in first if type(r) is Reading] == [(70.0, T0),
                                                                          (72.0, T0 + NS)]
    assert [r for r in again if type(r) is Reading] == []
    assert [(r.device, r.event_ns) for r in other if type(r) is Reading] == [("dev-2", T0)]
    assert (ing.stats.readings, ing.stats.duplicates, ing.stats.messages) == (3, 4, 3)


def test_normalise_keeps_identity_source_and_quality_flags():
    n = Normaliser(max_clock_skew_ns=300 * NS)
    raw = RawReading("dev-1", "p-9", "heart_rate", 1.5, "Hz", T0, Quality.MOTION_ARTEFACT, "senml")
    r = n.normalise(raw, recv_ns=T0 + 3 * NS)
    assert r == Reading("p-9", "dev-1", Signal.HEART_RATE, 90.0, "/min", T0, T0 + 3 * NS, "senml",
                        Quality.MOTION_ARTEFACT)
    assert r.dedup_key() == ("dev-1", "heart_rate", T0)
