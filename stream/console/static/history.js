// Audit history: who acknowledged, snoozed, resolved or assigned what, when and why (newest
// first, as the API gives it); filter by patient; new entries arrive with the live feed.
"use strict";

(async function () {
  const { h } = VS;
  const tbody = document.getElementById("audit-rows");
  const empty = document.getElementById("audit-empty");
  const count = document.getElementById("audit-count");
  const patientIn = document.getElementById("patient-filter");
  const limitSel = document.getElementById("limit-select");
  const showError = VS.errorStrip();
  let known = null;  // entries shown before (null: first render)


  const keyOf = (e) => `${e.event_ns}|${e.alert_id}|${e.action}|${e.who}`;

  function row(e) {
    const tr = h("tr", { class: "audit-row", "data-testid": "audit-row", "data-alert-id": e.alert_id,
                         "data-action": e.action, "data-patient": e.patient },
      h("td", { class: "nowrap" }, VS.fmtDateTime(e.event_ns)),
      h("td", { class: "a-rule" }, e.who),
      h("td", {}, h("span", { class: `action-word action-${e.action}` }, e.action)),
      h("td", {}, e.patient ? VS.patientLink(e.patient, "a-patient") : ""),
      h("td", { class: "mono small" }, e.alert_id),
      h("td", {}, e.reason),
      h("td", {}, e.detail));
    if (known !== null && !known.has(keyOf(e))) tr.classList.add("is-new");
    return tr;
  }

  const refresh = VS.coalesced(async () => {
    const q = new URLSearchParams({ limit: limitSel.value || "200" });
    const p = patientIn.value.trim();
    if (p) q.set("patient", p);
    let got;
    try {
      got = await VS.api(`/api/audit?${q}`);
    } catch (e) {
      if (e.status !== 401) showError(`Could not load the audit: ${e.message}`);
      throw e;
    }
    showError("");
    const entries = got.entries || [];
    tbody.replaceChildren(...entries.map(row));
    known = new Set(entries.map(keyOf));
    count.textContent = String(entries.length);
    empty.classList.toggle("hidden", entries.length > 0);
    empty.textContent = p ? `No audit entries for ${p}.` : "No audit entries.";
  });

  patientIn.value = VS.param("patient") || "";
  if (["100", "200", "500", "1000"].includes(VS.param("limit"))) limitSel.value = VS.param("limit");
  const changed = () => {
    VS.setParam("patient", patientIn.value.trim());
    VS.setParam("limit", limitSel.value === "200" ? "" : limitSel.value);
    known = null;
    refresh();
  };
  patientIn.addEventListener("input", VS.debounce(changed, 300));
  limitSel.addEventListener("change", changed);
  document.getElementById("filters").addEventListener("submit", (ev) => { ev.preventDefault(); changed(); });

  try {
    await VS.page("history", {
      onEvent(kind) { if (kind === "audit") refresh(); },
      onConnect() { refresh(); },
      onError(e) { showError(`Could not load the alarms: ${e.message}`); },
    });
  } catch (e) {
    if (e.status !== 401) showError(`Could not start: ${e.message}`);
    return;
  }
  refresh();
})();
