"""One identity per person: aliases, merges and splits in a real Redis, audited.

What a merge does to data already stored is defined in ``connectors.persons``: per-id
records are never rewritten, a person's view is the union over its ids. These tests
hold the registry and the views to that.
"""

from __future__ import annotations

import pytest

from vitalstream.care import Nudge, NudgeSuppressed
from vitalstream.connectors.persons import PersonRegistry, PersonResolver
from vitalstream.errors import IdentityError, VitalstreamError
from vitalstream.model import RawReading
from vitalstream.operators.care import CareFlow
from vitalstream.operators.profile import Hypertension, ProfileRules
from vitalstream.sinks.profiles import ProfileStore
from vitalstream.stream.care import CareService, CareWriter
from vitalstream.testing import FakeClock

from test_profile import DAY, T0, home_bp


def test_aliases_of_other_systems_resolve_to_one_person(redis_client):
    reg = PersonRegistry(redis_client)
    reg.link("p-1", "mrn", "H123456", by="nurse")
    reg.link("p-1", "phone", "+447700900123", by="nurse")
    reg.link("p-1", "msg", "whatsapp:447700900123", by="nurse")
    assert reg.find("mrn", "H123456") == "p-1"
    assert reg.find("phone", "+447700900123") == "p-1"
    assert reg.find("app", "nobody") is None
    with pytest.raises(IdentityError) as err:
        reg.link("p-2", "mrn", "H123456", by="nurse")  # already someone else's
    assert err.value.reason == "already_linked" and isinstance(err.value, VitalstreamError)
    with pytest.raises(IdentityError):
        reg.link("p-1", "fax", "1", by="nurse")
    with pytest.raises(IdentityError):
        reg.link("p-1", "mrn", "has space", by="nurse")
    assert reg.link("p-1", "mrn", "H123456", by="nurse").op == "none"  # idempotent


def test_merge_moves_aliases_and_unlink_gives_them_back_with_an_audit_trail(redis_client):
    reg = PersonRegistry(redis_client)
    reg.link("p-b", "phone", "+15550001", by="admin")
    merge = reg.link("p-a", "patient", "p-b", by="dr.lee", reason="same person, duplicate MRN")
    assert merge.moved == ("phone:+15550001",)
    assert reg.resolve("p-b") == "p-a" and reg.find("phone", "+15550001") == "p-a"
    assert reg.ids("p-a") == ["p-a", "p-b"]
    with pytest.raises(IdentityError) as err:
        reg.link("p-b", "patient", "p-a", by="x")  # p-b is p-a now: a merge into itself
    assert err.value.reason == "self_merge"
    split = reg.unlink("patient", "p-b", by="dr.lee", reason="not the same after all")
    assert split.moved == ("phone:+15550001",)
    assert reg.resolve("p-b") == "p-b" and reg.find("phone", "+15550001") == "p-b"
    log = reg.history("p-a")
    assert [(c.op, c.alias, c.by) for c in log] == [("link", "patient:p-b", "dr.lee"),
                                                    ("unlink", "patient:p-b", "dr.lee")]
    assert log[0].reason == "same person, duplicate MRN"


def test_chains_are_flattened(redis_client):
    reg = PersonRegistry(redis_client)
    reg.link("p-a", "patient", "p-b", by="x")
    reg.link("p-b", "patient", "p-c", by="x")  # p-b is p-a: p-c joins p-a
    assert reg.resolve("p-c") == "p-a" and reg.ids("p-a") == ["p-a", "p-b", "p-c"]


def test_resolver_gives_readings_the_merged_person_but_they_keep_their_device(redis_client):
    reg = PersonRegistry(redis_client)
    t = [0.0]
    resolve = PersonResolver(reg, lambda raw: raw.patient, poll_s=1.0, monotonic=lambda: t[0])
    raw = RawReading("cuff-9", "p-b", "bp_systolic", 140.0, "mm[Hg]", T0)
    assert resolve(raw) == "p-b"
    reg.link("p-a", "patient", "p-b", by="x")
    assert resolve(raw) == "p-b"  # cached until the next poll
    t[0] = 1.5
    assert resolve(raw) == "p-a" and raw.device == "cuff-9"


def test_merge_moves_profiles_and_nudges_into_one_view_and_unlink_restores_them(redis_client):
    store = ProfileStore(redis_client)
    reg = PersonRegistry(redis_client)
    flow = CareFlow(profile=ProfileRules(rules=(Hypertension(),)))
    svc = CareService(flow, CareWriter(store), FakeClock(T0), person_of=reg.resolve)
    svc.feed(home_bp("p-b", 150, 95, days=6, seed=1, p_measure=1.0))  # p-b: hypertension
    store.record([Nudge("p-b", "bp-missing", "patient-reminder", "sms", T0, T0, "m", "r"),
                  NudgeSuppressed("p-b", "bp-missing", "cap", T0 + DAY, "sms", "sms/day")])
    before_b = store.person(reg.ids("p-b"))
    assert store.person(reg.ids("p-a"))["tags"] == {}

    reg.link("p-a", "patient", "p-b", by="dr.lee")
    a = store.person(reg.ids(reg.resolve("p-b")))
    assert set(a["tags"]) == {"hypertension"} and a["tags"]["hypertension"]["id"] == "p-b"
    assert [n["status"] for n in a["nudges"]] == ["sent", "suppressed"]
    assert a["suppressed"] == {"bp-missing|cap": 1}
    # from the merge on, p-b's readings go to the person p-a's logic
    svc.feed(home_bp("p-b", 150, 95, days=2, seed=2, p_measure=1.0, start_ns=T0 + 10 * DAY))
    assert "p-a" in svc.logics

    reg.unlink("patient", "p-b", by="dr.lee")
    assert store.person(reg.ids("p-a"))["tags"] == {}
    after_b = store.person(reg.ids("p-b"))
    assert after_b["tags"] == before_b["tags"] and after_b["nudges"] == before_b["nudges"]
