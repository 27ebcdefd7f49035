// Patient view, care profile: the tags in effect (derived from the data or set by hand) with
// their rule, guideline, confidence and evidence; the nudges sent and suppressed (newest
// first) with the suppressions counted by strategy and reason; and, for roles that may,
// the form that sets a manual tag (and a Clear button on each manual one).
// patient.js calls VS.profile.refresh() when the page starts and on live events of the patient.
// Everything from the server reaches the DOM as text (VS.h).
"use strict";

(function () {
  const { h } = VS;
  const TAGS = ["hypertension", "tachycardia-episodes", "nocturnal-desaturation", "poor-glycaemic-control",
                "low-activity", "non-adherent-measurement"];
  const raw = location.pathname.replace(/^\/patients\//, "").replace(/\/+$/, "");
  let id;
  try { id = decodeURIComponent(raw); } catch (e) { id = raw; }
  const enc = encodeURIComponent(id);
  const $ = (x) => document.getElementById(x);

  const pct = (c) => `${Math.round(Number(c) * 100)} %`;

  function evidenceItem(e) {
    const value = e.value === null || e.value === undefined ? "" : VS.fmtNum(e.value);
    return h("li", { "data-testid": "evidence-item", "data-event-ns": String(e.event_ns) },
      e.event_ns ? h("span", { class: "nowrap" }, VS.fmtDateTime(e.event_ns)) : null,
      e.event_ns ? " \u00b7 " : null,
      e.signal ? VS.signalName(e.signal) : "", " ",
      e.note ? e.note : value);
  }

  function tagCard(t, canTag) {
    const clear = canTag && t.source === "manual"
      ? h("button", { type: "button", class: "btn btn-sm", "data-testid": "tag-clear",
                      onclick: () => submit(t.tag, "clear", $("tag-reason").value.trim()) }, "Clear")
      : null;
    const ev = t.evidence || [];
    return h("article", { class: "profile-tag", "data-testid": "profile-tag", "data-tag": t.tag,
                          "data-source": t.source },
      h("div", { class: "pt-head" },
        h("span", { class: "pt-name", "data-testid": "tag-name" }, t.tag),
        h("span", { class: "tag " + (t.source === "manual" ? "tag-manual" : "tag-care"),
                    "data-testid": "tag-source" }, t.source === "manual" ? "set by hand" : "derived"),
        h("span", { class: "small dim", "data-testid": "tag-since" }, `since ${VS.fmtDateTime(t.since_ns)}`),
        h("span", { class: "small dim", "data-testid": "tag-confidence" }, `confidence ${pct(t.confidence)}`),
        t.id !== id ? h("span", { class: "small faint", title: "stored under this patient id" }, `via ${t.id}`) : null,
        h("span", { class: "spacer" }), clear),
      t.rule ? h("div", { class: "pt-rule", "data-testid": "tag-rule" }, t.rule) : null,
      t.guideline ? h("div", { class: "pt-guideline small dim", "data-testid": "tag-guideline" }, t.guideline) : null,
      ev.length ? h("details", { open: true },
        h("summary", { class: "small dim" }, `evidence (${ev.length})`),
        h("ul", { class: "evidence-list", "data-testid": "evidence-list" }, ev.map(evidenceItem))) : null);
  }

  function nudgeRow(n) {
    const detail = [n.detail, n.experiment ? `${n.experiment}${n.variant ? " / " + n.variant : ""}` : "",
                    n.status === "sent" && n.message ? n.message : ""].filter(Boolean).join(" \u00b7 ");
    return h("tr", { "data-testid": "nudge-row", "data-status": n.status, "data-strategy": n.strategy },
      h("td", { class: "nowrap" }, VS.fmtDateTime(n.at_ns)),
      h("td", { class: "nudge-" + n.status }, n.status),
      h("td", { class: "a-rule" }, n.strategy),
      h("td", {}, n.channel),
      h("td", { "data-testid": "nudge-reason" }, n.reason),
      h("td", { class: "small dim" }, detail));
  }

  function render(p) {
    const canTag = VS.can("tag");
    $("tag-list").replaceChildren(...(p.tags || []).map((t) => tagCard(t, canTag)));
    $("tag-count").textContent = String((p.tags || []).length);
    $("tags-empty").classList.toggle("hidden", (p.tags || []).length > 0);
    const others = (p.ids || []).filter((x) => x !== id);
    $("person-note").textContent = p.person !== id || others.length
      ? `person ${p.person}${others.length ? " \u00b7 ids " + p.ids.join(", ") : ""}` : "";
    const nudges = p.nudges || [];
    $("nudge-rows").replaceChildren(...nudges.map(nudgeRow));
    $("nudge-count").textContent = String(nudges.length);
    $("nudges-empty").classList.toggle("hidden", nudges.length > 0);
    $("suppressed-summary").replaceChildren(...(p.suppressed || []).map((s) =>
      h("span", { class: "tag", "data-testid": "suppressed-count", "data-strategy": s.strategy,
                  "data-reason": s.reason }, `${s.strategy} \u00b7 ${s.reason}: ${s.count}`)));
    const form = $("tag-form");
    form.classList.toggle("hidden", !canTag);
    if (canTag) {
      const have = new Set((p.tags || []).filter((t) => t.source === "manual").map((t) => t.tag));
      const sel = $("tag-select");
      const keep = sel.value;
      sel.replaceChildren(...TAGS.filter((t) => !have.has(t)).map((t) => h("option", { value: t }, t)));
      if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
      sel.disabled = sel.options.length === 0;
    }
  }

  function note(text) {
    $("profile-note").textContent = text || "";
    $("profile-note").classList.toggle("hidden", !text);
  }

  const refresh = VS.coalesced(async () => {
    let p;
    try {
      p = await VS.api(`/api/patients/${enc}/profile`);
    } catch (e) {
      if (e.status === 401 || e.status === 404) return;  // the page says so already
      note(e.status === 503 ? "Care profiles are not available in this console."
                            : `Could not load the care profile: ${e.message}`);
      return;
    }
    note("");
    render(p);
  });

  async function submit(tag, action, reason) {
    const err = $("tag-error");
    err.textContent = "";
    try {
      await VS.api(`/api/patients/${enc}/tags`, { method: "POST", body: { tag, action, reason } });
    } catch (e) {
      if (e.status !== 401) err.textContent = e.message;
      return;
    }
    $("tag-reason").value = "";
    VS.toast(action === "set" ? `${tag} set` : `${tag} cleared`);
    await refresh();
  }

  // a deferred script: the page is parsed when this runs
  $("tag-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const tag = $("tag-select").value;
    if (tag) submit(tag, "set", $("tag-reason").value.trim());
  });

  VS.profile = { refresh };
})();
