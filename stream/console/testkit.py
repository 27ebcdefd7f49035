"""A small world for trying the console (and for its tests): two cohorts, one user of
each role, and alerts raised the way the pipeline raises them (its Redis writer, then the
real alarm service). Used by ``vitalstream demo`` for its demo logins too.

>>> sorted(USERS)
['admin', 'nina', 'otto', 'pia', 'vera']
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from vitalstream.model import Alert, AlertState, alert_id

# user -> (role, cohorts, password)
USERS = {
    "vera": ("viewer", ("ward-a",), "viewer-pass-1"),
    "nina": ("nurse", ("ward-a",), "nurse-pass-1"),
    "pia": ("physician", ("ward-a", "ward-b"), "physician-pass-1"),
    "otto": ("nurse", ("ward-b",), "other-ward-pass-1"),
    "admin": ("admin", ("*",), "admin-pass-1"),
}
COHORTS = {"ward-a": ("pa-001", "pa-002"), "ward-b": ("pb-001",)}


def seed(console, users: dict = USERS, cohorts: dict = COHORTS) -> None:
    """Create ``cohorts`` and ``users`` in the console's Redis."""
    for name, patients in cohorts.items():
        console.cohorts.put(name, list(patients))
    for name, (role, cos, password) in users.items():
        console.accounts.put_user(name, role, list(cos), password)


@dataclass
class Raised:
    alert: Alert

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id


def raise_alert(outreach, patient: str, rule: str = "bradycardia", *, signal: str = "heart_rate",
                severity: str = "critical", value: float = 38.0, threshold: float = 40.0,
                event_ns: int | None = None, explanation: str = "") -> Raised:
    """Write a firing alert as the pipeline does (``outreach``: a ``RedisOutreach``)."""
    t = time.time_ns() if event_ns is None else event_ns
    a = Alert(alert_id(patient, rule, t), patient, rule, signal, severity, AlertState.FIRING,
              value, threshold, t, t, 0, f"{rule}: {value:g}",
              explanation or f"{signal} {value:g} past {threshold:g}")
    outreach.write_alerts([a])
    outreach.flush()
    return Raised(a)


# -- the API tests' world: the real app, the real alarm service, one Redis --

BASE_URL = "https://testserver"  # the session cookie is Secure: a client must use https


@dataclass
class World:
    """A seeded console on Redis, with the alarm service that applies its commands (on a
    ``FakeClock`` that starts at the wall clock: ``clock.advance`` moves its timers) and the
    pipeline's alert writer. ``client()`` is an in-process HTTP client of the app."""

    settings: Any
    r: Any
    console: Any
    service: Any
    outreach: Any
    clock: Any
    app: Any = field(default=None, repr=False)

    @property
    def prefix(self) -> str:
        return self.console.alarms.prefix

    def client(self, **kw: Any):
        from fastapi.testclient import TestClient

        return TestClient(self.app, base_url=BASE_URL, **kw)

    def login(self, username: str, password: str | None = None):
        """A client signed in as ``username`` (a ``USERS`` one unless ``password``), and its
        session's CSRF token."""
        c = self.client()
        return c, login(c, username, password)

    def try_login(self, username: str, password: str):
        """The answer to one sign-in attempt (as a browser makes it), whatever it is."""
        c = self.client()
        t = c.get("/api/csrf").json()["csrf"]
        return c.post("/api/session", json={"username": username, "password": password},
                      headers={"X-CSRF-Token": t})

    def raise_alert(self, patient: str, rule: str = "bradycardia", *, step: bool = True,
                    **kw: Any) -> Raised:
        got = raise_alert(self.outreach, patient, rule, **kw)
        if step:
            self.service.step()
        return got

    def step(self) -> int:
        return self.service.step()

    def commands(self) -> int:
        """How many commands reached the alarm service's command stream."""
        return self.r.xlen(self.console.alarms.commands)

    def notices(self, alert_id: str | None = None) -> list[dict]:
        """The outreach messages (of one alarm), in stream order."""
        out = [json.loads(f[b"message"]) for _, f in self.r.xrange(self.console.alarms.outreach)]
        return [n for n in out if alert_id is None or n["alert_id"] == alert_id]

    def audit(self, alert_id: str | None = None) -> list[dict]:
        out = [{k.decode(): v.decode() for k, v in f.items()}
               for _, f in self.r.xrange(self.console.alarms.audit)]
        return [a for a in out if alert_id is None or a["alert_id"] == alert_id]

    def alarm(self, alert_id: str) -> dict | None:
        """The open alarm as the alarm service stored it (None: closed or unknown)."""
        return self.console.alarms.find(alert_id)

    def care(self, readings: Any = (), records: Any = (), *, flow: Any = None) -> list:
        """Put care profiles in Redis the way the pipeline does (see ``care``)."""
        return care(self.console.profiles.store, readings, records, flow=flow,
                    person_of=self.console.profiles.persons.resolve)


def world(redis_url: str, *, client: Any = None, clock: Any = None, seeded: bool = True,
          fast_hashes: bool = True, **console: Any) -> World:
    """A ``World`` on ``redis_url`` (``console``: settings of the ``console`` section, e.g.
    ``login_window_s=2``). ``fast_hashes``: argon2id with the least work (a test logs in
    often); False: the console's own parameters."""
    import redis
    from argon2 import PasswordHasher

    from vitalstream.stream.console.auth import Accounts

    from vitalstream.clock import FakeClock
    from vitalstream.sinks.redis_streams import RedisOutreach
    from vitalstream.stream import settings as S
    from vitalstream.stream.alarms import AlarmService
    from vitalstream.stream.console.app import create_app
    from vitalstream.stream.console.server import build

    overrides = {("redis", "url"): redis_url, **{("console", k): v for k, v in console.items()}}
    s = S.load(env={}, overrides=overrides)
    r = client if client is not None else redis.Redis.from_url(redis_url)
    c = build(s, client=r, series=None, live=False)
    if fast_hashes:
        a = c.accounts
        c.accounts = Accounts(r, c.alarms.prefix, session_ttl_s=a.session_ttl_s,
                              max_failures=a.max_failures, window_s=a.window_s,
                              hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    if seeded:
        seed(c)
    clock = clock if clock is not None else FakeClock(time.time_ns())
    svc = AlarmService(r, s.redis.alerts_stream, cfg=c.lifecycle, prefix=c.alarms.prefix,
                       clock=clock)
    return World(s, r, c, svc, RedisOutreach(s.redis, r), clock, create_app(c))


def care(store: Any, readings: Any = (), records: Any = (), *, flow: Any = None,
         person_of: Any = None) -> list:
    """Run the real care stage (``CareService`` on a fake clock, the default profile rules
    unless ``flow``) over ``readings`` into ``store`` (a ``ProfileStore``), then record
    ``records`` (``Nudge``, ``NudgeSuppressed``) through it; the stage's outputs."""
    from vitalstream.clock import FakeClock
    from vitalstream.operators.care import CareFlow
    from vitalstream.operators.profile import ProfileRules
    from vitalstream.stream.care import CareService, CareWriter

    readings = sorted(readings, key=lambda r: r.event_ns)
    start = readings[0].event_ns if readings else time.time_ns()
    svc = CareService(flow or CareFlow(profile=ProfileRules()), CareWriter(store),
                      FakeClock(start), person_of=person_of)
    out = svc.feed(readings)
    if records:
        store.record(list(records))
    return out


def csrf_h(token: str) -> dict:
    """The header a cookie session's state-changing request carries."""
    return {"X-CSRF-Token": token}


def login(client, username: str, password: str | None = None) -> str:
    """Sign ``client`` in as a person's browser does (the login CSRF token first); the
    session's CSRF token, for ``X-CSRF-Token``."""
    if password is None:
        password = USERS[username][2]
    t = client.get("/api/csrf").json()["csrf"]
    got = client.post("/api/session", json={"username": username, "password": password},
                      headers={"X-CSRF-Token": t})
    if got.status_code != 200:
        raise AssertionError(f"login of {username}: {got.status_code} {got.text}")
    return got.json()["csrf"]


CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--autoplay-policy=no-user-gesture-required")


def chromium_path() -> str | None:
    """Debian's chromium (Playwright's own browser builds are not downloaded)."""
    import os
    import shutil

    return os.environ.get("VITALSTREAM_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


def launch(playwright):
    """Headless Chromium for the console's browser tests and its latency benchmark."""
    path = chromium_path()
    if path is None:
        raise FileNotFoundError("chromium not found: bash scripts/setup.sh --tests installs it")
    return playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))


def browser_login(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the login page, as a person would."""
    page.goto(f"{base_url}/login")
    page.get_by_test_id("username").fill(username)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: "/login" not in url)
