"""Who sees and does what on the care-team console: cohort isolation (another cohort's
patient or alarm is 404, as if it did not exist, by any path or id trick; lists and the audit
hold nothing of it) and roles (a viewer looks, a nurse acts but does not resolve, override or
administer; an admin's user changes take effect at once), on the real app, Redis and alarm
service (``vitalstream.stream.console.testkit.world``: ward-a holds pa-001 and pa-002, ward-b
holds pb-001; nina is a nurse of ward-a, vera a viewer of ward-a, otto a nurse of ward-b, pia
a physician of both, admin an admin of every cohort).

Whatever is refused must also have done nothing: the command stream the alarm service reads
(``<prefix>:alarm-commands``) is checked to be unchanged after each refusal. Sign-in, CSRF,
the login rate limit and cookies are in tests/test_console_security.py.
"""

from __future__ import annotations

import json

import pytest

from vitalstream.stream.console import testkit
from vitalstream.stream.console.testkit import csrf_h

pytestmark = pytest.mark.services


@pytest.fixture
def w(redis_server, redis_client):
    return testkit.world(redis_server.url, client=redis_client)


# -- cohorts --


@pytest.fixture
def two_wards(w):
    """An alarm in each ward; otto (ward-b) has taken pb-001's, so the audit has ward-b in it."""
    a = w.raise_alert("pa-001")
    b = w.raise_alert("pb-001", "tachycardia", severity="warning", value=150, threshold=130)
    otto, csrf = w.login("otto")
    assert otto.post(f"/api/alerts/{b.alert_id}/assign", json={"to": "otto"},
                     headers=csrf_h(csrf)).status_code == 202
    w.step()
    assert w.alarm(b.alert_id)["assignee"] == "otto"
    return w, a, b


def test_a_patient_of_another_cohort_is_404_like_one_that_does_not_exist(two_wards):
    w, a, b = two_wards
    nina, csrf = w.login("nina")
    for url in ("/api/patients/pb-001", "/api/patients/pb-001/series",
                "/api/patients/pb-001/overrides", "/patients/pb-001"):
        got = nina.get(url)
        missing = nina.get(url.replace("pb-001", "pz-404"))
        assert got.status_code == missing.status_code == 404, url
        assert got.text == missing.text
        assert "pb-001" not in got.text
    # a physician of ward-a only may override, but not for pb-001
    w.console.accounts.put_user("phil", "physician", ["ward-a"], "phil-pass-123")
    phil, csrf_p = w.login("phil", "phil-pass-123")
    got = phil.post("/api/patients/pb-001/overrides",
                    json={"rule": "tachycardia", "priority": "off", "reason": "x"},
                    headers=csrf_h(csrf_p))
    assert got.status_code == 404
    # someone who may see it gets it: the 404s are about the cohort
    pia, _ = w.login("pia")
    assert pia.get("/api/patients/pb-001").json()["patient"] == "pb-001"
    assert pia.get("/patients/pb-001").status_code == 200
    assert w.commands() == 1  # otto's assign only


def test_alarms_of_another_cohort_cannot_be_acted_on_or_read(two_wards):
    w, a, b = two_wards
    nina, csrf = w.login("nina")
    h = csrf_h(csrf)
    calls = [("post", "ack", {"reason": "x"}), ("post", "ack", {"reason": "x", "scope": "patient"}),
             ("post", "snooze", {"reason": "x", "minutes": 30}),
             ("post", "assign", {"to": "nina"}), ("get", "history", None)]
    for method, what, body in calls:
        kw = {"json": body, "headers": h} if body is not None else {}
        got = nina.request(method.upper(), f"/api/alerts/{b.alert_id}/{what}", **kw)
        missing = nina.request(method.upper(), f"/api/alerts/00000000000000000000/{what}", **kw)
        assert got.status_code == missing.status_code == 404, what
        assert got.json() == missing.json() == {"detail": "no such open alarm"}
    assert w.commands() == 1  # otto's assign only
    w.step()
    st = w.alarm(b.alert_id)
    assert (st["state"], st["assignee"]) == ("active", "otto")
    assert [e["who"] for e in w.audit(b.alert_id)] == ["otto"]


def test_lists_show_nothing_of_another_cohort(two_wards):
    w, a, b = two_wards
    nina, _ = w.login("nina")
    banned = ("pb-001", "ward-b", b.alert_id)
    for url, params in [("/api/alerts", {}), ("/api/alerts", {"cohort": "ward-b"}),
                        ("/api/patients", {}), ("/api/patients", {"cohort": "ward-b"}),
                        ("/api/audit", {}), ("/api/audit", {"patient": "pb-001"}),
                        ("/api/cohorts", {}), ("/api/me", {})]:
        got = nina.get(url, params=params)
        assert got.status_code == 200, url
        for word in banned:
            assert word not in got.text, (url, params, word)
    # what nina does see
    assert [x["alert_id"] for x in nina.get("/api/alerts").json()["alerts"]] == [a.alert_id]
    assert [p["patient"] for p in nina.get("/api/patients").json()["patients"]] == \
        ["pa-001", "pa-002"]
    assert nina.get("/api/cohorts").json() == {"cohorts": [{"name": "ward-a",
                                                            "patients": ["pa-001", "pa-002"]}]}
    # and otto's view of the same data has his ward's alarm and audit
    otto, _ = w.login("otto")
    assert [x["alert_id"] for x in otto.get("/api/alerts").json()["alerts"]] == [b.alert_id]
    assert [e["alert_id"] for e in otto.get("/api/audit").json()["entries"]] == [b.alert_id]


TRICKS = ["/api/patients/..%2Fpb-001", "/api/patients/pb-001%00", "/api/patients/pb-001%2F",
          "/api/patients/%70b-001", "/api/patients/pb%2D001", "/api/patients/%70%62%2D%30%30%31",
          "/api/patients/pa-001%2F..%2Fpb-001", "/api/patients/pa-001%2F..%2F..%2Fpatients%2Fpb-001",
          "/api/patients/..%2F..%2Fapi%2Fpatients%2Fpb-001", "/api/patients/PB-001",
          "/api/patients/pb-001%20", "/api/patients/%20pb-001", "/api/patients/pb-001%252F",
          "/api/patients/pb-001%0A", "/api/patients/pb-001;x", "/api/patients/pb-001%3Bx",
          "/api/patients/pb-001%2Fseries", "/api/patients/..%2Fpb-001/series",
          "/api/patients/pb-001%00/series", "/api/patients/pb-001%00/overrides",
          "/api/patients/pa-001/..%2F..%2Fpatients%2Fpb-001", "/api/patients/pa-001/../pb-001",
          "/api/patients/pa-001%2F%2E%2E%2Fpb-001", "/patients/..%2Fpb-001",
          "/patients/pb-001%00", "/patients/%70b-001"]


@pytest.mark.parametrize("url", TRICKS)
def test_path_tricks_never_reach_another_cohorts_patient(two_wards, url):
    w, a, b = two_wards
    nina, _ = w.login("nina")
    got = nina.get(url)
    assert got.status_code in (404, 422), (url, got.status_code, got.text)
    for word in ("ward-b", b.alert_id, '"patient":"pb-001"', "tachycardia"):
        assert word not in got.text, (url, word)


@pytest.mark.parametrize("suffix", ["%00", "%2F", "%20", "/..", "%2F..%2F" + "x"])
def test_alarm_id_tricks_never_reach_another_cohorts_alarm(two_wards, suffix):
    w, a, b = two_wards
    nina, csrf = w.login("nina")
    for what, body in (("ack", {"reason": "x"}), ("history", None)):
        url = f"/api/alerts/{b.alert_id}{suffix}/{what}"
        got = nina.get(url) if body is None else nina.post(url, json=body, headers=csrf_h(csrf))
        assert got.status_code in (404, 405, 422), (url, got.status_code)
        assert "tachycardia" not in got.text and "pb-001" not in got.text
    assert w.commands() == 1


# -- roles --


def test_a_viewer_may_look_but_not_act(w):
    a = w.raise_alert("pa-001")
    vera, csrf = w.login("vera")
    assert vera.get("/api/alerts").json()["alerts"][0]["alert_id"] == a.alert_id
    for what, body in (("ack", {"reason": "x"}), ("snooze", {"reason": "x", "minutes": 5}),
                       ("resolve", {"reason": "x"}), ("assign", {"to": "vera"})):
        got = vera.post(f"/api/alerts/{a.alert_id}/{what}", json=body, headers=csrf_h(csrf))
        assert got.status_code == 403, what
        assert got.json() == {"detail": f"role viewer may not {what}"}
    assert w.commands() == 0
    w.step()
    assert w.alarm(a.alert_id)["state"] == "active" and w.alarm(a.alert_id)["assignee"] == ""


def test_a_nurse_may_not_resolve_override_or_administer(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    h = csrf_h(csrf)
    assert nina.post(f"/api/alerts/{a.alert_id}/resolve", json={"reason": "x"},
                     headers=h).status_code == 403
    assert nina.post("/api/patients/pa-001/overrides", headers=h, json={
        "rule": "bradycardia", "priority": "off", "reason": "x"}).status_code == 403
    assert nina.get("/api/users").status_code == 403
    assert nina.put("/api/users/x", json={"role": "admin", "cohorts": ["*"],
                                          "password": "takeover-123"}, headers=h).status_code == 403
    assert nina.put("/api/users/nina", json={"role": "admin", "cohorts": ["*"]},
                    headers=h).status_code == 403
    assert nina.put("/api/cohorts/x", json={"patients": ["pb-001"]}, headers=h).status_code == 403
    assert nina.put("/api/cohorts/ward-a", json={"patients": ["pb-001"]},
                    headers=h).status_code == 403
    assert w.commands() == 0
    assert w.console.accounts.user("x") is None
    assert w.console.accounts.user("nina").role == "nurse"
    assert w.console.cohorts.of("pb-001") == "ward-b"
    assert "x" not in w.console.cohorts.names()
    w.step()
    assert w.alarm(a.alert_id)["state"] == "active"


def test_an_admin_creates_a_user_who_can_then_sign_in(w):
    admin, csrf = w.login("admin")
    got = admin.put("/api/users/nurse.kim", json={"role": "nurse", "cohorts": ["ward-b"],
                                                  "password": "kim-pass-2024"},
                    headers=csrf_h(csrf))
    assert got.status_code == 200, got.text
    assert got.json() == {"username": "nurse.kim", "role": "nurse", "cohorts": ["ward-b"],
                          "disabled": False}
    listed = admin.get("/api/users").json()["users"]
    assert [u["username"] for u in listed] == sorted([*testkit.USERS, "nurse.kim"])
    assert all("password" not in json.dumps(u) for u in listed)
    kim, _ = w.login("nurse.kim", "kim-pass-2024")
    assert kim.get("/api/me").json()["cohorts"] == ["ward-b"]
    assert kim.get("/api/patients/pb-001").status_code == 200
    assert kim.get("/api/patients/pa-001").status_code == 404
    # a new user needs a password, a good name and a known role
    h = csrf_h(csrf)
    assert admin.put("/api/users/nopass", json={"role": "nurse"}, headers=h).status_code == 400
    assert admin.put("/api/users/bad%20name", json={"role": "nurse", "password": "long-enough-1"},
                     headers=h).status_code == 400
    assert admin.put("/api/users/x", json={"role": "root", "password": "long-enough-1"},
                     headers=h).status_code == 422
    assert admin.put("/api/users/x", json={"role": "nurse", "password": "short"},
                     headers=h).status_code == 422
    assert w.console.accounts.user("nopass") is None and w.console.accounts.user("x") is None


def test_disabling_a_user_ends_their_sessions_and_tokens(w):
    nina, csrf = w.login("nina")
    token = nina.post("/api/tokens", json={"name": "t"}, headers=csrf_h(csrf)).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert w.client().get("/api/me", headers=bearer).status_code == 200
    admin, csrf_a = w.login("admin")
    got = admin.put("/api/users/nina", json={"role": "nurse", "cohorts": ["ward-a"],
                                             "disabled": True}, headers=csrf_h(csrf_a))
    assert got.status_code == 200 and got.json()["disabled"] is True
    assert nina.get("/api/me").status_code == 401
    assert nina.get("/alerts", follow_redirects=False).status_code == 303
    assert w.client().get("/api/me", headers=bearer).status_code == 401
    assert w.try_login("nina", testkit.USERS["nina"][2]).status_code == 401
    # enabled again (the password kept): a new login works, the old session stays ended
    admin.put("/api/users/nina", json={"role": "nurse", "cohorts": ["ward-a"]},
              headers=csrf_h(csrf_a))
    again, _ = w.login("nina")
    assert again.get("/api/me").status_code == 200
    assert nina.get("/api/me").status_code == 401


def test_a_new_password_signs_the_user_out_everywhere(w):
    nina, _ = w.login("nina")
    admin, csrf = w.login("admin")
    assert admin.put("/api/users/nina", json={"role": "nurse", "cohorts": ["ward-a"],
                                              "password": "brand-new-pass-1"},
                     headers=csrf_h(csrf)).status_code == 200
    assert nina.get("/api/me").status_code == 401
    assert w.try_login("nina", testkit.USERS["nina"][2]).status_code == 401
    w.login("nina", "brand-new-pass-1")
