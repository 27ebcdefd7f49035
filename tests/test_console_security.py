"""The care-team console's security: requests without a session, CSRF, a bad password
repeated (the login rate limit), password storage, cookie and header flags, on the real app,
Redis and alarm service (``vitalstream.stream.console.testkit.world``: ward-a holds pa-001 and
pa-002, ward-b holds pb-001; nina is a nurse of ward-a, otto a nurse of ward-b, admin an admin
of every cohort). Cohort isolation and roles are in tests/test_console_access.py.

Whatever is refused must also have done nothing: the command stream the alarm service reads
(``<prefix>:alarm-commands``) is checked to be empty after each refusal.
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest

from vitalstream.stream.console import testkit
from vitalstream.stream.console.testkit import csrf_h
from vitalstream.stream.console.app import COOKIE, CSRF_COOKIE

pytestmark = pytest.mark.services


@pytest.fixture
def w(redis_server, redis_client):
    return testkit.world(redis_server.url, client=redis_client)


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    out = {}
    for h in response.headers.get_list("set-cookie"):
        out[h.split("=", 1)[0].strip()] = h
    return out


def cookie_attrs(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")][1:]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


# -- no session --


def test_every_api_route_but_signing_in_answers_401_without_a_session(w):
    a = w.raise_alert("pa-001")
    anon = w.client()
    schema = anon.get("/openapi.json").json()
    fill = {"alert_id": a.alert_id, "patient": "pa-001", "username": "nina", "name": "ward-a"}
    open_routes = {("get", "/api/csrf"), ("post", "/api/session")}
    tried = []
    for path, ops in schema["paths"].items():
        assert path.startswith("/api/"), path  # pages are not in the schema
        url = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)
        for method in ops:
            if (method, path) in open_routes:
                continue
            kw = {"json": {}} if method in ("post", "put", "patch") else {}
            got = anon.request(method.upper(), url, **kw)
            assert got.status_code == 401, (method, path, got.status_code, got.text)
            assert got.json() == {"detail": "not signed in"}
            tried.append((method, path))
    # the schema is the whole API: every route of the app that is not a page is in it
    assert len(tried) >= 20
    assert ("get", "/api/events") in tried and ("delete", "/api/session") in tried
    assert w.commands() == 0


@pytest.mark.parametrize("cookie", ["", "x", secrets.token_urlsafe(32)])
def test_an_unknown_session_cookie_is_401(w, cookie):
    anon = w.client(cookies={COOKIE: cookie})
    assert anon.get("/api/me").status_code == 401
    assert anon.get("/api/alerts").status_code == 401


@pytest.mark.parametrize("page", ["/alerts", "/ward", "/history", "/patients/x",
                                  "/patients/pa-001"])
def test_pages_redirect_to_login_without_a_session(w, page):
    got = w.client().get(page, follow_redirects=False)
    assert got.status_code == 303
    assert got.headers["location"] == f"/login?next={page}"


def test_pages_are_served_with_a_session_and_login_without(w):
    anon = w.client()
    assert anon.get("/login").status_code == 200
    nina, _ = w.login("nina")
    for page in ("/alerts", "/ward", "/history", "/patients/pa-001"):
        got = nina.get(page, follow_redirects=False)
        assert got.status_code == 200, page
        assert got.headers["content-type"].startswith("text/html")
        assert got.headers["cache-control"] == "no-store"


def test_logout_ends_the_session(w):
    nina, csrf = w.login("nina")
    old = nina.cookies.get(COOKIE)
    got = nina.delete("/api/session", headers=csrf_h(csrf))
    assert got.status_code == 204
    assert nina.get("/api/me").status_code == 401
    # the cookie itself is no good any more, wherever it was copied
    assert w.client(cookies={COOKIE: old}).get("/api/me").status_code == 401


# -- CSRF --


def test_a_cookie_session_needs_its_own_csrf_token_to_change_anything(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    nina2, csrf2 = w.login("nina")  # another session of the same user
    vera, csrf_v = w.login("vera")
    url = f"/api/alerts/{a.alert_id}/ack"
    for headers in ({}, csrf_h(""), csrf_h(csrf2), csrf_h(csrf_v), csrf_h(csrf + "x"),
                    csrf_h(csrf[:-1])):
        got = nina.post(url, json={"reason": "x"}, headers=headers)
        assert got.status_code == 403, headers
        assert got.json() == {"detail": "missing or wrong X-CSRF-Token"}
    # every other state-changing route too
    assert nina.post(f"/api/alerts/{a.alert_id}/snooze", json={"reason": "x", "minutes": 5}
                     ).status_code == 403
    assert nina.post("/api/tokens", json={"name": "x"}).status_code == 403
    assert nina.delete("/api/session").status_code == 403
    assert nina.get("/api/me").status_code == 200  # still signed in
    assert w.commands() == 0
    w.step()
    assert w.alarm(a.alert_id)["state"] == "active"
    # reads need no token; with the right one the command goes through
    assert nina.get("/api/alerts").status_code == 200
    assert nina.post(url, json={"reason": "x"}, headers=csrf_h(csrf)).status_code == 202
    assert w.commands() == 1


def test_login_needs_the_login_csrf_cookie_and_header(w):
    body = {"username": "nina", "password": testkit.USERS["nina"][2]}
    c = w.client()
    assert c.post("/api/session", json=body).status_code == 403  # neither
    t = c.get("/api/csrf").json()["csrf"]
    assert c.post("/api/session", json=body).status_code == 403  # cookie, no header
    assert c.post("/api/session", json=body, headers=csrf_h(t + "x")).status_code == 403
    other = w.client()
    t_other = other.get("/api/csrf").json()["csrf"]
    assert c.post("/api/session", json=body, headers=csrf_h(t_other)).status_code == 403
    bare = w.client()  # a header without the cookie (a cross-site form cannot set either)
    got = bare.post("/api/session", json=body, headers=csrf_h(t))
    assert got.status_code == 403
    assert COOKIE not in set_cookies(got)
    assert bare.get("/api/me").status_code == 401
    # refused before the password was looked at: no failure counted
    assert w.console.accounts.retry_after_s("nina", "testclient") == 0
    ok = c.post("/api/session", json=body, headers=csrf_h(t))
    assert ok.status_code == 200
    assert COOKIE in set_cookies(ok)


def test_an_api_token_acts_without_csrf_and_a_revoked_one_is_401(w):
    a = w.raise_alert("pa-001")
    nina, csrf = w.login("nina")
    got = nina.post("/api/tokens", json={"name": "pager-bridge"}, headers=csrf_h(csrf))
    assert got.status_code == 200
    token = got.json()["token"]
    tool = w.client()  # no cookies at all
    bearer = {"Authorization": f"Bearer {token}"}
    me = tool.get("/api/me", headers=bearer).json()
    assert (me["username"], me["role"], me["cohorts"], me["csrf"]) == ("nina", "nurse",
                                                                       ["ward-a"], "")
    assert tool.post(f"/api/alerts/{a.alert_id}/ack", json={"reason": "from the pager"},
                     headers=bearer).status_code == 202
    assert w.commands() == 1
    w.step()
    assert w.alarm(a.alert_id)["state"] == "acknowledged"
    assert [(e["who"], e["reason"]) for e in w.audit(a.alert_id)] == [("nina", "from the pager")]
    # the token carries nina's cohorts, not more
    assert tool.get("/api/patients/pb-001", headers=bearer).status_code == 404

    assert w.console.accounts.revoke_tokens("nina", "pager-bridge") == 1
    for t in (token, "vst_" + secrets.token_urlsafe(32), "", "garbage"):
        got = tool.get("/api/me", headers={"Authorization": f"Bearer {t}"})
        assert got.status_code == 401, t
        assert got.headers["www-authenticate"] == "Bearer"
    assert tool.post(f"/api/alerts/{a.alert_id}/ack", json={"reason": "x"},
                     headers=bearer).status_code == 401
    assert w.commands() == 1


def test_a_bearer_header_is_not_outranked_by_a_cookie(w):
    nina, _ = w.login("nina")
    got = nina.get("/api/me", headers={"Authorization": "Bearer vst_unknown"})
    assert got.status_code == 401


# -- a bad password repeated --


@pytest.fixture
def short(redis_server, redis_client):
    """A world whose login failures are forgotten after 2 s."""
    return testkit.world(redis_server.url, client=redis_client, login_window_s=2.0)


def test_five_wrong_passwords_hold_the_user_back_until_the_window_has_passed(short):
    w = short
    right = testkit.USERS["nina"][2]
    for i in range(5):
        got = w.try_login("nina", f"wrong-{i}")
        assert got.status_code == 401, i
    held = w.try_login("nina", right)
    assert held.status_code == 429
    wait = int(held.headers["retry-after"])
    assert 0 < wait <= 2
    assert COOKIE not in set_cookies(held)
    # another user is not held back
    assert w.try_login("vera", testkit.USERS["vera"][2]).status_code == 200
    # still held: another try does not get in, whatever the password
    assert w.try_login("nina", right).status_code == 429
    time.sleep(wait)
    deadline = time.monotonic() + 5
    while (got := w.try_login("nina", right)).status_code == 429:
        assert time.monotonic() < deadline, "still held back 5 s after Retry-After"
        time.sleep(0.2)
    assert got.status_code == 200
    assert got.json()["username"] == "nina"


def test_failures_from_one_address_hold_back_every_user_name(redis_server, redis_client):
    # 4x max_failures from one client address, spread over user names that do not exist
    w = testkit.world(redis_server.url, client=redis_client, login_max_failures=2,
                      login_window_s=60.0)
    for i in range(8):
        assert w.try_login(f"probe-{i}", "guess-guess").status_code == 401
    got = w.try_login("vera", testkit.USERS["vera"][2])
    assert got.status_code == 429
    assert int(got.headers["retry-after"]) > 0


def test_the_refusal_does_not_tell_an_unknown_user_from_a_wrong_password(w):
    w.console.accounts.put_user("dora", "nurse", ["ward-a"], "dora-pass-123", disabled=True)
    unknown = w.try_login("nobody", "whatever-1")
    wrong = w.try_login("nina", "whatever-1")
    disabled = w.try_login("dora", "dora-pass-123")
    assert unknown.status_code == wrong.status_code == disabled.status_code == 401
    assert unknown.json() == wrong.json() == disabled.json() == \
        {"detail": "wrong user name or password"}
    assert set_cookies(unknown).keys() == set_cookies(wrong).keys()


# -- what Redis holds --


def redis_dump(r) -> bytes:
    """Every key and value in the database, as one blob."""
    out = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key).decode()
        if kind == "string":
            out.append(r.get(key) or b"")
        elif kind == "hash":
            for k, v in r.hgetall(key).items():
                out += [k, v]
        elif kind == "set":
            out += list(r.smembers(key))
        elif kind == "list":
            out += r.lrange(key, 0, -1)
        elif kind == "zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, f in r.xrange(key):
                for k, v in f.items():
                    out += [k, v]
        else:
            raise AssertionError(f"unexpected key type {kind} of {key!r}")
    return b"\n".join(out)


def test_passwords_sessions_and_tokens_are_stored_only_hashed(redis_server, redis_client):
    w = testkit.world(redis_server.url, client=redis_client, fast_hashes=False)
    admin, csrf = w.login("admin")
    assert admin.put("/api/users/nadia", json={"role": "nurse", "cohorts": ["ward-a"],
                                               "password": "Nadia's own pass 7"},
                     headers=csrf_h(csrf)).status_code == 200
    nadia, csrf_n = w.login("nadia", "Nadia's own pass 7")
    token = nadia.post("/api/tokens", json={"name": "t"}, headers=csrf_h(csrf_n)).json()["token"]
    w.try_login("nina", "a-wrong-password-9")  # a failure is counted, not kept

    users = w.r.hgetall(f"{w.prefix}:console:users")
    assert {k.decode() for k in users} == set(testkit.USERS) | {"nadia"}
    for raw in users.values():
        # argon2id with RFC 9106's second recommended parameters (64 MiB, 3 passes, 4 lanes)
        assert json.loads(raw)["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    blob = redis_dump(w.r)
    secrets_given = [p for _, _, p in testkit.USERS.values()] + [
        "Nadia's own pass 7", "a-wrong-password-9", token, nadia.cookies.get(COOKIE),
        admin.cookies.get(COOKIE)]
    for s in secrets_given:
        assert s.encode() not in blob, s


# -- cookies and headers --


def test_the_session_cookie_is_httponly_secure_and_samesite_strict(w):
    c = w.client()
    got = c.get("/api/csrf")
    flags = cookie_attrs(set_cookies(got)[CSRF_COOKIE])
    assert {"httponly", "secure"} <= flags.keys()
    assert flags["samesite"].lower() == "strict" and flags["path"] == "/api/session"
    t = got.json()["csrf"]
    ok = c.post("/api/session", json={"username": "nina",
                                      "password": testkit.USERS["nina"][2]}, headers=csrf_h(t))
    flags = cookie_attrs(set_cookies(ok)[COOKIE])
    assert {"httponly", "secure"} <= flags.keys()
    assert flags["samesite"].lower() == "strict" and flags["path"] == "/"
    assert int(flags["max-age"]) == 8 * 3600  # the session's idle time-out
    # the session token is long and random: 256 bits, URL-safe base64
    assert len(c.cookies.get(COOKIE)) >= 43


@pytest.mark.parametrize("path", ["/api/me", "/api/alerts", "/api/csrf", "/login", "/alerts",
                                  "/api/nothing-here"])
def test_security_headers_on_every_response(w, path):
    for client in (w.client(), w.login("nina")[0]):
        got = client.get(path, follow_redirects=False)
        h = got.headers
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        if path.startswith("/api/"):
            assert h["cache-control"] == "no-store"
