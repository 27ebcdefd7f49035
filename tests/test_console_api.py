"""The care-team console's HTTP API on the real alarm service: what a screen lists, and
what an acknowledgement, a snooze or an assignment given through it does to the alarms.

The world (``vitalstream.stream.console.testkit.world``): cohorts ward-a (pa-001, pa-002)
and ward-b (pb-001), one user of each role (``testkit.USERS``); alerts are written as the
pipeline writes them and applied by the real ``AlarmService``, whose clock is a
``FakeClock`` the tests move past the lifecycle's timers. The lifecycle is the packaged
policy: high re-notifies every 300 s and escalates to the charge nurse after 300 s, medium
re-notifies every 900 s, low never.
"""

from __future__ import annotations

import time

import pytest

from vitalstream.stream.console import testkit

pytestmark = pytest.mark.services

NS = 1_000_000_000
RANK = {"high": 2, "medium": 1, "low": 0}
PRIORITY = {"critical": "high", "warning": "medium", "info": "low"}


@pytest.fixture
def w(redis_server, redis_client):
    return testkit.world(redis_server.url, client=redis_client)


def reasons(w, alert_id: str) -> list[str]:
    return [n["reason"] for n in w.notices(alert_id)]


def alerts_of(client, **params) -> list[dict]:
    got = client.get("/api/alerts", params=params)
    assert got.status_code == 200, got.text
    return got.json()["alerts"]


def by_id(client, alert_id: str) -> dict:
    return next(a for a in alerts_of(client) if a["alert_id"] == alert_id)


# -- the list --


def test_alerts_are_listed_priority_first_then_the_longest_waiting(w):
    t0 = w.clock.now_ns()  # raised at or after the service's clock: their times stand
    # (patient, rule, signal, severity, seconds after t0), raised out of order
    plan = [("pa-001", "tachycardia", "heart_rate", "warning", 40),
            ("pa-002", "bradycardia", "heart_rate", "critical", 30),
            ("pa-001", "fever", "body_temp", "info", 5),
            ("pa-002", "desaturation", "spo2", "warning", 10),
            ("pa-001", "bradycardia", "heart_rate", "critical", 50),
            ("pa-002", "hypotension", "bp_systolic", "info", 60),
            ("pa-001", "desaturation", "spo2", "critical", 20)]
    raised = {}
    for patient, rule, signal, severity, dt in plan:
        a = w.raise_alert(patient, rule, signal=signal, severity=severity,
                          event_ns=t0 + dt * NS, step=False)
        raised[a.alert_id] = (PRIORITY[severity], t0 + dt * NS, patient, rule)
    assert w.step() == len(plan)
    expected = sorted(raised, key=lambda k: (-RANK[raised[k][0]], raised[k][1]))

    nina, _ = w.login("nina")
    got = alerts_of(nina)
    assert [a["alert_id"] for a in got] == expected
    for a in got:
        priority, t, patient, rule = raised[a["alert_id"]]
        assert (a["priority"], a["raised_ns"], a["patient"], a["rule"], a["cohort"]) == \
            (priority, t, patient, rule, "ward-a")
        assert a["display"] == {"high": "critical", "medium": "warning", "low": "info"}[priority]
        assert a["state"] == "active" and a["assignee"] == "" and a["snoozed_until_ns"] is None


def test_an_acknowledged_alarm_follows_the_active_ones_of_its_priority(w):
    t0 = w.clock.now_ns()
    first = w.raise_alert("pa-001", "bradycardia", event_ns=t0 + 1 * NS, step=False)
    second = w.raise_alert("pa-002", "bradycardia", event_ns=t0 + 2 * NS, step=False)
    medium = w.raise_alert("pa-002", "tachycardia", severity="warning", event_ns=t0, step=False)
    w.step()
    nina, csrf = w.login("nina")
    assert nina.post(f"/api/alerts/{first.alert_id}/ack", json={"reason": "seen"},
                     headers={"X-CSRF-Token": csrf}).status_code == 202
    w.step()
    got = alerts_of(nina)
    assert [a["alert_id"] for a in got] == [second.alert_id, first.alert_id, medium.alert_id]
    assert [a["state"] for a in got] == ["active", "acknowledged", "active"]


# -- acknowledge --


def test_ack_through_the_api_is_applied_audited_and_stops_renotification(w):
    acked = w.raise_alert("pa-001", "bradycardia")
    other = w.raise_alert("pa-002", "bradycardia")
    assert reasons(w, acked.alert_id) == ["raised"] and reasons(w, other.alert_id) == ["raised"]

    nina, csrf = w.login("nina")
    before = time.time_ns()
    got = nina.post(f"/api/alerts/{acked.alert_id}/ack",
                    json={"reason": "at bedside, lead off", "scope": "alarm"},
                    headers={"X-CSRF-Token": csrf})
    after = time.time_ns()
    assert got.status_code == 202, got.text
    sub = got.json()
    assert (sub["kind"], sub["target"], sub["by"]) == ("ack", acked.alert_id, "nina")
    assert before <= sub["event_ns"] <= after
    assert w.commands() == 1
    # submitted, not yet applied: the alarm service applies it
    assert w.alarm(acked.alert_id)["state"] == "active"
    w.step()

    assert w.alarm(acked.alert_id)["state"] == "acknowledged"
    assert w.alarm(other.alert_id)["state"] == "active"
    audit = w.audit(acked.alert_id)
    assert [(a["who"], a["action"], a["reason"], a["detail"], a["patient"]) for a in audit] == \
        [("nina", "acknowledged", "at bedside, lead off", "alarm", "pa-001")]
    assert int(audit[0]["event_ns"]) == sub["event_ns"]
    api_audit = nina.get("/api/audit").json()["entries"]
    assert [(e["alert_id"], e["who"], e["action"], e["reason"], e["detail"]) for e in api_audit] \
        == [(acked.alert_id, "nina", "acknowledged", "at bedside, lead off", "alarm")]
    assert by_id(nina, acked.alert_id)["state"] == "acknowledged"

    # past the 300 s re-notification (and the first escalation) of high priority
    raised_at = max(acked.alert.event_ns, other.alert.event_ns)
    w.clock.set(max(w.clock.now_ns(), raised_at) + 301 * NS)
    w.step()
    assert reasons(w, acked.alert_id) == ["raised"]
    assert reasons(w, other.alert_id) == ["raised", "renotify", "escalated"]


def test_ack_with_patient_scope_acknowledges_every_alarm_of_the_patient(w):
    a = w.raise_alert("pa-001", "bradycardia")
    b = w.raise_alert("pa-001", "desaturation", signal="spo2", value=85, threshold=90)
    c = w.raise_alert("pa-002", "bradycardia")
    nina, csrf = w.login("nina")
    assert nina.post(f"/api/alerts/{a.alert_id}/ack", json={"reason": "rounds", "scope": "patient"},
                     headers={"X-CSRF-Token": csrf}).status_code == 202
    w.step()
    assert [w.alarm(x.alert_id)["state"] for x in (a, b, c)] == \
        ["acknowledged", "acknowledged", "active"]
    assert sorted(e["alert_id"] for e in w.audit() if e["action"] == "acknowledged") == \
        sorted([a.alert_id, b.alert_id])


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x", "scope": "ward"},
                                  {"reason": "x", "extra": 1}, {"reason": "x" * 501}])
def test_an_invalid_ack_is_422_and_submits_nothing(w, body):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    got = nina.post(f"/api/alerts/{a.alert_id}/ack", json=body, headers={"X-CSRF-Token": csrf})
    assert got.status_code == 422, got.text
    assert w.commands() == 0


# -- snooze --


def test_snooze_of_a_rule_hides_that_rule_only(w):
    brady = w.raise_alert("pa-001", "bradycardia")
    desat = w.raise_alert("pa-001", "desaturation", signal="spo2", value=85, threshold=90)
    nina, csrf = w.login("nina")
    minutes = 30
    got = nina.post(f"/api/alerts/{brady.alert_id}/snooze",
                    json={"reason": "repositioning", "scope": "rule", "minutes": minutes},
                    headers={"X-CSRF-Token": csrf})
    assert got.status_code == 202, got.text
    until = got.json()["event_ns"] + minutes * 60 * NS
    w.step()

    listed = {a["alert_id"]: a for a in alerts_of(nina)}
    assert listed[brady.alert_id]["snoozed_until_ns"] == until
    assert listed[desat.alert_id]["snoozed_until_ns"] is None
    assert listed[brady.alert_id]["state"] == "active"  # a snooze is not an acknowledgement
    audit = w.audit(brady.alert_id)
    assert [(a["who"], a["action"], a["reason"], a["detail"]) for a in audit] == \
        [("nina", "snoozed", "repositioning", f"rule for {minutes} min")]
    assert w.audit(desat.alert_id) == []

    w.clock.set(max(w.clock.now_ns(), desat.alert.event_ns) + 301 * NS)
    w.step()
    assert reasons(w, brady.alert_id) == ["raised"]
    assert reasons(w, desat.alert_id) == ["raised", "renotify", "escalated"]


def test_snooze_of_a_patient_hides_its_alarms_at_or_below_the_priority(w):
    med1 = w.raise_alert("pa-002", "tachypnoea", signal="resp_rate", severity="warning",
                         value=26, threshold=24)
    med2 = w.raise_alert("pa-002", "hypotension", signal="bp_systolic", severity="warning",
                         value=88, threshold=90)
    low = w.raise_alert("pa-002", "fever", signal="body_temp", severity="info",
                        value=38.2, threshold=38.0)
    elsewhere = w.raise_alert("pa-001", "tachypnoea", signal="resp_rate", severity="warning",
                              value=26, threshold=24)
    nina, csrf = w.login("nina")
    minutes = 45
    got = nina.post(f"/api/alerts/{med1.alert_id}/snooze",
                    json={"reason": "family visit", "scope": "patient", "minutes": minutes},
                    headers={"X-CSRF-Token": csrf})
    assert got.status_code == 202, got.text
    until = got.json()["event_ns"] + minutes * 60 * NS
    w.step()
    # a higher priority after the snooze: not hidden
    high = w.raise_alert("pa-002", "bradycardia")
    assert reasons(w, high.alert_id) == ["raised"]

    listed = {a["alert_id"]: a["snoozed_until_ns"] for a in alerts_of(nina)}
    assert listed == {high.alert_id: None, med1.alert_id: until, med2.alert_id: until,
                      low.alert_id: until, elsewhere.alert_id: None}
    assert sorted((a["alert_id"], a["action"], a["detail"]) for a in w.audit()) == sorted(
        (x.alert_id, "snoozed", f"patient for {minutes} min") for x in (med1, med2, low))
    # past medium's 900 s re-notification, within the 45 min
    latest = max(x.alert.event_ns for x in (high, med1, med2, low, elsewhere))
    w.clock.set(max(w.clock.now_ns(), latest) + 901 * NS)
    w.step()
    assert reasons(w, med1.alert_id) == ["raised"]
    assert reasons(w, med2.alert_id) == ["raised"]
    assert reasons(w, elsewhere.alert_id) == ["raised", "renotify"]
    assert "renotify" in reasons(w, high.alert_id)
    # the snooze ends: each hidden alarm still active is told once (low: never re-notified)
    w.clock.set(until + 1)
    w.step()
    assert reasons(w, med1.alert_id) == ["raised", "snooze_ended"]
    assert reasons(w, med2.alert_id) == ["raised", "snooze_ended"]
    assert reasons(w, low.alert_id) == ["raised", "snooze_ended"]


def test_snooze_of_a_patient_never_hides_an_open_higher_priority(w):
    high = w.raise_alert("pa-002", "bradycardia")
    med = w.raise_alert("pa-002", "tachypnoea", signal="resp_rate", severity="warning",
                        value=26, threshold=24)
    nina, csrf = w.login("nina")
    got = nina.post(f"/api/alerts/{med.alert_id}/snooze",
                    json={"reason": "family visit", "scope": "patient", "minutes": 45},
                    headers={"X-CSRF-Token": csrf})
    until = got.json()["event_ns"] + 45 * 60 * NS
    w.step()
    listed = {a["alert_id"]: a["snoozed_until_ns"] for a in alerts_of(nina)}
    w.clock.set(max(w.clock.now_ns(), high.alert.event_ns, med.alert.event_ns) + 301 * NS)
    w.step()
    assert (listed, reasons(w, high.alert_id)) == (
        {high.alert_id: None, med.alert_id: until}, ["raised", "renotify", "escalated"])


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_a_snooze_out_of_range_is_422(w, minutes):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    got = nina.post(f"/api/alerts/{a.alert_id}/snooze",
                    json={"reason": "x", "minutes": minutes}, headers={"X-CSRF-Token": csrf})
    assert got.status_code == 422
    assert w.commands() == 0


# -- assign, resolve --


def test_assign_to_a_user_sets_the_assignee_and_is_audited(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    got = nina.post(f"/api/alerts/{a.alert_id}/assign", json={"to": "pia", "reason": "review"},
                    headers={"X-CSRF-Token": csrf})
    assert got.status_code == 202, got.text
    w.step()
    assert by_id(nina, a.alert_id)["assignee"] == "pia"
    assert w.alarm(a.alert_id)["assignee"] == "pia"
    assert [(e["who"], e["action"], e["reason"], e["detail"]) for e in w.audit(a.alert_id)] == \
        [("nina", "assigned", "review", "pia")]
    # assignment silences nothing
    assert w.alarm(a.alert_id)["state"] == "active"


def test_assign_to_an_unknown_user_is_422_and_submits_nothing(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    got = nina.post(f"/api/alerts/{a.alert_id}/assign", json={"to": "nobody-here"},
                    headers={"X-CSRF-Token": csrf})
    assert got.status_code == 422
    assert "nobody-here" in got.text
    assert w.commands() == 0
    w.step()
    assert w.alarm(a.alert_id)["assignee"] == ""


def test_resolve_by_a_physician_closes_the_alarm(w):
    a = w.raise_alert("pa-001")
    pia, csrf = w.login("pia")
    got = pia.post(f"/api/alerts/{a.alert_id}/resolve", json={"reason": "artefact"},
                   headers={"X-CSRF-Token": csrf})
    assert got.status_code == 202, got.text
    w.step()
    assert w.alarm(a.alert_id) is None
    assert a.alert_id not in [x["alert_id"] for x in alerts_of(pia)]
    assert reasons(w, a.alert_id) == ["raised", "resolved"]
    assert [(e["who"], e["action"]) for e in w.audit(a.alert_id)] == [("pia", "resolved")]
    # a closed alarm has nothing left to act on
    assert pia.post(f"/api/alerts/{a.alert_id}/ack", json={"reason": "late"},
                    headers={"X-CSRF-Token": csrf}).status_code == 404


# -- history --


def test_history_lists_the_notices_and_audit_in_time_order(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    h = {"X-CSRF-Token": csrf}
    assign = nina.post(f"/api/alerts/{a.alert_id}/assign", json={"to": "nina"}, headers=h).json()
    w.step()
    ack = nina.post(f"/api/alerts/{a.alert_id}/ack", json={"reason": "on it"}, headers=h).json()
    w.step()
    # a renotify falls due at the raise plus 300 s: it was acknowledged before, so none
    w.clock.set(max(w.clock.now_ns(), a.alert.event_ns) + 301 * NS)
    w.step()

    got = nina.get(f"/api/alerts/{a.alert_id}/history")
    assert got.status_code == 200
    body = got.json()
    assert body["alert_id"] == a.alert_id
    entries = body["entries"]
    assert [(e["kind"], e["reason"] if e["kind"] == "notice" else e["action"], e["event_ns"])
            for e in entries] == [("notice", "raised", a.alert.event_ns),
                                  ("audit", "assigned", assign["event_ns"]),
                                  ("audit", "acknowledged", ack["event_ns"])]
    assert entries[0]["priority"] == "high" and entries[0]["level"] == 0
    assert entries[0]["explanation"] == a.alert.explanation
    assert (entries[1]["who"], entries[1]["detail"]) == ("nina", "nina")
    assert (entries[2]["who"], entries[2]["reason"], entries[2]["detail"]) == \
        ("nina", "on it", "alarm")


def test_history_includes_renotify_and_escalation_in_order(w):
    a = w.raise_alert("pa-002")
    start = max(w.clock.now_ns(), a.alert.event_ns)
    w.clock.set(start + 301 * NS)
    w.step()
    nina, _ = w.login("nina")
    entries = nina.get(f"/api/alerts/{a.alert_id}/history").json()["entries"]
    assert [(e["kind"], e["reason"], e["level"]) for e in entries] == \
        [("notice", "raised", 0), ("notice", "renotify", 0), ("notice", "escalated", 1)]
    assert [e["event_ns"] for e in entries] == [a.alert.event_ns, start + 301 * NS,
                                                start + 301 * NS]


# -- patients, cohorts --


def test_patients_lists_each_visible_patient_with_alert_counts(w):
    plan = [("pa-001", "bradycardia", "heart_rate", "critical"),
            ("pa-001", "tachypnoea", "resp_rate", "warning"),
            ("pa-001", "fever", "body_temp", "info"),
            ("pa-001", "hypotension", "bp_systolic", "info"),
            ("pb-001", "desaturation", "spo2", "critical"),
            ("pb-001", "bradycardia", "heart_rate", "critical")]
    counts: dict[str, dict[str, int]] = {}
    for patient, rule, signal, severity in plan:
        w.raise_alert(patient, rule, signal=signal, severity=severity, step=False)
        c = counts.setdefault(patient, {"high": 0, "medium": 0, "low": 0})
        c[PRIORITY[severity]] += 1
    w.step()
    none = {"high": 0, "medium": 0, "low": 0}

    nina, _ = w.login("nina")
    got = nina.get("/api/patients").json()["patients"]
    assert [(p["patient"], p["cohort"], p["alerts"]) for p in got] == \
        [("pa-001", "ward-a", counts["pa-001"]), ("pa-002", "ward-a", none)]
    # no series store here: no vitals, so every patient is stale
    assert all(p["vitals"] == {} and p["news2"] is None and p["stale"] for p in got)
    one = nina.get("/api/patients/pa-001").json()
    assert (one["patient"], one["cohort"], one["alerts"]) == ("pa-001", "ward-a", counts["pa-001"])

    pia, _ = w.login("pia")
    assert [p["patient"] for p in pia.get("/api/patients").json()["patients"]] == \
        ["pa-001", "pa-002", "pb-001"]
    ward_b = pia.get("/api/patients", params={"cohort": "ward-b"}).json()["patients"]
    assert [(p["patient"], p["alerts"]) for p in ward_b] == [("pb-001", counts["pb-001"])]
    ward_a = pia.get("/api/patients", params={"cohort": "ward-a"}).json()["patients"]
    assert [p["patient"] for p in ward_a] == ["pa-001", "pa-002"]
    assert pia.get("/api/patients", params={"cohort": "ward-z"}).json()["patients"] == []

    # the alert list's cohort filter
    assert {a["patient"] for a in alerts_of(pia, cohort="ward-b")} == {"pb-001"}
    assert {a["patient"] for a in alerts_of(pia, cohort="ward-a")} == {"pa-001"}


def test_a_user_of_every_cohort_also_sees_patients_in_none(w):
    a = w.raise_alert("px-009")  # in no cohort yet
    admin, _ = w.login("admin")
    assert [p["patient"] for p in admin.get("/api/patients").json()["patients"]] == \
        ["pa-001", "pa-002", "pb-001", "px-009"]
    assert by_id(admin, a.alert_id)["cohort"] is None
    pia, _ = w.login("pia")  # both wards, but not every cohort
    assert "px-009" not in [p["patient"] for p in pia.get("/api/patients").json()["patients"]]
    assert a.alert_id not in [x["alert_id"] for x in alerts_of(pia)]


def test_cohorts_lists_the_users_cohorts_and_their_patients(w):
    expected = {k: sorted(v) for k, v in testkit.COHORTS.items()}
    for user in testkit.USERS:
        client, _ = w.login(user)
        got = client.get("/api/cohorts").json()["cohorts"]
        cos = testkit.USERS[user][1]
        want = {k: v for k, v in expected.items() if "*" in cos or k in cos}
        assert {c["name"]: c["patients"] for c in got} == want, user


def test_me_tells_the_role_cohorts_permissions_and_csrf(w):
    nina, csrf = w.login("nina")
    me = nina.get("/api/me").json()
    assert me == {"username": "nina", "role": "nurse", "cohorts": ["ward-a"], "csrf": csrf,
                  "permissions": ["ack", "assign", "snooze", "tag"]}


def test_admin_puts_a_cohort_and_its_patients_move(w):
    admin, csrf = w.login("admin")
    h = {"X-CSRF-Token": csrf}
    got = admin.put("/api/cohorts/ward-c", json={"patients": ["pc-001", "pa-002"],
                                                  "description": "step-down"}, headers=h)
    assert got.status_code == 200, got.text
    assert got.json() == {"name": "ward-c", "patients": ["pa-002", "pc-001"]}
    nina, _ = w.login("nina")
    assert [p["patient"] for p in nina.get("/api/patients").json()["patients"]] == ["pa-001"]
    assert nina.get("/api/patients/pa-002").status_code == 404
    bad = admin.put("/api/cohorts/ward-c", json={"patients": ["bad id\n"]}, headers=h)
    assert bad.status_code == 422


def test_overrides_by_a_physician_are_listed_and_audited(w):
    a = w.raise_alert("pa-001")
    pia, csrf = w.login("pia")
    got = pia.post("/api/patients/pa-001/overrides",
                   json={"rule": "bradycardia", "priority": "off", "minutes": 60,
                         "reason": "known athlete"}, headers={"X-CSRF-Token": csrf})
    assert got.status_code == 202, got.text
    t = got.json()["event_ns"]
    w.step()
    assert pia.get("/api/patients/pa-001/overrides").json() == {
        "patient": "pa-001", "overrides": [{"rule": "bradycardia", "priority": "off",
                                            "until_ns": t + 60 * 60 * NS, "by": "pia",
                                            "reason": "known athlete"}]}
    assert by_id(pia, a.alert_id)["muted"] is True
    assert [(e["who"], e["action"], e["detail"]) for e in w.audit() if e["patient"] == "pa-001"] \
        == [("pia", "overridden", "bradycardia -> off for 60 min")]


def test_series_without_a_store_has_the_alarm_annotations(w):
    a = w.raise_alert("pa-001")
    nina, _ = w.login("nina")
    got = nina.get("/api/patients/pa-001/series", params={"range_s": 3600})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["patient"] == "pa-001" and body["signals"] == {} and body["news2"] == []
    assert body["end_ns"] - body["start_ns"] == 3600 * NS
    assert [(x["alert_id"], x["reason"], x["event_ns"]) for x in body["annotations"]] == \
        [(a.alert_id, "raised", a.alert.event_ns)]
    bad = nina.get("/api/patients/pa-001/series", params={"start_ns": 10, "end_ns": 5})
    assert bad.status_code == 422
