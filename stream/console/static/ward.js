// Ward overview: one tile per patient of the user's cohorts with the latest vitals (dimmed
// with their age when stale), NEWS2 and open alarm counts; high-priority alarms first, then
// NEWS2 descending; each tile carries the patient's care tags (chips). Filters: the cohort and
// a care tag (both kept in the URL: ?cohort=ward-a&tag=hypertension). Refreshed on live events.
"use strict";

(async function () {
  const { h } = VS;
  const tiles = document.getElementById("tiles");
  const empty = document.getElementById("ward-empty");
  const count = document.getElementById("patient-count");
  const cohortSel = document.getElementById("cohort-filter");
  const tagSel = document.getElementById("tag-filter");
  const showError = VS.errorStrip();
  let known = null;  // patients shown before (null: first render)


  function worst(c) {
    return c.high > 0 ? "high" : c.medium > 0 ? "medium" : c.low > 0 ? "low" : "";
  }

  function order(a, b) {
    const ah = a.alerts.high || 0, bh = b.alerts.high || 0;
    if ((bh > 0) !== (ah > 0)) return bh > 0 ? 1 : -1;
    if (bh !== ah) return bh - ah;
    const an = a.news2 ? a.news2.score : -1, bn = b.news2 ? b.news2.score : -1;
    if (bn !== an) return bn - an;
    const am = a.alerts.medium || 0, bm = b.alerts.medium || 0;
    if (bm !== am) return bm - am;
    return a.patient < b.patient ? -1 : a.patient > b.patient ? 1 : 0;
  }

  function tile(p) {
    const c = Object.assign({ high: 0, medium: 0, low: 0 }, p.alerts || {});
    const w = worst(c);
    const el = h("article", {
      class: "tile" + (w ? ` worst-${w}` : "") + (p.stale ? " is-stale-patient" : ""),
      "data-testid": "patient-tile", "data-patient": p.patient, "data-cohort": p.cohort || "",
      "data-stale": String(!!p.stale), tabindex: "0", "aria-label": `patient ${p.patient}`,
    },
      h("div", { class: "tile-head" },
        h("a", { class: "tile-id", href: VS.patientHref(p.patient) }, p.patient),
        p.cohort ? h("span", { class: "tile-cohort" }, p.cohort) : null,
        p.stale ? h("span", { class: "tile-stale", title: "no reading for more than 10 min" }, "no recent data") : null,
        h("span", { class: "spacer" }),
        VS.news2Badge(p.news2),
        VS.alertCounts(c)),
      (p.tags || []).length ? h("div", { class: "tile-tags" }, p.tags.map((t) =>
        h("span", { class: "tag tag-care", "data-testid": "tile-tag", "data-tag": t }, t))) : null,
      VS.vitalsGrid(p.vitals || {}, { signals: ["heart_rate", "spo2", "resp_rate", "temperature", "bp", "glucose",
                                                "battery"], skipMissing: false }));
    const open = (ev) => {
      if (ev.target.closest("a, button")) return;
      location.assign(VS.patientHref(p.patient));
    };
    el.addEventListener("click", open);
    el.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(ev); });
    if (known !== null && !known.has(p.patient)) el.classList.add("is-new");
    return el;
  }

  const refresh = VS.coalesced(async () => {
    const cohort = cohortSel.value, tag = tagSel.value;
    const q = new URLSearchParams();
    if (cohort) q.set("cohort", cohort);
    if (tag) q.set("tag", tag);
    let got;
    try {
      got = await VS.api("/api/patients" + (q.toString() ? "?" + q : ""));
    } catch (e) {
      if (e.status !== 401) showError(`Could not load the ward: ${e.message}`);
      throw e;
    }
    showError("");
    const patients = (got.patients || []).slice().sort(order);
    tiles.replaceChildren(...patients.map(tile));
    known = new Set(patients.map((p) => p.patient));
    count.textContent = String(patients.length);
    empty.classList.toggle("hidden", patients.length > 0);
    empty.textContent = (tag ? `No patients tagged ${tag}` : "No patients") +
      (cohort ? ` in ${cohort}.` : " in your cohorts.");
  });

  try {
    await VS.page("ward", {
      onEvent() { refresh(); },
      onConnect() { refresh(); },
      onError(e) { showError(`Could not load the alarms: ${e.message}`); },
    });
  } catch (e) {
    if (e.status !== 401) showError(`Could not start: ${e.message}`);
    return;
  }
  try {
    await VS.cohortSelect(cohortSel, VS.param("cohort") || "");
  } catch (e) { /* the filter stays at "all" */ }
  try {
    const got = await VS.api("/api/tags");
    const names = (got.tags || []).map((t) => t.tag);
    tagSel.replaceChildren(h("option", { value: "" }, "any"),
      ...(got.tags || []).map((t) => h("option", { value: t.tag }, `${t.tag} (${t.patients.length})`)));
    const want = VS.param("tag") || "";
    tagSel.value = names.includes(want) ? want : "";
  } catch (e) { /* the filter stays at "any" */ }
  tagSel.addEventListener("change", () => {
    VS.setParam("tag", tagSel.value);
    known = null;
    refresh();
  });
  cohortSel.addEventListener("change", () => {
    VS.setParam("cohort", cohortSel.value);
    known = null;
    refresh();
  });
  // a screen brought back to the front catches up (vitals change without alarm events)
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
})();
