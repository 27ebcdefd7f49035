"""``vitalstream console``: the care team's screen and its HTTP API, one FastAPI app.

    vitalstream console create-user admin --role admin --cohort '*'   # asks the password
    vitalstream console --port 8080          # then open http://127.0.0.1:8080
    curl -s localhost:8080/openapi.json      # the API every page is built on

It reads what the pipeline writes (alarms, their notices and the audit in Redis; series in
InfluxDB or VictoriaMetrics) and writes only lifecycle commands (ack, snooze, resolve,
assign) to the same command stream the CLI uses, so the CLI, this API and the running
alarm service share one state and one audit.

Care profiles (``sinks.profiles``, written by the care stage): ``GET
/api/patients/{id}/profile`` shows the person behind an id (a merged id answers for its
person), its tags with their evidence and its nudges sent and suppressed; ``POST
/api/patients/{id}/tags`` sets or clears a manual tag (nurses and up, audited);
``GET /api/patients?tag=...`` and ``GET /api/tags`` list who has a tag.

Access: every request needs a session cookie (``POST /api/session``) or an API token
(``Authorization: Bearer``); a cookie request that changes anything also needs the
session's CSRF token in ``X-CSRF-Token``. A patient outside the user's cohorts answers
404, like one that does not exist.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from vitalstream.errors import VitalstreamError
from vitalstream.operators.lifecycle import Command, Lifecycle
from vitalstream.sinks.alarm_state import RedisAlarmState
from vitalstream.stream.console import models as m
from vitalstream.stream.console.auth import Accounts, AuthError, User
from vitalstream.stream.console.cohorts import Cohorts
from vitalstream.stream.console.layout import render
from vitalstream.stream.console.live import Event, LiveFeed, sse
from vitalstream.stream.console.openapi import document_errors, invalid
from vitalstream.stream.console.profiles import Profiles
from vitalstream.stream.console.views import Views

COOKIE, CSRF_COOKIE = "vs_session", "vs_login_csrf"
HERE = Path(str(resources.files("vitalstream.stream.console")))
SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Console:
    """What the app serves from: one per process."""

    accounts: Accounts
    cohorts: Cohorts
    alarms: RedisAlarmState
    views: Views
    feed: LiveFeed | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    keepalive_s: float = 15.0
    profiles: Profiles | None = None  # care profiles (tags, nudges); None: not shown


@dataclass(frozen=True)
class Caller:
    user: User
    csrf: str | None  # None: an API token (no CSRF check)


def caller(request: Request) -> Caller:
    """The signed-in user of a request (session cookie, or API token), or 401; a cookie
    request that changes anything without its session's CSRF token: 403."""
    c: Console = request.app.state.console
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        u = c.accounts.token_user(auth[7:].strip())
        if u is None:
            raise HTTPException(401, "unknown or revoked API token",
                                headers={"WWW-Authenticate": "Bearer"})
        return Caller(u, None)
    token = request.cookies.get(COOKIE)
    got = c.accounts.session(token) if token else None
    if got is None:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"})
    user, csrf = got
    if request.method not in SAFE and not secrets.compare_digest(
            request.headers.get("x-csrf-token", ""), csrf):
        raise HTTPException(403, "missing or wrong X-CSRF-Token")
    return Caller(user, csrf)



Who = Annotated[Caller, Depends(caller)]


def _allowed(app: FastAPI, scope: dict) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def create_app(c: Console) -> FastAPI:
    app = FastAPI(title="vitalstream console", version="1",
                  description="The care team's view of live alarms, patients and the audit. "
                              "Sign in with POST /api/session (cookie + CSRF token) or send "
                              "an API token as Authorization: Bearer.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.console = c
    app.mount("/static", StaticFiles(directory=HERE / "static", check_dir=False), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                     "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith("/api/"):
            h.setdefault("Cache-Control", "no-store")
        if response.status_code == 405:
            # starlette names only the first route that matched the path; a path served by
            # several routes (GET and POST handlers) must list them all (RFC 9110 15.5.6)
            h["Allow"] = ", ".join(_allowed(app, request.scope))
        return response

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError):
        code = {"rate_limited": 429, "bad_credentials": 401}.get(exc.reason, 400)
        headers = {}
        if exc.reason == "rate_limited":
            headers["Retry-After"] = str(c.accounts.retry_after_s(
                getattr(exc, "device", None) or "", _client(request)))
        return JSONResponse({"detail": exc.detail}, status_code=code, headers=headers)


    def need(who: Caller, permission: str) -> None:
        if permission not in who.user.permissions:
            raise HTTPException(403, f"role {who.user.role} may not {permission}")

    def visible_alarm(who: Caller, alert_id: str) -> dict:
        a = c.alarms.find(alert_id)
        if a is None or not c.views.sees_alarm(who.user, a):
            raise HTTPException(404, "no such open alarm")
        return a

    def visible_patient(who: Caller, patient: str) -> None:
        if not c.views.sees_patient(who.user, patient):
            raise HTTPException(404, "no such patient")

    # -- session --

    @app.get("/api/csrf", response_model=m.CsrfOut, tags=["session"])
    def login_csrf(response: Response) -> Any:
        """A token for the login form (sent back as X-CSRF-Token with POST /api/session)."""
        t = secrets.token_urlsafe(32)
        response.set_cookie(CSRF_COOKIE, t, httponly=True, secure=True, samesite="strict",
                            max_age=3600, path="/api/session")
        return {"csrf": t}

    @app.post("/api/session", response_model=m.SessionOut, tags=["session"],
              responses={401: {"description": "wrong user name or password"},
                         429: {"description": "too many failed logins (Retry-After)"}})
    def login(body: m.Login, request: Request, response: Response) -> Any:
        """Sign in: sets the session cookie and returns its CSRF token."""
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(request.headers.get("x-csrf-token", ""),
                                                      expected):
            raise HTTPException(403, "missing or wrong X-CSRF-Token (GET /api/csrf first)")
        user = c.accounts.login(body.username, body.password, _client(request))
        token, csrf = c.accounts.start_session(user)
        response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="strict",
                            max_age=int(c.accounts.session_ttl_s), path="/")
        response.delete_cookie(CSRF_COOKIE, path="/api/session")
        return {"username": user.username, "role": user.role, "csrf": csrf}

    @app.delete("/api/session", status_code=204, tags=["session"])
    def logout(who: Who, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token:
            c.accounts.end_session(token)
        r = Response(status_code=204)
        r.delete_cookie(COOKIE, path="/")
        return r

    @app.get("/api/me", response_model=m.Me, tags=["session"])
    def me(who: Who) -> Any:
        u = who.user
        return {"username": u.username, "role": u.role, "cohorts": list(u.cohorts),
                "csrf": who.csrf or "", "permissions": sorted(u.permissions)}

    @app.post("/api/tokens", response_model=m.TokenOut, tags=["session"])
    def new_token(body: m.TokenIn, who: Who) -> Any:
        """An API token for another tool, acting as you (your role and cohorts)."""
        return {"token": c.accounts.create_token(who.user.username, body.name)}

    # -- alarms --

    @app.get("/api/alerts", response_model=m.AlertsOut, tags=["alerts"])
    def alerts(who: Who, cohort: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        """Open alarms you may see: priority first, then the longest waiting."""
        # alarm times are when the team learnt of them (wall clock), not the data's
        return {"server_ns": time.time_ns(), "alerts": c.views.alerts(who.user, cohort)}

    def command(who: Caller, alert_id: str, kind: str, **kw: Any) -> dict:
        need(who, kind)
        a = visible_alarm(who, alert_id)
        cmd = Command(kind, a["alert_id"], who.user.username, kw.pop("reason", ""),
                      time.time_ns(), **kw)
        c.alarms.submit(cmd)
        return {"kind": kind, "target": cmd.target, "by": cmd.by, "event_ns": cmd.event_ns}

    @app.post("/api/alerts/{alert_id}/ack", status_code=202, response_model=m.Submitted,
              tags=["alerts"])
    def ack(alert_id: str, body: m.Ack, who: Who) -> Any:
        """Acknowledge: the alarm, every alarm of its rule for this patient, or every alarm
        of the patient. Re-notification and escalation stop."""
        return command(who, alert_id, "ack", reason=body.reason, scope=body.scope)

    @app.post("/api/alerts/{alert_id}/snooze", status_code=202, response_model=m.Submitted,
              tags=["alerts"])
    def snooze(alert_id: str, body: m.Snooze, who: Who) -> Any:
        """Silence re-notifications and new alarms of the rule (or the patient) at or below
        this alarm's priority, for ``minutes``."""
        return command(who, alert_id, "snooze", reason=body.reason, scope=body.scope,
                       minutes=body.minutes)

    @app.post("/api/alerts/{alert_id}/resolve", status_code=202, response_model=m.Submitted,
              tags=["alerts"])
    def resolve(alert_id: str, body: m.Resolve, who: Who) -> Any:
        return command(who, alert_id, "resolve", reason=body.reason)

    @app.post("/api/alerts/{alert_id}/assign", status_code=202, response_model=m.Submitted,
              tags=["alerts"])
    def assign(alert_id: str, body: m.Assign, who: Who) -> Any:
        if c.accounts.user(body.to) is None:
            raise invalid(("body", "to"), f"no console user {body.to!r}")
        return command(who, alert_id, "assign", reason=body.reason, assignee=body.to)

    @app.get("/api/alerts/{alert_id}/history", response_model=m.HistoryOut, tags=["alerts"])
    def history(alert_id: str, who: Who) -> Any:
        a = visible_alarm(who, alert_id)
        return {"alert_id": a["alert_id"], "entries": c.views.history(a["alert_id"])}

    @app.get("/api/events", tags=["alerts"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "server-sent events: notice, audit"}})
    async def events(who: Who, request: Request) -> StreamingResponse:
        """Live: every notice (outreach) and audit entry about what you may see, as it
        happens (``event: notice`` / ``event: audit``, JSON data)."""
        if c.feed is None:
            raise HTTPException(503, "no live feed in this process")
        user = who.user
        sub = c.feed.subscribe(lambda ev: c.views.sees_event(user, ev))

        async def stream():
            try:
                yield "retry: 1000\nevent: hello\ndata: {}\n\n"
                while True:
                    try:
                        ev: Event = await asyncio.wait_for(sub.queue.get(), c.keepalive_s)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keepalive\n\n"
                        continue
                    yield sse(ev)
            finally:
                c.feed.unsubscribe(sub)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # -- patients --

    @app.get("/api/cohorts", response_model=m.CohortsOut, tags=["patients"])
    def cohorts(who: Who) -> Any:
        return {"cohorts": [{"name": k, "patients": v}
                            for k, v in c.cohorts.for_user(who.user).items()]}

    def with_tags(who: Caller, rows: list[dict], tag: str | None = None) -> list[dict]:
        if c.profiles is None:
            return rows if tag is None else []
        tags = c.profiles.tags_of(who.user, [r["patient"] for r in rows])
        out = [{**r, "tags": tags[r["patient"]]} for r in rows]
        return out if tag is None else [r for r in out if tag in r["tags"]]

    @app.get("/api/patients", response_model=m.PatientsOut, tags=["patients"])
    def patients(who: Who, cohort: Annotated[str | None, Query(max_length=64)] = None,
                 tag: Annotated[m.TagName | None, Query(
                     description="only patients whose person has this care tag in effect")] = None
                 ) -> Any:
        """Each patient you may see: latest vitals and their age, NEWS2, open alarms, care
        tags in effect."""
        return {"server_ns": c.views.now_ns(),
                "patients": with_tags(who, c.views.ward(who.user, cohort), tag)}

    @app.get("/api/patients/{patient}", response_model=m.PatientOut, tags=["patients"])
    def patient(patient: str, who: Who) -> Any:
        visible_patient(who, patient)
        return with_tags(who, c.views.ward(who.user, None, only=[patient]))[0]

    def need_profiles() -> Profiles:
        if c.profiles is None:
            raise HTTPException(503, "no profile store in this process")
        return c.profiles

    @app.get("/api/patients/{patient}/profile", response_model=m.ProfileOut, tags=["profiles"])
    def profile(patient: str, who: Who) -> Any:
        """The person behind this id and its care profile: the tags in effect (derived from
        the data, or set by hand) with the rule, guideline and evidence behind each; the
        nudges sent and suppressed (newest first, with strategy, channel and reason); and
        the suppressions counted by strategy and reason. A merged id answers for its
        person: the union over its ids, cut to the ids in your cohorts."""
        visible_patient(who, patient)
        return need_profiles().view(who.user, patient)

    @app.post("/api/patients/{patient}/tags", status_code=202, response_model=m.TagSubmitted,
              tags=["profiles"])
    def set_tag(patient: str, body: m.TagIn, who: Who) -> Any:
        """Set or clear a manual care tag (nurses and up; audited). A manual tag stands
        whatever the data says until it is cleared; clearing ends only the manual tag (a
        derived one follows the data): nothing set by hand to clear is a 409. Shown at
        once; the running care stage receives it as a command."""
        need(who, "tag")
        visible_patient(who, patient)
        p = need_profiles()
        now = time.time_ns()
        ids, changed = p.command(who.user, patient, body.tag, body.action, now)
        if body.action == "clear" and not ids:
            raise HTTPException(409, f"{body.tag} is not set by hand for {patient}")
        if changed:
            for pid in ids:
                c.alarms.r.xadd(c.alarms.audit, {
                    "alert_id": "", "patient": pid, "event_ns": str(now), "who": who.user.username,
                    "action": "tagged" if body.action == "set" else "untagged",
                    "reason": body.reason, "detail": body.tag})
        return {"patient": patient, "tag": body.tag, "action": body.action, "ids": ids,
                "changed": changed, "by": who.user.username, "event_ns": now}

    @app.get("/api/tags", response_model=m.TagsOut, tags=["profiles"])
    def tag_members(who: Who, cohort: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        """Each care tag with the patients you may see whose person has it in effect."""
        rows = with_tags(who, c.views.ward(who.user, cohort)) if c.profiles is not None else []
        return {"tags": [{"tag": t, "patients": [r["patient"] for r in rows if t in r["tags"]]}
                         for t in m.TagName.__args__]}

    @app.get("/api/patients/{patient}/series", response_model=m.SeriesOut, tags=["patients"])
    def series(patient: str, who: Who,
               start_ns: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
               end_ns: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
               range_s: Annotated[float, Query(gt=0, le=31 * 86400)] = 6 * 3600.0) -> Any:
        """Readings, window aggregates, the anomaly score with the patient's own expected
        band, NEWS2 and alarm annotations, between ``start_ns`` and ``end_ns`` (default:
        ``range_s`` up to now; at most 31 days)."""
        visible_patient(who, patient)
        end = end_ns if end_ns is not None else c.views.now_ns()
        start = start_ns if start_ns is not None else end - round(range_s * 10**9)
        if start >= end or end - start > 31 * 86400 * 10**9:
            raise invalid(("query", "start_ns"), "need start_ns < end_ns, at most 31 days apart")
        try:
            return c.views.series(patient, start, end)
        except VitalstreamError as exc:  # the series store is away or refused
            raise HTTPException(503, str(exc)) from None

    @app.get("/api/patients/{patient}/overrides", response_model=m.OverridesOut,
             tags=["patients"])
    def overrides(patient: str, who: Who) -> Any:
        """This patient's rule overrides in force (applied by the alarm service)."""
        visible_patient(who, patient)
        st = c.alarms.load(patient)
        now = time.time_ns()
        return {"patient": patient, "overrides": [
            {"rule": o.rule, "priority": o.priority, "until_ns": o.until_ns, "by": o.by,
             "reason": o.reason}
            for o in (st.overrides.values() if st is not None else ()) if o.until_ns > now]}

    @app.post("/api/patients/{patient}/overrides", status_code=202, response_model=m.Submitted,
              tags=["patients"])
    def override(patient: str, body: m.OverrideIn, who: Who) -> Any:
        """A physician's setting of one rule for this patient: its priority, or off, for
        ``minutes``; ``default`` ends it. Audited; open alarms of the rule follow it."""
        need(who, "override")
        visible_patient(who, patient)
        cmd = Command("override", patient, who.user.username, body.reason, time.time_ns(),
                      minutes=body.minutes, rule=body.rule,
                      priority="" if body.priority == "default" else body.priority)
        c.alarms.submit(cmd)
        return {"kind": "override", "target": patient, "by": cmd.by, "event_ns": cmd.event_ns}

    @app.get("/api/audit", response_model=m.AuditOut, tags=["audit"])
    def audit(who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              patient: Annotated[str | None, Query(max_length=128)] = None) -> Any:
        """Who acknowledged, snoozed, resolved or assigned what, when and why: newest first."""
        return {"entries": c.views.audit(who.user, limit, patient)}

    # -- administration --

    @app.get("/api/users", response_model=m.UsersOut, tags=["admin"])
    def users(who: Who) -> Any:
        need(who, "admin")
        return {"users": [u.public() for u in c.accounts.users()]}

    @app.put("/api/users/{username}", response_model=m.UserOut, tags=["admin"])
    def put_user(username: str, body: m.UserIn, who: Who) -> Any:
        need(who, "admin")
        u = c.accounts.put_user(username, body.role, body.cohorts, body.password, body.disabled)
        return u.public()

    @app.put("/api/cohorts/{name}", response_model=m.Cohort, tags=["admin"])
    def put_cohort(name: str, body: m.CohortIn, who: Who) -> Any:
        need(who, "admin")
        try:
            c.cohorts.put(name, body.patients, body.description)
        except AuthError:
            raise
        except Exception as exc:  # an invalid patient id
            raise invalid(("body", "patients"), str(exc)) from None
        return {"name": name, "patients": c.cohorts.members().get(name, [])}

    # -- pages --

    def html_page(name: str) -> Response:
        return HTMLResponse(render(name), headers={"Cache-Control": "no-store"})

    def page(name: str):
        def serve(request: Request) -> Response:
            token = request.cookies.get(COOKIE)
            if token is None or c.accounts.session(token) is None:
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            return html_page(name)
        return serve

    for path, name in (("/alerts", "alerts"), ("/ward", "ward"), ("/history", "history")):
        app.add_api_route(path, page(name), include_in_schema=False, methods=["GET"])

    @app.get("/patients/{patient}", include_in_schema=False)
    def patient_page(patient: str, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        got = c.accounts.session(token) if token else None
        if got is None:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
        if not c.views.sees_patient(got[0], patient):
            return Response("no such patient, or not in your cohorts", 404,
                            media_type="text/plain")
        return html_page("patient")

    @app.get("/login", include_in_schema=False)
    def login_page() -> Response:
        return html_page("login")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/alerts", 303)

    document_errors(app, {
        ("get", "/api/events"): {"503": "no live feed in this process"},
        ("get", "/api/patients/{patient}/series"): {"503": "the series store is away"},
        ("get", "/api/patients/{patient}/profile"): {"503": "no profile store in this process"},
        ("post", "/api/patients/{patient}/tags"): {
            "409": "clear: the tag is not set by hand (a derived tag follows the data)",
            "503": "no profile store in this process"}})
    return app


def _client(request: Request) -> str:
    return request.client.host if request.client else ""
