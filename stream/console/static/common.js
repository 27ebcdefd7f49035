// vitalstream care console: what every page shares.
//
//   VS.api(path, {method, body})   fetch wrapper: cookie session, X-CSRF-Token on state changes,
//                                  401 -> /login?next=<this page>, errors as VS.ApiError
//   VS.h(tag, props, ...children)  DOM builder; strings become text nodes (never HTML)
//   VS.fmt*                        values with UCUM units, ages, local times with the zone
//   VS.page(name, opts)            top bar, critical banner, live feed (SSE) with indicator,
//                                  audible cue, 1 s "time since" ticker
//   VS.AlertTable, VS.actions      alert rows and the acknowledge / snooze / resolve / assign dialog
//
// Server text only ever reaches the DOM through textContent / text nodes / attributes.
"use strict";

(function () {
  const VS = {};
  window.VS = VS;

  const DASH = "\u2014";
  const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
  const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };
  VS.PRIORITY_RANK = PRIORITY_RANK;

  // ---------------------------------------------------------------- DOM

  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  /** h("td", {class: "x", "data-testid": "y", onclick: fn}, "text", node, [more]) */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k === "dataset") Object.assign(el.dataset, v);
        else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (k === "style") throw new Error("no inline styles (CSP): use a class");
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    append(el, children);
    return el;
  }
  VS.h = h;
  VS.$ = (sel, root) => (root || document).querySelector(sel);
  /** the page's error strip (#load-error): show(text) shows it, show("") hides it */
  VS.errorStrip = (el = document.getElementById("load-error")) => (text) => {
    el.textContent = text;
    el.classList.toggle("hidden", !text);
  };

  VS.patientHref = (p) => "/patients/" + encodeURIComponent(p);
  /** technical alarms (a gateway's, the pipeline's) have no patient page */
  VS.isPatient = (p) => typeof p === "string" && p !== "" && p !== "pipeline" && !p.startsWith("gateway:");
  VS.patientLink = (p, cls) => VS.isPatient(p)
    ? h("a", { href: VS.patientHref(p), class: cls || "" }, p)
    : h("span", { class: cls || "", title: "technical alarm" }, p);

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, detail, headers) {
      super(detail || (status ? `HTTP ${status}` : "network error"));
      this.status = status;
      this.detail = detail;
      this.headers = headers || null;
    }
  }
  VS.ApiError = ApiError;

  let leaving = false;
  function toLogin() {
    if (leaving) return;
    leaving = true;
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
  VS.toLogin = toLogin;

  function detailOf(data, text, status) {
    const d = data && data.detail;
    if (typeof d === "string" && d) return d;
    if (Array.isArray(d)) {  // FastAPI validation errors
      return d.map((x) => (x && x.msg ? (Array.isArray(x.loc) ? x.loc.slice(1).join(".") + ": " : "") + x.msg
                                        : String(x))).join("; ");
    }
    if (text) return text.slice(0, 300);
    return { 403: "not allowed", 404: "not found", 429: "too many requests", 503: "service unavailable" }[status]
      || `HTTP ${status}`;
  }

  VS.csrf = "";

  async function api(path, opts = {}) {
    const method = (opts.method || "GET").toUpperCase();
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (!SAFE_METHODS.has(method)) {
      if (!VS.csrf && opts.csrf === undefined) await VS.me();
      headers["X-CSRF-Token"] = opts.csrf !== undefined ? opts.csrf : VS.csrf;
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "the console is not answering (network error)");
    }
    if (r.status === 401 && opts.redirect401 !== false) {
      toLogin();
      throw new ApiError(401, "not signed in");
    }
    let data = null, text = "";
    if (r.status !== 204) {
      text = await r.text().catch(() => "");
      if ((r.headers.get("content-type") || "").includes("json")) {
        try { data = JSON.parse(text); } catch (e) { data = null; }
      }
    }
    if (!r.ok) {
      const err = new ApiError(r.status, detailOf(data, text, r.status), r.headers);
      // the session's CSRF token changed (signed in again in another tab): fetch it once more
      if (r.status === 403 && /csrf/i.test(err.detail) && !SAFE_METHODS.has(method) && !opts.retried
          && opts.csrf === undefined) {
        await VS.me(true);
        return api(path, Object.assign({}, opts, { retried: true }));
      }
      throw err;
    }
    return data;
  }
  VS.api = api;

  let mePromise = null;
  /** GET /api/me, once per page (force: again) */
  VS.me = function (force) {
    if (mePromise === null || force) {
      mePromise = api("/api/me").then((me) => {
        VS.csrf = me.csrf || "";
        VS.user = me;
        return me;
      });
      mePromise.catch(() => { mePromise = null; });
    }
    return mePromise;
  };
  VS.can = (perm) => !!(VS.user && Array.isArray(VS.user.permissions) && VS.user.permissions.includes(perm));

  /** One run at a time; calls during a run cause exactly one more run after it. */
  VS.coalesced = function (fn) {
    let running = false, again = false;
    const run = async () => {
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
      running = false;
      if (again) { again = false; run(); }
    };
    return run;
  };

  VS.debounce = function (fn, ms) {
    let t = null;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  };

  // ---------------------------------------------------------------- formatting

  /** a number for a screen: 0 is "0", null/NaN is an em dash; at most 2 decimals */
  function fmtNum(v) {
    if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) v = Number(v);
    if (typeof v !== "number" || !Number.isFinite(v)) return DASH;
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
    const s = String(Number(v.toFixed(digits)));
    return s === "-0" ? "0" : s;
  }
  VS.fmtNum = fmtNum;

  /** "38 /min", "182 mm[Hg]", "94 %", "—" (UCUM unit as the server gives it) */
  VS.fmtValue = function (v, unit) {
    const n = fmtNum(v);
    return n === DASH || !unit ? n : `${n} ${unit}`;
  };

  /** "45 s", "3 min", "1 h 05 min", "2 d 03 h" */
  VS.fmtAge = function (seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) seconds = 0;
    if (seconds < 60) return `${Math.floor(seconds)} s`;
    const m = Math.floor(seconds / 60);
    if (m < 60) return `${m} min`;
    const hrs = Math.floor(m / 60);
    if (hrs < 24) return `${hrs} h ${String(m % 60).padStart(2, "0")} min`;
    return `${Math.floor(hrs / 24)} d ${String(hrs % 24).padStart(2, "0")} h`;
  };

  const ZONE = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  })();
  VS.ZONE = ZONE;
  const fmtClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                        hour12: false, timeZoneName: "short" });
  const fmtDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
  const fmtFull = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
                                                       hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                       hour12: false, timeZoneName: "short" });

  function toDate(ns) {
    const n = typeof ns === "bigint" ? Number(ns) : Number(ns);
    return Number.isFinite(n) && n > 0 ? new Date(n / 1e6) : null;
  }
  /** local time with the zone: "14:03:12 CET" today, "2 Dec 14:03:12 CET" on another day */
  VS.fmtTime = function (ns) {
    const d = toDate(ns);
    if (!d) return DASH;
    const today = new Date();
    const clock = fmtClock.format(d);
    return d.toDateString() === today.toDateString() ? clock : `${fmtDay.format(d)} ${clock}`;
  };
  /** always with the date: "2 Dec 2026, 14:03:12 CET" */
  VS.fmtDateTime = function (ns) {
    const d = toDate(ns);
    return d ? fmtFull.format(d) : DASH;
  };

  VS.SIGNALS = {
    heart_rate: { label: "HR", name: "Heart rate", cls: "v-hr" },
    spo2: { label: "SpO\u2082", name: "SpO\u2082", cls: "v-spo2" },
    resp_rate: { label: "RR", name: "Respiratory rate", cls: "v-rr" },
    temperature: { label: "Temp", name: "Temperature", cls: "v-temp" },
    body_temp: { label: "Temp", name: "Temperature", cls: "v-temp" },
    bp_systolic: { label: "BP sys", name: "Blood pressure, systolic", cls: "v-bp" },
    bp_diastolic: { label: "BP dia", name: "Blood pressure, diastolic", cls: "v-bp" },
    glucose: { label: "Gluc", name: "Glucose", cls: "v-gluc" },
    steps: { label: "Steps", name: "Steps", cls: "v-steps" },
    battery: { label: "Batt", name: "Device battery", cls: "v-batt" },
  };
  VS.SIGNAL_ORDER = ["heart_rate", "spo2", "resp_rate", "temperature", "body_temp", "bp_systolic",
                     "bp_diastolic", "glucose", "steps", "battery"];
  VS.signalLabel = (s) => (VS.SIGNALS[s] ? VS.SIGNALS[s].label : s);
  VS.signalName = (s) => (VS.SIGNALS[s] ? VS.SIGNALS[s].name : s.replace(/_/g, " "));
  VS.bySignalOrder = (a, b) => {
    const ia = VS.SIGNAL_ORDER.indexOf(a), ib = VS.SIGNAL_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
  };

  // ---------------------------------------------------------------- clock and ticker

  // The server's clock against this browser's (from each /api/alerts server_ns), so that
  // "time since onset" is right even when the workstation's clock is off.
  VS.clock = {
    offsetMs: 0,
    sync(serverNs) {
      const n = Number(serverNs);
      if (Number.isFinite(n) && n > 0) this.offsetMs = n / 1e6 - Date.now();
    },
    /** a server time (ns) as a local Date.now()-based ms */
    localMs(ns) { return Number(ns) / 1e6 - this.offsetMs; },
    serverNowNs() { return (Date.now() + this.offsetMs) * 1e6; },
  };

  // Every element with data-since-ms (local ms) shows the age since then; with
  // data-stale-after-s it gets .is-stale past that age. Re-rendered once a second, locally.
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-since-ms]")) {
      const age = (now - Number(el.dataset.sinceMs)) / 1000;
      const text = (el.dataset.agePrefix || "") + VS.fmtAge(age) + (el.dataset.ageSuffix || "");
      if (el.textContent !== text) el.textContent = text;
      const holder = el.closest("[data-stale-after-s]");
      if (holder && holder.contains(el)) {
        holder.classList.toggle("is-stale", age > Number(holder.dataset.staleAfterS));
      }
    }
    for (const fn of tickers) { try { fn(now); } catch (e) { console.warn(e); } }
  }
  const tickers = [];
  VS.onTick = (fn) => tickers.push(fn);
  VS.tick = tick;
  /** an age element: counts up from a local ms time */
  VS.ageEl = (tag, sinceMs, props) => {
    const el = h(tag, props || {});
    el.dataset.sinceMs = String(sinceMs);
    el.textContent = VS.fmtAge((Date.now() - sinceMs) / 1000);
    return el;
  };

  // ---------------------------------------------------------------- sound

  // Browsers start audio only after a user gesture: the AudioContext is made on the first
  // click or key press anywhere on the page (or at once where autoplay is allowed).
  const sound = {
    ctx: null,
    last: { t: 0, rank: 0 },
    played: 0,
    enabled() { return localStorage.getItem("vs.sound") !== "off"; },
    setEnabled(on) { localStorage.setItem("vs.sound", on ? "on" : "off"); this.paint(); },
    unlock() {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      try {
        if (sound.ctx === null) sound.ctx = new AC();
        if (sound.ctx.state === "suspended") sound.ctx.resume().then(() => sound.paint(), () => {});
      } catch (e) { /* no audio device */ }
      sound.paint();
    },
    running() { return !!(this.ctx && this.ctx.state === "running"); },
    /** a short generated tone: high = five fast pulses at 988 Hz, medium = three slower at 587 Hz */
    play(priority) {
      if (!this.enabled() || (priority !== "high" && priority !== "medium")) return false;
      const rank = PRIORITY_RANK[priority];
      const now = Date.now();
      // a burst of notices makes one cue (a higher priority still sounds)
      if (now - this.last.t < 1500 && rank <= this.last.rank) return false;
      // several open tabs of the console: one of them sounds
      const key = "vs.tone";
      try {
        const other = JSON.parse(localStorage.getItem(key) || "null");
        if (other && other.tab !== TAB_ID && now - other.t < 1200 && rank <= other.rank) return false;
        localStorage.setItem(key, JSON.stringify({ t: now, rank, tab: TAB_ID }));
      } catch (e) { /* private mode */ }
      this.last = { t: now, rank };
      if (this.ctx === null) this.unlock();
      const ctx = this.ctx;
      if (!ctx) return false;
      const [freq, pulses, on, gap] = priority === "high" ? [988, 5, 0.11, 0.07] : [587, 3, 0.16, 0.12];
      const t0 = ctx.currentTime + 0.02;
      for (let i = 0; i < pulses; i++) {
        const o = ctx.createOscillator(), g = ctx.createGain();
        o.type = "triangle";
        o.frequency.value = freq;
        o.connect(g);
        g.connect(ctx.destination);
        const t = t0 + i * (on + gap);
        g.gain.setValueAtTime(0.0001, t);
        g.gain.exponentialRampToValueAtTime(0.35, t + 0.012);
        g.gain.setValueAtTime(0.35, t + on - 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + on);
        o.start(t);
        o.stop(t + on + 0.01);
      }
      this.played += 1;
      const b = document.querySelector('[data-testid="sound-toggle"]');
      if (b) { b.dataset.tones = String(this.played); b.dataset.lastTone = priority; }
      return true;
    },
    paint() {
      const b = document.querySelector('[data-testid="sound-toggle"]');
      if (!b) return;
      const on = sound.enabled();
      b.setAttribute("aria-pressed", String(on));
      b.classList.toggle("needs-gesture", on && !sound.running());
      b.title = on ? (sound.running() ? "Alarm tones on: click to silence this screen"
                                      : "Alarm tones on, but the browser allows sound only after a click on the page")
                   : "Alarm tones off: click to turn on";
      b.lastChild.textContent = on ? "Sound on" : "Sound off";
    },
  };
  const TAB_ID = Math.random().toString(36).slice(2);
  VS.sound = sound;
  for (const ev of ["pointerdown", "keydown"]) {
    document.addEventListener(ev, () => sound.unlock(), { capture: true, passive: true });
  }
  const CUE_REASONS = new Set(["raised", "escalated", "priority_raised", "snooze_ended"]);
  VS.CUE_REASONS = CUE_REASONS;

  // ---------------------------------------------------------------- toasts

  VS.toast = function (text, kind) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
      document.body.append(box);
    }
    const t = h("div", { class: "toast" + (kind === "error" ? " toast-error" : ""), "data-testid": "toast",
                         role: kind === "error" ? "alert" : "status" }, text);
    box.append(t);
    setTimeout(() => t.remove(), kind === "error" ? 9000 : 5000);
  };

  // ---------------------------------------------------------------- top bar

  function topBar(active) {
    let bar = document.getElementById("topbar");
    if (!bar) {
      bar = h("header", { id: "topbar", class: "topbar" });
      document.body.prepend(bar);
    }
    const link = (href, label, key) => h("a", { href, "aria-current": key === active ? "page" : null,
                                                "data-testid": `nav-${key}` }, label);
    const conn = h("span", { class: "conn", id: "conn", "data-testid": "connection-status",
                             "data-state": "connecting", role: "status", title: "live updates" }, "connecting");
    const clock = h("span", { class: "clock", title: "local time of this workstation" });
    const paintClock = () => { clock.textContent = fmtClock.format(new Date()); };
    paintClock();
    VS.onTick(paintClock);
    const soundBtn = h("button", { type: "button", class: "btn btn-ghost sound-toggle", "data-testid": "sound-toggle",
                                   "aria-pressed": "true" }, h("span", { class: "sound-icon" }), "Sound on");
    soundBtn.addEventListener("click", () => { sound.unlock(); sound.setEnabled(!sound.enabled()); });
    const user = h("span", { class: "user", "data-testid": "user-name" });
    const logout = h("button", { type: "button", class: "btn btn-ghost", "data-testid": "logout-button" }, "Log out");
    logout.addEventListener("click", async () => {
      logout.disabled = true;
      try { await api("/api/session", { method: "DELETE", redirect401: false }); } catch (e) { /* gone anyway */ }
      location.assign("/login");
    });
    bar.replaceChildren(
      h("a", { class: "brand", href: "/alerts" }, "vitalstream", h("span", { class: "brand-sub" }, "care console")),
      h("nav", { class: "nav", "aria-label": "main" },
        link("/alerts", "Alerts", "alerts"), link("/ward", "Ward", "ward"), link("/history", "History", "history")),
      h("span", { class: "spacer" }),
      conn, clock, soundBtn, user, logout);
    sound.paint();
    if (!document.querySelector(".offline-strip")) {
      bar.after(h("div", { class: "offline-strip", role: "alert" },
                  "Live updates interrupted \u2014 what this screen shows may be out of date. Reconnecting\u2026"));
    }
    return {
      setUser(me) {
        user.replaceChildren(me.username, h("span", { class: "role" }, me.role));
        user.title = "cohorts: " + ((me.cohorts || []).join(", ") || "none");
      },
    };
  }

  // ---------------------------------------------------------------- live feed

  /** EventSource("/api/events") with the indicator; handlers.onEvent(kind, data), handlers.onConnect() */
  function live(handlers) {
    const conn = () => document.getElementById("conn");
    const set = (state, text) => {
      const c = conn();
      if (c) { c.dataset.state = state; c.textContent = text || state; }
      document.body.classList.toggle("is-offline", state === "offline");
    };
    let es = null, retry = null, failures = 0;
    const connect = () => {
      clearTimeout(retry);
      if (es) es.close();
      es = new EventSource("/api/events");
      es.addEventListener("open", () => set("live"));
      es.addEventListener("hello", () => {
        failures = 0;
        set("live");
        if (handlers.onConnect) handlers.onConnect();  // catch up on what happened while away
      });
      for (const kind of ["notice", "audit"]) {
        es.addEventListener(kind, (ev) => {
          let data = {};
          try { data = JSON.parse(ev.data); } catch (e) { return; }
          set("live");
          handlers.onEvent(kind, data);
        });
      }
      es.addEventListener("error", () => {
        if (es.readyState === EventSource.CLOSED) {
          // refused (401, 503...): the browser will not retry by itself
          failures += 1;
          set(failures > 2 ? "offline" : "reconnecting", failures > 2 ? "offline" : "reconnecting");
          VS.me(true).catch(() => {});  // a 401 goes to the login page
          retry = setTimeout(connect, Math.min(15000, 1000 * 2 ** Math.min(failures, 4)));
        } else {
          set("reconnecting");
        }
      });
    };
    connect();
    window.addEventListener("pagehide", () => { if (es) es.close(); });
    return { reconnect: connect };
  }
  VS.live = live;

  // ---------------------------------------------------------------- critical banner

  /** Every active high-priority alarm, pinned under the top bar (position: sticky). */
  class CriticalBanner {
    constructor(el) {
      this.el = el;
      this.seen = null;  // ids shown before (null: first render, nothing is "new")
      this.el.setAttribute("aria-live", "assertive");
    }

    static critical(alerts) {
      return alerts.filter((a) => a.priority === "high" && a.state === "active" && !a.muted);
    }

    update(alerts) {
      const crit = CriticalBanner.critical(alerts);
      const seen = new Set();
      const items = crit.map((a) => {
        seen.add(a.alert_id);
        const li = h("li", { class: "critical-item", "data-testid": "critical-item", "data-alert-id": a.alert_id },
          VS.patientLink(a.patient, "ci-patient"),
          h("span", { class: "ci-rule" }, a.rule),
          h("span", { class: "ci-value" }, VS.fmtValue(a.value, a.unit)),
          VS.ageEl("span", VS.clock.localMs(a.raised_ns), { class: "ci-age", title: "since onset " + VS.fmtTime(a.raised_ns) }));
        if (this.seen !== null && !this.seen.has(a.alert_id)) li.classList.add("is-new");
        if (VS.can("ack")) {
          li.append(h("button", { type: "button", class: "btn btn-ack btn-sm", "data-testid": "banner-ack-button",
                                  onclick: () => VS.actions.open("ack", a) }, "Ack"));
        }
        return li;
      });
      this.seen = seen;
      this.el.classList.toggle("is-clear", crit.length === 0);
      this.el.dataset.count = String(crit.length);
      if (crit.length === 0) {
        this.el.replaceChildren(h("div", { class: "banner-title" }, "No active high-priority alarms"));
      } else {
        this.el.replaceChildren(
          h("div", { class: "banner-title" }, h("span", { class: "banner-count", "data-testid": "critical-count" },
                                                String(crit.length)), "Critical"),
          h("ul", { class: "critical-list" }, items));
      }
      return crit.length;
    }
  }
  VS.CriticalBanner = CriticalBanner;

  // ---------------------------------------------------------------- actions dialog

  const ACTIONS = {
    ack: { label: "Acknowledge", verb: "Acknowledge", perm: "ack", scopes: [["alarm", "this alarm"],
           ["rule", "every alarm of this rule for the patient"], ["patient", "every alarm of the patient"]] },
    snooze: { label: "Snooze", verb: "Snooze", perm: "snooze", minutes: true, scopes: [
              ["rule", "this rule for the patient"], ["patient", "every rule of the patient"]] },
    resolve: { label: "Resolve", verb: "Resolve", perm: "resolve" },
    assign: { label: "Assign", verb: "Assign", perm: "assign", to: true },
  };
  VS.ACTIONS = ACTIONS;
  const REASONS = ["seen at bedside", "patient assessed, clinically expected", "sensor / probe artefact",
                   "probe repositioned", "patient moving / mobilising", "escalated to physician",
                   "treatment started", "device off the patient"];

  const actions = {
    dialog: null,
    pending: new Map(),  // alert id -> kind, until the next list shows it applied
    listeners: [],
    onSubmitted(fn) { this.listeners.push(fn); },

    build() {
      const d = h("dialog", { class: "action-dialog", "data-testid": "action-dialog", "aria-labelledby": "ad-title" });
      const f = {};
      f.title = h("h2", { id: "ad-title" });
      f.summary = h("div", { class: "dlg-summary" });
      f.reason = h("input", { type: "text", id: "ad-reason", "data-testid": "reason-input", required: true,
                              maxlength: "500", autocomplete: "off", list: "ad-reasons",
                              placeholder: "why \u2014 recorded in the audit" });
      f.scope = h("select", { id: "ad-scope", "data-testid": "scope-select" });
      f.minutes = h("input", { type: "number", id: "ad-minutes", "data-testid": "minutes-input", min: "1",
                               max: "1440", step: "1", value: "15", required: true });
      f.to = h("input", { type: "text", id: "ad-to", "data-testid": "assignee-input", maxlength: "64",
                          autocomplete: "off", placeholder: "console user name" });
      f.error = h("div", { class: "dlg-error", "data-testid": "action-error", role: "alert" });
      f.submit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "action-submit" }, "Submit");
      const cancel = h("button", { type: "button", class: "btn", "data-testid": "action-cancel" }, "Cancel");
      f.scopeField = h("div", { class: "field" }, h("label", { for: "ad-scope" }, "Scope"), f.scope);
      f.minutesField = h("div", { class: "field" }, h("label", { for: "ad-minutes" }, "Minutes"), f.minutes);
      f.toField = h("div", { class: "field" }, h("label", { for: "ad-to" }, "Assign to"), f.to);
      const form = h("form", { novalidate: true },
        h("div", { class: "dlg-head" }, f.title),
        h("div", { class: "dlg-body" }, f.summary,
          h("div", { class: "field" }, h("label", { for: "ad-reason" }, "Reason (required)"), f.reason,
            h("datalist", { id: "ad-reasons" }, REASONS.map((r) => h("option", { value: r })))),
          f.toField, f.scopeField, f.minutesField, f.error),
        h("div", { class: "dlg-foot" }, cancel, f.submit));
      cancel.addEventListener("click", () => d.close());
      form.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
      d.append(form);
      document.body.append(d);
      this.dialog = d;
      this.f = f;
    },

    /** open the dialog for kind (ack|snooze|resolve|assign) on alert a */
    open(kind, a) {
      if (!this.dialog) this.build();
      const spec = ACTIONS[kind], f = this.f;
      this.kind = kind;
      this.alert = a;
      f.title.textContent = `${spec.verb}: ${a.patient} \u00b7 ${a.rule}`;
      f.summary.replaceChildren(
        h("span", { class: `badge badge-${a.priority}` }, a.priority), " ",
        h("strong", {}, VS.fmtValue(a.value, a.unit)), " ",
        a.explanation ? `\u2014 ${a.explanation}` : "",
        h("div", { class: "small dim" }, `raised ${VS.fmtTime(a.raised_ns)} \u00b7 ${a.state}`));
      f.reason.value = "";
      f.error.textContent = "";
      f.scope.replaceChildren(...(spec.scopes || []).map(([v, label]) => h("option", { value: v }, `${v} \u2014 ${label}`)));
      f.scopeField.classList.toggle("hidden", !spec.scopes);
      f.minutesField.classList.toggle("hidden", !spec.minutes);
      f.minutes.value = "15";
      f.toField.classList.toggle("hidden", !spec.to);
      f.to.value = a.assignee || "";
      f.submit.textContent = spec.verb;
      f.submit.disabled = false;
      if (this.dialog.open) this.dialog.close();
      this.dialog.showModal();
      (spec.to ? f.to : f.reason).focus();
    },

    async submit() {
      const f = this.f, kind = this.kind, a = this.alert, spec = ACTIONS[kind];
      const reason = f.reason.value.trim();
      f.error.textContent = "";
      if (!reason) { f.error.textContent = "A reason is required (it is recorded in the audit)."; f.reason.focus(); return; }
      const body = { reason };
      if (spec.scopes) body.scope = f.scope.value;
      if (spec.minutes) {
        const m = Number(f.minutes.value);
        if (!Number.isFinite(m) || m <= 0 || m > 1440) { f.error.textContent = "Minutes: 1 to 1440."; f.minutes.focus(); return; }
        body.minutes = m;
      }
      if (spec.to) {
        const to = f.to.value.trim();
        if (!to) { f.error.textContent = "Whom to assign it to?"; f.to.focus(); return; }
        body.to = to;
      }
      f.submit.disabled = true;
      f.submit.textContent = "Submitting\u2026";
      try {
        await api(`/api/alerts/${encodeURIComponent(a.alert_id)}/${kind}`, { method: "POST", body });
        this.dialog.close();
        this.pending.set(a.alert_id, { kind, at: Date.now() });
        VS.toast(`${spec.verb} submitted: ${a.patient} \u00b7 ${a.rule}. The alarm service applies it in a moment.`);
        for (const fn of this.listeners) fn(kind, a);
      } catch (e) {
        f.error.textContent = e.status === 403 ? `Not allowed: ${e.message}` : e.message;
        f.submit.disabled = false;
        f.submit.textContent = spec.verb;
      }
    },
  };
  VS.actions = actions;

  // ---------------------------------------------------------------- alert history dialog

  VS.showHistory = async function (a) {
    let d = document.getElementById("history-dialog");
    if (!d) {
      d = h("dialog", { id: "history-dialog", class: "wide", "data-testid": "history-dialog" });
      document.body.append(d);
    }
    const close = h("button", { type: "button", class: "btn", onclick: () => d.close() }, "Close");
    const body = h("div", { class: "dlg-body" }, h("div", { class: "dim" }, "Loading\u2026"));
    d.replaceChildren(h("div", { class: "dlg-head" }, h("h2", {}, `History: ${a.patient} \u00b7 ${a.rule}`),
                        h("span", { class: "small dim mono" }, a.alert_id)),
                      body, h("div", { class: "dlg-foot" }, close));
    d.showModal();
    try {
      const got = await api(`/api/alerts/${encodeURIComponent(a.alert_id)}/history`);
      const rows = (got.entries || []).map((e) => h("tr", { "data-testid": "history-row" },
        h("td", { class: "nowrap" }, VS.fmtTime(e.event_ns)),
        h("td", {}, h("span", { class: "hist-kind" }, e.kind)),
        h("td", { class: "action-word" }, e.kind === "audit" ? e.action : e.reason),
        h("td", {}, e.who || ""),
        h("td", {}, e.priority ? h("span", { class: `badge badge-${e.priority}` }, e.priority) : ""),
        h("td", {}, e.level === null || e.level === undefined ? "" : `L${e.level}`),
        h("td", {}, e.kind === "audit" ? e.detail : e.explanation)));
      body.replaceChildren(rows.length
        ? h("table", { class: "grid" }, h("thead", {}, h("tr", {},
            ["Time", "Kind", "What", "Who", "Priority", "Level", "Detail"].map((t) => h("th", {}, t)))),
            h("tbody", {}, rows))
        : h("div", { class: "empty" }, "No history recorded."));
    } catch (e) {
      body.replaceChildren(h("div", { class: "error-box" }, e.message));
    }
  };

  // ---------------------------------------------------------------- alert table

  function escalation(a) {
    const lvl = Number(a.level) || 0;
    if (lvl <= 0) return h("span", { class: "dim" }, "primary team");
    return h("span", { class: "tag tag-escalated" }, `L${lvl}${a.tier ? " \u00b7 " + a.tier : ""}`);
  }

  /** Rows of alerts in server order, updated in place (a row keeps its element, so a new one
   *  can be highlighted and the benchmark's observer sees each id once). */
  class AlertTable {
    constructor(tbody, opts = {}) {
      this.tbody = tbody;
      this.opts = opts;
      this.rows = new Map();
      this.initialised = false;
    }

    update(alerts) {
      const keep = new Set();
      let prev = null;
      for (const a of alerts) {
        keep.add(a.alert_id);
        const pend = actions.pending.get(a.alert_id);
        const sig = JSON.stringify(a) + (pend ? "|p" : "");
        let tr = this.rows.get(a.alert_id);
        if (!tr) {
          tr = h("tr", { class: "alert-row", "data-testid": "alert-row" });
          tr.dataset.alertId = a.alert_id;
          this.rows.set(a.alert_id, tr);
          if (this.initialised) {
            tr.classList.add("is-new");
            setTimeout(() => tr.classList.remove("is-new"), 4000);
          }
        }
        if (tr._sig !== sig) {
          tr._sig = sig;
          this.fill(tr, a, pend);
        }
        // server order: move only what is out of place
        const want = prev ? prev.nextSibling : this.tbody.firstChild;
        if (want !== tr) this.tbody.insertBefore(tr, want);
        prev = tr;
      }
      for (const [id, tr] of this.rows) {
        if (!keep.has(id)) { tr.remove(); this.rows.delete(id); }
      }
      this.initialised = true;
    }

    fill(tr, a, pend) {
      tr.dataset.priority = a.priority;
      tr.dataset.state = a.state;
      tr.dataset.patient = a.patient;
      tr.dataset.rule = a.rule;
      tr.classList.toggle("is-muted", !!a.muted);
      tr.classList.toggle("is-pending", !!pend);
      const tags = [];
      const nowNs = VS.clock.serverNowNs();
      if (a.snoozed_until_ns && Number(a.snoozed_until_ns) > nowNs) {
        tags.push(h("span", { class: "tag tag-snoozed" }, `snoozed until ${VS.fmtTime(a.snoozed_until_ns)}`));
      }
      if (a.present === false) tags.push(h("span", { class: "tag tag-cleared", title: "the condition no longer holds" }, "condition cleared"));
      if (a.muted) tags.push(h("span", { class: "tag tag-muted", title: "the rule is switched off for this patient" }, "muted"));
      if (Array.isArray(a.members) && a.members.length > 1) tags.push(h("span", { class: "tag" }, `${a.members.length} grouped`));

      const acts = h("td", { class: "a-actions" });
      const btn = (kind, cls, label, disabled, title) => {
        if (!VS.can(ACTIONS[kind].perm)) return null;
        return h("button", { type: "button", class: `btn btn-sm ${cls}`, "data-testid": `${kind}-button`,
                             disabled: disabled || null, title: title || null,
                             onclick: (ev) => { ev.stopPropagation(); actions.open(kind, a); } }, label);
      };
      const acked = a.state !== "active";
      acts.append(...[
        btn("ack", "btn-ack", "Ack", acked, acked ? "already acknowledged" : null),
        btn("snooze", "", "Snooze"),
        btn("resolve", "", "Resolve"),
        btn("assign", "btn-ghost", "Assign"),
        h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-testid": "history-button",
                      title: "notices and audit of this alarm", onclick: () => VS.showHistory(a) }, "History"),
      ].filter(Boolean));

      const cells = [
        h("td", { class: "c-prio" }, h("span", { class: "prio-bar" })),
        h("td", {}, h("span", { class: `badge badge-${a.priority}`, "data-testid": "alert-priority" },
                      a.priority === "medium" ? "med" : a.priority)),
      ];
      if (this.opts.showPatient !== false) {
        cells.push(h("td", {}, VS.patientLink(a.patient, "a-patient"), a.cohort ? h("span", { class: "a-cohort" }, a.cohort) : null));
      }
      cells.push(
        h("td", {}, h("span", { class: "a-rule", "data-testid": "alert-rule" }, a.rule),
          a.signal ? h("span", { class: "a-signal" }, VS.signalName(a.signal)) : null),
        h("td", {}, h("span", { class: "a-value", "data-testid": "alert-value" }, VS.fmtValue(a.value, a.unit)),
          a.threshold !== null && a.threshold !== undefined
            ? h("span", { class: "a-threshold" }, `limit ${VS.fmtValue(a.threshold, a.unit)}`) : null),
        h("td", { class: "a-expl" }, a.explanation || "", tags.length ? h("div", {}, tags) : null),
        h("td", {}, VS.ageEl("span", VS.clock.localMs(a.raised_ns), { class: "a-age", "data-testid": "alert-age" }),
          h("span", { class: "a-time" }, VS.fmtTime(a.raised_ns))),
        // state and who is being asked share a cell: the row must fit a ward PC's screen
        h("td", { class: "a-state" }, h("span", { class: `badge badge-state-${a.state === "active" ? "active" : "acknowledged"}`,
                                                  "data-testid": "alert-state" }, a.state),
          h("div", { class: "a-escalation", "data-testid": "alert-escalation" }, escalation(a))),
        h("td", { "data-testid": "alert-assignee" }, a.assignee ? a.assignee : h("span", { class: "faint" }, DASH)),
        acts);
      tr.replaceChildren(...cells);
    }

    static header(showPatient) {
      const cols = ["", "Priority", showPatient === false ? null : "Patient", "Rule", "Value", "Explanation",
                    "Since onset", "State · escalation", "Assignee", ""];
      return h("thead", {}, h("tr", {}, cols.filter((c) => c !== null).map((c) => h("th", {}, c))));
    }
  }
  VS.AlertTable = AlertTable;

  // ---------------------------------------------------------------- vitals

  /** latest vitals as big values; stale ones dimmed with their age */
  VS.vitalsGrid = function (vitals, opts = {}) {
    const staleAfter = opts.staleAfterS || 600;
    const grid = h("div", { class: "vitals", "data-testid": "vitals" });
    const seen = new Set();
    const cell = (key, label, valueText, unit, ageS, cls, timeNs) => {
      const el = h("div", { class: `vital ${cls || ""}`, "data-testid": `vital-${key}`, "data-signal": key },
        h("div", { class: "v-label" }, label),
        h("div", { class: "v-value" }, valueText, unit && valueText !== DASH ? h("span", { class: "v-unit" }, unit) : null));
      if (ageS === null || ageS === undefined) {
        el.classList.add("is-missing");
      } else {
        el.dataset.staleAfterS = String(staleAfter);
        const age = VS.ageEl("span", Date.now() - Number(ageS) * 1000, { class: "v-age" });
        age.dataset.ageSuffix = " ago";
        age.textContent += " ago";
        el.append(age);
        if (Number(ageS) > staleAfter) el.classList.add("is-stale");
        if (timeNs) el.title = `measured ${VS.fmtTime(timeNs)}`;
      }
      return el;
    };
    const wanted = opts.signals || ["heart_rate", "spo2", "resp_rate", "temperature", "bp", "glucose", "battery"];
    for (const key of wanted) {
      if (key === "bp") {
        const s = vitals.bp_systolic, d = vitals.bp_diastolic;
        seen.add("bp_systolic"); seen.add("bp_diastolic");
        if (!s && !d) { if (!opts.skipMissing) grid.append(cell("bp", "BP", DASH, "", null, "v-bp")); continue; }
        const text = `${s ? VS.fmtNum(s.value) : DASH}/${d ? VS.fmtNum(d.value) : DASH}`;
        const age = Math.max(s ? s.age_s : 0, d ? d.age_s : 0);
        grid.append(cell("bp", "BP", text, (s || d).unit, age, "v-bp", (s || d).time_ns));
        continue;
      }
      seen.add(key);
      const v = vitals[key];
      if (!v && key === "temperature" && vitals.body_temp) seen.add("body_temp");
      const vv = v || (key === "temperature" ? vitals.body_temp : null);
      if (!vv) { if (!opts.skipMissing) grid.append(cell(key, VS.signalLabel(key), DASH, "", null, (VS.SIGNALS[key] || {}).cls)); continue; }
      grid.append(cell(key, VS.signalLabel(key), VS.fmtNum(vv.value), vv.unit, vv.age_s, (VS.SIGNALS[key] || {}).cls, vv.time_ns));
    }
    if (opts.others) {
      for (const key of Object.keys(vitals).sort(VS.bySignalOrder)) {
        if (seen.has(key)) continue;
        const v = vitals[key];
        grid.append(cell(key, VS.signalLabel(key), VS.fmtNum(v.value), v.unit, v.age_s, (VS.SIGNALS[key] || {}).cls, v.time_ns));
      }
    }
    return grid;
  };

  VS.news2Badge = function (n) {
    if (!n) {
      return h("span", { class: "news2", "data-testid": "news2", "data-band": "none", title: "no NEWS2 yet" },
               h("span", { class: "n2-label" }, "NEWS2"), h("span", { class: "n2-score" }, DASH));
    }
    return h("span", { class: "news2", "data-testid": "news2", "data-band": n.band, "data-score": String(n.score),
                       title: `NEWS2 ${n.score} (${n.band}) at ${VS.fmtTime(n.time_ns)}` },
             h("span", { class: "n2-label" }, "NEWS2"), h("span", { class: "n2-score" }, String(n.score)),
             h("span", { class: "n2-band" }, n.band));
  };

  VS.alertCounts = function (c) {
    c = c || {};
    return h("span", { class: "counts", "data-testid": "alert-counts", title: "open alarms: high / medium / low" },
      ["high", "medium", "low"].map((p) => {
        const n = Number(c[p]) || 0;
        return h("span", { class: "count" + (n > 0 ? " nz" : ""), "data-priority": p, "data-count": String(n) },
                 String(n));
      }));
  };

  // ---------------------------------------------------------------- page scaffold

  /** Common start of a signed-in page: top bar, /api/me, the banner, the live feed.
   *  opts.onEvent(kind, data), opts.onAlerts(list) (each fresh /api/alerts), opts.onConnect(),
   *  opts.onError(err) (the alarm list could not be loaded) */
  VS.page = async function (name, opts = {}) {
    const bar = topBar(name);
    const me = await VS.me();
    bar.setUser(me);
    const bannerEl = document.querySelector('[data-testid="critical-banner"]');
    const banner = bannerEl ? new CriticalBanner(bannerEl) : null;
    const baseTitle = document.title;
    let alerts = [];
    const refreshAlerts = VS.coalesced(async () => {
      let got;
      try {
        got = await api("/api/alerts");
      } catch (e) {
        if (opts.onError && e.status !== 401) opts.onError(e);
        if (bannerEl && e.status !== 401) {  // never a calm "no alarms" when we do not know
          bannerEl.classList.remove("is-clear");
          bannerEl.replaceChildren(h("div", { class: "banner-title" }, "Alarms unavailable"),
                                   h("div", {}, `Could not load the alarm list: ${e.message}`));
        }
        throw e;
      }
      VS.clock.sync(got.server_ns);
      alerts = got.alerts || [];
      // an action counts as pending until the list shows it applied (or 10 s passed)
      for (const [id, p] of actions.pending) {
        const a = alerts.find((x) => x.alert_id === id);
        if (!a || Date.now() - p.at > 10000 || (p.kind === "ack" && a.state !== "active")
            || (p.kind === "snooze" && a.snoozed_until_ns) || (p.kind === "assign" && a.assignee)) {
          actions.pending.delete(id);
        }
      }
      const n = banner ? banner.update(alerts) : CriticalBanner.critical(alerts).length;
      document.title = (n ? `(${n}) ` : "") + baseTitle;
      if (opts.onAlerts) opts.onAlerts(alerts);
    });
    actions.onSubmitted(() => refreshAlerts());
    setInterval(tick, 1000);
    live({
      onEvent(kind, data) {
        if (kind === "notice" && CUE_REASONS.has(data.reason)) sound.play(data.priority);
        refreshAlerts();
        if (opts.onEvent) opts.onEvent(kind, data);
      },
      onConnect() {
        refreshAlerts();
        if (opts.onConnect) opts.onConnect();
      },
    });
    await refreshAlerts();
    return { me, refreshAlerts, alerts: () => alerts };
  };

  /** the cohort <select> (option "all" = "") filled from /api/cohorts */
  VS.cohortSelect = async function (select, current) {
    const got = await api("/api/cohorts");
    const names = (got.cohorts || []).map((c) => c.name).sort();
    select.replaceChildren(h("option", { value: "" }, "all"), ...names.map((n) => h("option", { value: n }, n)));
    select.value = names.includes(current) ? current : "";
    return names;
  };

  /** a query parameter of this page's URL, and setting it without a reload */
  VS.param = (k) => new URLSearchParams(location.search).get(k);
  VS.setParam = (k, v) => {
    const u = new URL(location.href);
    if (v) u.searchParams.set(k, v); else u.searchParams.delete(k);
    history.replaceState(null, "", u.pathname + u.search);
  };
})();
