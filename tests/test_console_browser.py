"""The care-team console in a real headless Chromium (Debian's, driven by Playwright), on the
real pipeline: readings published over MQTT to private mosquitto, the bytewax pipeline with its
alarm service, Redis and VictoriaMetrics, and the console on uvicorn.

The world (``tests`` below run in file order and share it): cohorts ward-a (pa-001, pa-002)
and ward-b (pb-001); users of ``vitalstream.stream.console.testkit.USERS`` (nina: nurse of
ward-a, vera: viewer of ward-a, otto: nurse of ward-b). The site policy re-notifies every 2 s
(high and medium) so that "the re-notifications stop" is seen in seconds.

Readings are stamped an hour back, one a minute, as in tests/test_alarm_service.py: the
bradycardia hover ``[60] * 20 + [39, 42, 43, 40, 42, 39, 43, 42, 40, 41]`` fires at its
minute-8 reading of the hover (40 /min: 30 % of 10 min at <= 40 from minute 6, and an episode
opens on a crossing reading; derived there).

``VITALSTREAM_SCREENSHOTS=docs/screenshots`` keeps the three main pages' screenshots there
(README's pictures); otherwise they go to the test's tmp dir.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
import redis
import yaml

from vitalstream.testing import wait_for

pytestmark = pytest.mark.services
playwright_api = pytest.importorskip("playwright.sync_api")

NS = 1_000_000_000
HOVER = [60] * 20 + [39, 42, 43, 40, 42, 39, 43, 42, 40, 41]


def _messages(patient: str, signal: str, values: list[float], t0: int):
    from vitalstream.simulators.scenario import OutMessage

    return [OutMessage(i * 0.001, f"vitalstream/{patient}/json", json.dumps(
        {"device": patient, "readings": [{"signal": signal, "value": v,
                                          "t_ns": t0 + i * 60 * NS}]}).encode())
            for i, v in enumerate(values)]


@dataclasses.dataclass
class World:
    url: str
    mqtt_url: str
    r: redis.Redis
    prefix: str
    console: object
    victoria: object
    t0: int
    published: set = dataclasses.field(default_factory=set)

    def publish(self, patient: str, signal: str, values: list[float]) -> None:
        """Publish once: a test run alone (``-k``) publishes what the earlier ones would have."""
        if (patient, signal) in self.published:
            return
        self.published.add((patient, signal))
        from vitalstream.simulators.publisher import publish

        publish(_messages(patient, signal, values, self.t0), self.mqtt_url, progress=False)

    def notices(self) -> list[dict]:
        return [json.loads(f[b"message"]) for _, f in self.r.xrange(f"{self.prefix}:outreach")]

    def alarm(self, patient: str, rule: str) -> dict | None:
        return next((a for a in self.console.alarms.alarms(patient) if a["rule"] == rule), None)


@pytest.fixture(scope="module")
def world(mosquitto, redis_server, victoria, tmp_path_factory):
    from importlib import resources

    from vitalstream.stream.bounded import PipelineRun, settings_for
    from vitalstream.stream.console import testkit
    from vitalstream.stream.console.server import ConsoleServer, build

    tmp = tmp_path_factory.mktemp("console-browser")
    doc = yaml.safe_load(resources.files("vitalstream").joinpath("data/rules-default.yaml").read_text())
    doc["lifecycle"] = {"renotify_s": {"high": 2, "medium": 2, "low": None},
                        "tiers": [{"name": "charge-nurse", "after_s": 600}]}
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump(doc))
    settings = settings_for(mosquitto.url, redis_server.url, victoria.url, tmp / "spool",
                            max_clock_skew_s=None)
    settings = dataclasses.replace(settings, rules_path=str(rules), console=dataclasses.replace(
        settings.console, series="victoria-metrics"))
    prefix = settings.redis.alerts_stream.rsplit(":", 1)[0]
    console = build(settings, instance=f"browser-{prefix}")
    testkit.seed(console)
    run = PipelineRun(settings, idle_stop_s=600.0)
    run.start()
    server = ConsoleServer(console).start()
    try:
        yield World(server.url, mosquitto.url, redis.Redis.from_url(redis_server.url), prefix,
                    console, victoria, time.time_ns() - 3600 * NS)
    finally:
        server.stop()
        run.pipeline.request_stop()
        run.join()


@pytest.fixture(scope="module")
def browser():
    from vitalstream.stream.console.testkit import launch

    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def _page_as(browser, world: World, user: str):
    from vitalstream.stream.console.testkit import USERS, browser_login

    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    browser_login(page, world.url, user, USERS[user][2])
    return page


@pytest.fixture(scope="module")
def nina(browser, world):
    page = _page_as(browser, world, "nina")
    yield page
    page.context.close()


def _row(page, patient: str, rule: str):
    return page.locator(f'[data-testid="alert-row"]:has-text("{patient}"):has-text("{rule}")')


def _act(page, row, action: str, reason: str, scope: str | None = None,
         minutes: str | None = None) -> None:
    row.get_by_test_id(f"{action}-button").click()
    dialog = page.get_by_test_id("action-dialog")
    dialog.get_by_test_id("reason-input").fill(reason)
    if scope is not None:
        dialog.get_by_test_id("scope-select").select_option(scope)
    if minutes is not None:
        dialog.get_by_test_id("minutes-input").fill(minutes)
    dialog.get_by_test_id("action-submit").click()


def test_login_lands_on_the_live_alerts(nina, world):
    assert nina.url.startswith(f"{world.url}/alerts")
    assert nina.get_by_test_id("alert-row").count() == 0
    me = nina.evaluate("fetch('/api/me').then(r => r.json())")
    assert (me["username"], me["role"], me["cohorts"]) == ("nina", "nurse", ["ward-a"])


def test_an_alert_published_over_mqtt_appears_in_the_live_list_without_a_reload(nina, world):
    nina.evaluate("window.__sameDocument = 'yes'")
    world.publish("pa-001", "heart_rate", HOVER)
    row = _row(nina, "pa-001", "bradycardia")
    row.wait_for(timeout=30_000)
    assert nina.evaluate("window.__sameDocument") == "yes"  # the page was never reloaded
    text = row.inner_text()
    assert "40 /min" in text and "bradycardia" in text
    assert row.get_attribute("data-priority") == "high"
    assert row.get_attribute("data-state") == "active"
    # critical and active: also pinned in the banner that never scrolls away
    assert "pa-001" in nina.get_by_test_id("critical-banner").inner_text()


def test_acknowledge_with_a_reason_changes_redis_and_the_renotifications_stop(nina, world):
    alarm = world.alarm("pa-001", "bradycardia")
    aid = alarm["alert_id"]
    wait_for(lambda: [n for n in world.notices() if n["alert_id"] == aid
                      and n["reason"] == "renotify"], "a re-notification before the ack", 15)
    _act(nina, _row(nina, "pa-001", "bradycardia"), "ack", "seen at bedside, HR 42 on monitor")
    acked = wait_for(lambda: (world.alarm("pa-001", "bradycardia") or {}).get("state") == "acknowledged"
                     or None, "the ack in Redis", 15)
    assert acked
    (entry,) = [f for _, f in world.r.xrange(f"{world.prefix}:audit")
                if f[b"alert_id"].decode() == aid]
    assert (entry[b"who"], entry[b"action"], entry[b"reason"], entry[b"detail"]) == (
        b"nina", b"acknowledged", b"seen at bedside, HR 42 on monitor", b"alarm")
    acked_ns = int(entry[b"event_ns"])
    _row(nina, "pa-001", "bradycardia").and_(
        nina.locator('[data-state="acknowledged"]')).wait_for(timeout=10_000)
    time.sleep(4.5)  # two re-notification intervals (2 s) after the ack
    later = [n for n in world.notices() if n["alert_id"] == aid and n["reason"] == "renotify"
             and n["event_ns"] > acked_ns + NS // 2]
    assert later == []


def test_snooze_with_rule_scope_silences_that_rule_only(nina, world):
    # two medium-priority problems of one patient on signals NEWS2 does not score (NEWS2
    # overlaps every signal it scores, so its alert would make them one concern)
    world.publish("pa-002", "glucose", [95] * 5 + [62] * 10)
    world.publish("pa-002", "battery", [80] * 5 + [10] * 10)
    hypo, battery = _row(nina, "pa-002", "hypoglycaemia"), _row(nina, "pa-002", "battery_low")
    hypo.wait_for(timeout=30_000)
    battery.wait_for(timeout=30_000)
    _act(nina, hypo, "snooze", "probe repositioned", scope="rule", minutes="15")
    snoozed = wait_for(lambda: (world.alarm("pa-002", "hypoglycaemia") or {}).get("snoozed_until_ns"),
                       "the snooze in Redis", 15)
    (entry,) = [f for _, f in world.r.xrange(f"{world.prefix}:audit")
                if f[b"action"] == b"snoozed"]
    given_ns = int(entry[b"event_ns"])
    assert snoozed == given_ns + 15 * 60 * NS
    assert entry[b"detail"] == b"rule for 15 min" and entry[b"who"] == b"nina"
    time.sleep(4.5)
    after = [n for n in world.notices() if n["patient"] == "pa-002" and n["reason"] == "renotify"
             and n["event_ns"] > given_ns + NS // 2]
    assert {n["rule"] for n in after} == {"battery_low"}  # the other rule still re-notifies
    assert world.alarm("pa-002", "battery_low")["snoozed_until_ns"] is None


def test_a_viewer_cannot_acknowledge(browser, world):
    world.publish("pa-001", "heart_rate", HOVER)
    page = _page_as(browser, world, "vera")
    try:
        row = _row(page, "pa-001", "bradycardia")
        row.wait_for(timeout=15_000)  # vera sees ward-a's alarms ...
        assert row.get_by_test_id("ack-button").count() == 0 or \
            row.get_by_test_id("ack-button").is_disabled()
        before = world.r.xlen(f"{world.prefix}:alarm-commands")
        aid = world.alarm("pa-001", "bradycardia")["alert_id"]
        status = page.evaluate("""async (aid) => {
            const me = await (await fetch('/api/me')).json();
            const r = await fetch(`/api/alerts/${aid}/ack`, {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf},
                body: JSON.stringify({reason: 'trying', scope: 'alarm'})});
            return r.status; }""", aid)
        assert status == 403  # ... and the API refuses her, too
        assert world.r.xlen(f"{world.prefix}:alarm-commands") == before
    finally:
        page.context.close()


def test_a_user_of_another_cohort_cannot_see_the_patient_by_url_or_api(browser, world):
    page = _page_as(browser, world, "otto")
    try:
        response = page.goto(f"{world.url}/patients/pa-001")
        assert response.status == 404
        got = page.evaluate("""async () => {
            const out = {};
            for (const p of ['/api/patients/pa-001', '/api/patients/pa-001/series',
                             '/api/patients/pa-001/overrides']) {
                out[p] = (await fetch(p)).status; }
            out.alerts = await (await fetch('/api/alerts')).text();
            out.patients = await (await fetch('/api/patients')).text();
            return out; }""")
        assert {k: v for k, v in got.items() if k.startswith("/")} == {
            "/api/patients/pa-001": 404, "/api/patients/pa-001/series": 404,
            "/api/patients/pa-001/overrides": 404}
        assert "pa-00" not in got["alerts"] and "pa-00" not in got["patients"]
        page.goto(f"{world.url}/alerts")
        page.wait_for_load_state("networkidle")
        assert page.get_by_test_id("alert-row").count() == 0
    finally:
        page.context.close()


def test_the_patient_chart_shows_the_stored_readings(nina, world):
    world.publish("pa-001", "heart_rate", HOVER)
    # what VictoriaMetrics holds for pa-001's heart rate, read directly (not through the console)
    stored = wait_for(lambda: (lambda pts: pts if sum(len(p["values"]) for p in pts) >= len(HOVER)
                               else None)(world.victoria.export(
                                   'vitals_value{patient="pa-001",signal="heart_rate"}')),
                      "the readings stored", 20)
    values = sorted(v for p in stored for v in p["values"])
    assert values == sorted(HOVER)  # every published reading, once
    nina.goto(f"{world.url}/patients/pa-001")
    chart = nina.get_by_test_id("chart-heart_rate")
    chart.wait_for(timeout=15_000)
    wait_for(lambda: chart.get_attribute("data-points") == str(len(HOVER)) or None,
             "the chart's point count", 15)
    assert nina.locator("canvas").count() >= 1  # uPlot drew it


def test_screenshots_of_the_three_main_pages(nina, world, tmp_path):
    out = Path(os.environ.get("VITALSTREAM_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    world.publish("pa-001", "heart_rate", HOVER)
    world.publish("pa-002", "glucose", [95] * 5 + [62] * 10)
    shots = {}
    for name, path, ready in (("alerts", "/alerts", "alert-row"), ("ward", "/ward", "patient-tile"),
                              ("patient", "/patients/pa-001", "chart-heart_rate")):
        nina.goto(f"{world.url}{path}")
        nina.get_by_test_id(ready).first.wait_for(timeout=30_000)
        nina.wait_for_timeout(500)  # let charts and fonts settle
        shots[name] = out / f"console-{name}.png"
        nina.screenshot(path=str(shots[name]), full_page=False)
    for name, p in shots.items():
        assert p.stat().st_size > 10_000, name  # a page, not a blank


# -- care profiles: tags with evidence, nudges, the ward by tag, manual tags --

XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def profiles(world):
    """pa-002 hypertensive (the real care stage over simulated home blood pressure), with a
    nudge sent and three suppressed, one of each carrying markup in its text; pa-001 none."""
    from test_profile import DAY, T0, home_bp

    from vitalstream.care import Nudge, NudgeSuppressed
    from vitalstream.stream.console.testkit import care

    store = world.console.profiles.store
    if "hypertension" not in store.tags("pa-002"):
        care(store, home_bp("pa-002", 150, 95, days=10, seed=1, p_measure=1.0), [
            Nudge("pa-002", "bp-missing", "patient-reminder", "sms", T0 + 11 * DAY, T0 + 11 * DAY,
                  "please measure", f"no reading for 3 days {XSS}"),
            NudgeSuppressed("pa-002", "bp-missing", "cap", T0 + 12 * DAY, "sms", "sms/day"),
            NudgeSuppressed("pa-002", "bp-missing", "cap", T0 + 13 * DAY, "sms", "sms/day"),
            NudgeSuppressed("pa-002", "med-refill", "holdout", T0 + 14 * DAY, "app", XSS)])
    return store


def test_the_patient_page_shows_tags_with_evidence_and_nudges_sent_and_suppressed(nina, world, profiles):
    stored = profiles.tags("pa-002")["hypertension"]["effective"]  # read from Redis directly
    nina.goto(f"{world.url}/patients/pa-002")
    card = nina.locator('[data-testid="profile-tag"][data-tag="hypertension"]')
    card.wait_for(timeout=15_000)
    assert card.get_attribute("data-source") == "derived"
    assert card.get_by_test_id("tag-rule").inner_text() == stored["rule"]
    assert card.get_by_test_id("tag-guideline").inner_text() == stored["guideline"]
    assert card.get_by_test_id("tag-confidence").inner_text() == \
        f"confidence {round(stored['confidence'] * 100)} %"
    items = card.get_by_test_id("evidence-item")
    assert items.count() == len(stored["evidence"])
    assert [int(items.nth(i).get_attribute("data-event-ns")) for i in range(items.count())] == \
        [e["event_ns"] for e in stored["evidence"]]
    assert stored["evidence"][0]["note"] in items.first.inner_text()
    rows = nina.get_by_test_id("nudge-row")
    assert [rows.nth(i).get_attribute("data-status") for i in range(rows.count())] == [
        "suppressed", "suppressed", "suppressed", "sent"]  # newest first
    sent = nina.locator('[data-testid="nudge-row"][data-status="sent"]')
    assert sent.get_by_test_id("nudge-reason").inner_text() == f"no reading for 3 days {XSS}"
    counts = nina.get_by_test_id("suppressed-count")
    assert [counts.nth(i).inner_text() for i in range(counts.count())] == [
        "bp-missing \u00b7 cap: 2", "med-refill \u00b7 holdout: 1"]
    # the markup in the data was shown as text, never run
    assert nina.evaluate("window.__xss") is None
    assert nina.locator('main img[src="x"]').count() == 0


def test_the_ward_filter_by_tag_narrows_the_tiles_and_the_url_keeps_it(nina, world, profiles):
    nina.goto(f"{world.url}/ward")
    tiles = nina.get_by_test_id("patient-tile")
    wait_for(lambda: tiles.count() == 2 or None, "both ward-a patients", 15)
    tagged = nina.locator('[data-testid="patient-tile"][data-patient="pa-002"]')
    assert tagged.get_by_test_id("tile-tag").all_inner_texts() == ["hypertension"]
    nina.get_by_test_id("tag-filter").select_option("hypertension")
    wait_for(lambda: tiles.count() == 1 or None, "the tiles narrowed", 15)
    assert tiles.first.get_attribute("data-patient") == "pa-002"
    assert nina.url.endswith("?tag=hypertension")
    nina.reload()
    wait_for(lambda: (tiles.count() == 1 and nina.get_by_test_id("tag-filter").input_value()
                      == "hypertension") or None, "the filter kept over a reload", 15)
    assert tiles.first.get_attribute("data-patient") == "pa-002"
    nina.get_by_test_id("tag-filter").select_option("")
    wait_for(lambda: tiles.count() == 2 or None, "every tile back", 15)


def test_setting_a_manual_tag_from_the_page_shows_it_and_clearing_removes_it(nina, world, profiles):
    nina.goto(f"{world.url}/patients/pa-001")
    form = nina.get_by_test_id("tag-form")
    form.wait_for(timeout=15_000)
    nina.get_by_test_id("tag-select").select_option("low-activity")
    nina.get_by_test_id("tag-reason").fill("bed-bound after surgery")
    nina.get_by_test_id("tag-set").click()
    card = nina.locator('[data-testid="profile-tag"][data-tag="low-activity"]')
    card.wait_for(timeout=10_000)
    assert card.get_attribute("data-source") == "manual"
    manual = profiles.tags("pa-001")["low-activity"]["manual"]  # in Redis, set by hand
    assert manual["change"] == "set" and manual["source"] == "manual"
    audit = [f for _, f in world.r.xrange(f"{world.prefix}:audit") if f[b"action"] == b"tagged"]
    assert [(f[b"who"], f[b"patient"], f[b"detail"], f[b"reason"]) for f in audit][-1] == (
        b"nina", b"pa-001", b"low-activity", b"bed-bound after surgery")
    card.get_by_test_id("tag-clear").click()
    card.wait_for(state="detached", timeout=10_000)
    assert profiles.tags("pa-001")["low-activity"]["effective"] is None
