// Live alerts: every open alarm the user may see, in the server's order (priority, then
// the longest waiting); every active high-priority one also in the sticky banner.
// Updated on live events only (plus a local 1 s ticker for "since onset").
"use strict";

(async function () {
  const { h } = VS;
  const table = document.getElementById("alert-table");
  const tbody = document.getElementById("alert-rows");
  const empty = document.getElementById("alerts-empty");
  const count = document.getElementById("alert-count");
  const cohortSel = document.getElementById("cohort-filter");
  const showError = VS.errorStrip();
  table.prepend(VS.AlertTable.header(true));
  const rows = new VS.AlertTable(tbody, { showPatient: true });
  let latest = [];

  function render() {
    const cohort = cohortSel.value;
    // the filter narrows the list only: the banner keeps every critical alarm
    const shown = cohort ? latest.filter((a) => a.cohort === cohort) : latest;
    rows.update(shown);
    count.textContent = String(shown.length);
    count.dataset.count = String(shown.length);
    empty.classList.toggle("hidden", shown.length > 0);
    empty.textContent = cohort ? `No open alarms in ${cohort}.` : "No open alarms.";
  }

  try {
    await VS.page("alerts", {
      onAlerts(alerts) {
        latest = alerts;
        showError("");
        render();
      },
      onError(e) {
        showError(`Could not load the alarms: ${e.message}`);
      },
    });
  } catch (e) {
    if (e.status !== 401) {
      showError(`Could not load the alarms: ${e.message}`);
    }
    return;
  }

  try {
    await VS.cohortSelect(cohortSel, VS.param("cohort") || "");
  } catch (e) { /* the filter stays at "all" */ }
  cohortSel.addEventListener("change", () => {
    VS.setParam("cohort", cohortSel.value);
    render();
  });
  render();
})();
