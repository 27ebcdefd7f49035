"""A small world for trying the console (and for its tests): two cohorts, one user of
each role, and alerts raised the way the pipeline raises them (its Redis writer, then the
real alarm service). Used by ``vitalstream demo`` for its demo logins too.

>>> sorted(USERS)
['admin', 'nina', 'otto', 'pia', 'vera']
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
