"""Care profiles on the console's API: a patient's tags with their evidence, the nudges sent
and suppressed, manual tags set and cleared by the care team, the ward filtered by tag, and
who may see or change what, on the real app and Redis (``testkit.world``: ward-a holds pa-001
and pa-002, ward-b pb-001; nina is a nurse of ward-a, vera a viewer of ward-a, otto a nurse
of ward-b, pia a physician of both).

Profiles get into Redis as the pipeline puts them there: the real care stage
(``CareService`` with the default profile rules) over simulated home blood pressure
(``test_profile.home_bp``), nudges through ``ProfileStore.record``. Expected tag starts come
from ``test_profile.first_guideline_time`` (a batch scan of the guideline's definition), the
evidence from the readings themselves.
"""

from __future__ import annotations

import doctest

import pytest

from vitalstream.care import CareEvent, Nudge, NudgeSuppressed
from vitalstream.stream.console import profiles as profiles_mod
from vitalstream.stream.console import testkit
from vitalstream.stream.console.testkit import csrf_h

from test_profile import DAY, T0, first_guideline_time, home_bp

pytestmark = pytest.mark.services

HTN = dict(sbp=150, dbp=95, days=10, p_measure=1.0)


@pytest.fixture
def w(redis_server, redis_client):
    return testkit.world(redis_server.url, client=redis_client)


def bp(patient: str, seed: int = 1, **kw):
    return home_bp(patient, **{**HTN, **kw}, seed=seed)


def pairs(readings) -> dict[int, str]:
    """event_ns -> "sys/dia mm[Hg]" of a cuff's readings (as a clinician writes them)."""
    out: dict[int, list] = {}
    for r in readings:
        out.setdefault(r.event_ns, [None, None])[r.signal.value == "bp_diastolic"] = r.value
    return {t: f"{s:g}/{d:g} mm[Hg]" for t, (s, d) in out.items()}


def nudges(patient: str) -> list:
    return [Nudge(patient, "bp-missing", "patient-reminder", "sms", T0 + 11 * DAY, T0 + 11 * DAY,
                  "please measure your blood pressure", "no blood pressure reading for 3 days"),
            NudgeSuppressed(patient, "bp-missing", "cap", T0 + 12 * DAY, "sms", "sms/day"),
            NudgeSuppressed(patient, "bp-missing", "cap", T0 + 13 * DAY, "sms", "sms/day"),
            NudgeSuppressed(patient, "med-refill", "holdout", T0 + 14 * DAY, "app",
                            experiment="refill-2026", variant="holdout")]


def profile(client, patient: str) -> dict:
    got = client.get(f"/api/patients/{patient}/profile")
    assert got.status_code == 200, got.text
    return got.json()


def post_tag(client, csrf: str, patient: str, tag: str, action: str, reason: str = ""):
    return client.post(f"/api/patients/{patient}/tags",
                       json={"tag": tag, "action": action, "reason": reason},
                       headers=csrf_h(csrf))


def ward(client, **params) -> list[str]:
    got = client.get("/api/patients", params=params)
    assert got.status_code == 200, got.text
    return [p["patient"] for p in got.json()["patients"]]


# -- what the profile shows --


def test_profile_shows_the_derived_tag_with_its_evidence_and_the_nudges(w):
    readings = bp("pa-001")
    w.care(readings, nudges("pa-001"))
    nina, _ = w.login("nina")
    p = profile(nina, "pa-001")
    assert (p["patient"], p["person"], p["ids"], p["aliases"]) == ("pa-001", "pa-001", ["pa-001"], [])
    (t,) = p["tags"]
    assert (t["tag"], t["source"], t["id"]) == ("hypertension", "derived", "pa-001")
    assert t["since_ns"] == first_guideline_time(readings, 130, 80)
    assert t["end_ns"] is None and 0 < t["confidence"] <= 1
    assert t["rule"].startswith("acc-aha-2017") and t["guideline"].startswith("Whelton")
    # every piece of evidence is one of the patient's own readings, as measured
    measured = pairs(readings)
    assert len(t["evidence"]) >= 6
    for e in t["evidence"]:
        assert e["signal"] == "bp" and e["note"] == measured[e["event_ns"]]
    # nudges: newest first, sent and suppressed with strategy, channel and reason
    assert [(n["status"], n["strategy"], n["channel"], n["reason"]) for n in p["nudges"]] == [
        ("suppressed", "med-refill", "app", "holdout"),
        ("suppressed", "bp-missing", "sms", "cap"),
        ("suppressed", "bp-missing", "sms", "cap"),
        ("sent", "bp-missing", "sms", "no blood pressure reading for 3 days")]
    assert [n["at_ns"] for n in p["nudges"]] == [T0 + d * DAY for d in (14, 13, 12, 11)]
    assert p["nudges"][1]["detail"] == "sms/day" and p["nudges"][0]["variant"] == "holdout"
    assert p["nudges"][3]["message"] == "please measure your blood pressure"
    assert p["suppressed"] == [{"strategy": "bp-missing", "reason": "cap", "count": 2},
                               {"strategy": "med-refill", "reason": "holdout", "count": 1}]
    assert p["suppressed_total"] == 3


def test_a_patient_without_a_profile_has_an_empty_one(w):
    nina, _ = w.login("nina")
    p = profile(nina, "pa-002")
    assert (p["tags"], p["nudges"], p["suppressed"], p["suppressed_total"]) == ([], [], [], 0)


def test_evidence_notes_and_rule_text_come_back_as_data_not_markup(w):
    marker = '<img src=x onerror="window.__xss=1">'
    w.care(records=[Nudge("pa-001", "bp-missing", "patient-reminder", "sms", T0, T0, marker, marker)])
    nina, _ = w.login("nina")
    got = nina.get("/api/patients/pa-001/profile")
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["nudges"][0]["reason"] == marker  # verbatim: the page escapes it


# -- manual tags --


def test_a_nurse_sets_and_clears_a_manual_tag_and_the_audit_records_it(w):
    nina, csrf = w.login("nina")
    got = post_tag(nina, csrf, "pa-002", "low-activity", "set", "bed-bound after surgery")
    assert got.status_code == 202, got.text
    body = got.json()
    assert (body["ids"], body["changed"], body["by"]) == (["pa-002"], True, "nina")
    (t,) = profile(nina, "pa-002")["tags"]
    assert (t["tag"], t["source"], t["since_ns"]) == ("low-activity", "manual", body["event_ns"])
    assert ward(nina, tag="low-activity") == ["pa-002"]
    # the running care stage gets it as a command
    assert w.console.profiles.store.commands()[1] == [
        CareEvent("pa-002", "manual-tag", body["event_ns"], "low-activity")]
    # set again: nothing changes, its start stays
    again = post_tag(nina, csrf, "pa-002", "low-activity", "set").json()
    assert again["changed"] is False
    assert profile(nina, "pa-002")["tags"][0]["since_ns"] == body["event_ns"]

    cleared = post_tag(nina, csrf, "pa-002", "low-activity", "clear", "mobilising again")
    assert cleared.status_code == 202 and cleared.json()["changed"] is True
    assert profile(nina, "pa-002")["tags"] == []
    assert ward(nina, tag="low-activity") == []
    assert post_tag(nina, csrf, "pa-002", "low-activity", "clear").status_code == 409

    audit = nina.get("/api/audit", params={"patient": "pa-002"}).json()["entries"]
    assert [(e["who"], e["action"], e["detail"], e["reason"]) for e in audit] == [
        ("nina", "untagged", "low-activity", "mobilising again"),
        ("nina", "tagged", "low-activity", "bed-bound after surgery")]


def test_a_manual_tag_overrules_the_data_until_cleared_then_the_derived_one_shows(w):
    w.care(bp("pa-001"))
    nina, csrf = w.login("nina")
    assert post_tag(nina, csrf, "pa-001", "hypertension", "set").status_code == 202
    assert profile(nina, "pa-001")["tags"][0]["source"] == "manual"
    assert post_tag(nina, csrf, "pa-001", "hypertension", "clear").status_code == 202
    (t,) = profile(nina, "pa-001")["tags"]
    assert t["source"] == "derived"
    # a derived tag is not the care team's to clear
    assert post_tag(nina, csrf, "pa-001", "hypertension", "clear").status_code == 409


def test_a_viewer_may_read_the_profile_but_not_set_a_tag(w):
    vera, csrf = w.login("vera")
    assert vera.get("/api/patients/pa-001/profile").status_code == 200
    got = post_tag(vera, csrf, "pa-001", "hypertension", "set")
    assert got.status_code == 403
    assert w.console.profiles.store.commands()[1] == []
    assert profile(vera, "pa-001")["tags"] == []


def test_setting_a_tag_needs_the_csrf_token_and_a_known_tag(w):
    nina, csrf = w.login("nina")
    assert nina.post("/api/patients/pa-001/tags", json={"tag": "hypertension", "action": "set"}
                     ).status_code == 403
    assert post_tag(nina, csrf, "pa-001", "diabetes", "set").status_code == 422
    assert post_tag(nina, csrf, "pa-001", "hypertension", "toggle").status_code == 422
    assert w.console.profiles.store.commands()[1] == []


# -- the ward by tag --


def test_the_ward_filters_by_tag_and_each_tile_carries_its_tags(w):
    w.care(bp("pa-001") + bp("pb-001", seed=3) + home_bp("pa-002", 112, 70, days=10, seed=2,
                                                          p_measure=1.0))
    nina, csrf = w.login("nina")
    tiles = {p["patient"]: p["tags"] for p in nina.get("/api/patients").json()["patients"]}
    assert tiles == {"pa-001": ["hypertension"], "pa-002": []}
    assert ward(nina, tag="hypertension") == ["pa-001"]  # pb-001 is hypertensive, and ward-b's
    assert ward(nina, tag="hypertension", cohort="ward-a") == ["pa-001"]
    assert ward(nina, tag="low-activity") == []
    assert nina.get("/api/patients", params={"tag": "nonsense"}).status_code == 422
    assert nina.get("/api/patients/pa-001").json()["tags"] == ["hypertension"]
    tags = {t["tag"]: t["patients"] for t in nina.get("/api/tags").json()["tags"]}
    assert tags["hypertension"] == ["pa-001"] and set(tags) == set(profiles_mod.TAGS)
    pia, _ = w.login("pia")
    assert ward(pia, tag="hypertension") == ["pa-001", "pb-001"]


# -- cohorts: another ward's patient --


def test_a_user_of_ward_b_cannot_read_or_tag_a_ward_a_patient(w):
    w.care(bp("pa-001"), nudges("pa-001"))
    otto, csrf = w.login("otto")
    assert otto.get("/api/patients/pa-001/profile").status_code == 404
    assert otto.get("/api/patients/pa-404/profile").status_code == 404  # alike: no probing
    assert post_tag(otto, csrf, "pa-001", "low-activity", "set").status_code == 404
    assert post_tag(otto, csrf, "pa-001", "hypertension", "clear").status_code == 404
    assert w.console.profiles.store.commands()[1] == []
    assert ward(otto, tag="hypertension") == []
    assert "pa-00" not in otto.get("/api/tags").text
    assert "pa-00" not in otto.get("/api/audit").text
    nina, _ = w.login("nina")
    assert [t["tag"] for t in profile(nina, "pa-001")["tags"]] == ["hypertension"]


# -- merged ids --


def test_a_merged_id_shows_its_persons_union(w):
    persons = w.console.profiles.persons
    w.care(bp("pa-002"), nudges("pa-001"))  # the tag under one id, the nudges under the other
    persons.link("pa-001", "patient", "pa-002", by="dr.lee", reason="same person")
    persons.link("pa-001", "phone", "+447700900123", by="dr.lee")
    nina, csrf = w.login("nina")
    for asked in ("pa-001", "pa-002"):
        p = profile(nina, asked)
        assert (p["patient"], p["person"], p["ids"]) == (asked, "pa-001", ["pa-001", "pa-002"])
        assert p["aliases"] == ["patient:pa-002", "phone:+447700900123"]
        assert [(t["tag"], t["id"]) for t in p["tags"]] == [("hypertension", "pa-002")]
        assert len(p["nudges"]) == 4 and p["suppressed_total"] == 3
    # the tile of either id carries the person's tags
    assert ward(nina, tag="hypertension") == ["pa-001", "pa-002"]
    # a manual tag asked through the merged id goes to the person
    got = post_tag(nina, csrf, "pa-002", "low-activity", "set").json()
    assert got["ids"] == ["pa-001"]
    assert {t["tag"]: t["id"] for t in profile(nina, "pa-002")["tags"]} == {
        "hypertension": "pa-002", "low-activity": "pa-001"}


def test_a_merge_across_wards_shows_neither_ward_the_others_data(w):
    persons = w.console.profiles.persons
    w.care(bp("pb-001", seed=5), nudges("pb-001"))
    persons.link("pa-001", "patient", "pb-001", by="dr.lee")  # pb-001 (ward-b) is pa-001
    nina, _ = w.login("nina")
    p = profile(nina, "pa-001")
    assert (p["ids"], p["aliases"], p["tags"], p["nudges"]) == (["pa-001"], [], [], [])
    assert "pb-001" not in nina.get("/api/patients/pa-001/profile").text
    otto, _ = w.login("otto")
    p = profile(otto, "pb-001")  # the person's own id is ward-a's: not named
    assert (p["person"], p["ids"]) == ("pb-001", ["pb-001"])
    assert [t["tag"] for t in p["tags"]] == ["hypertension"] and len(p["nudges"]) == 4
    assert "pa-001" not in otto.get("/api/patients/pb-001/profile").text
    pia, _ = w.login("pia")  # both wards: the whole person
    p = profile(pia, "pb-001")
    assert (p["person"], p["ids"]) == ("pa-001", ["pa-001", "pb-001"])


# -- the contract --


def test_the_console_knows_the_profiles_tags():
    from vitalstream.operators.profile import ProfileRules
    from vitalstream.stream.console import models

    names = [r.name for r in ProfileRules().rules]
    assert list(profiles_mod.TAGS) == names == list(models.TagName.__args__)


def test_openapi_documents_the_profile_routes_and_their_refusals(w):
    doc = w.client().get("/openapi.json").json()["paths"]
    get = doc["/api/patients/{patient}/profile"]["get"]["responses"]
    post = doc["/api/patients/{patient}/tags"]["post"]["responses"]
    assert {"200", "401", "403", "404"} <= set(get)
    assert {"202", "400", "401", "403", "404", "409", "422"} <= set(post)
    assert "tag" in {p["name"] for p in doc["/api/patients"]["get"]["parameters"]}
    assert "/api/tags" in doc


def test_profiles_module_examples():
    got = doctest.testmod(profiles_mod)
    assert got.attempted > 0 and got.failed == 0
