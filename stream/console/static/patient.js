// Patient view: header (latest vitals, NEWS2), the patient's open alarms with their actions,
// and uPlot trends per signal: raw readings as points, the window mean with its min-max band,
// the patient's own expected band (anomaly baseline) shaded, the anomaly score below, alarm
// events as vertical markers coloured by priority; NEWS2 history. Drag to zoom (all charts
// follow), "Reset zoom" to go back. Each chart container carries data-points (raw readings drawn).
"use strict";

(async function () {
  const { h } = VS;
  const NS = 1e9;
  const raw = location.pathname.replace(/^\/patients\//, "").replace(/\/+$/, "");
  let id;
  try { id = decodeURIComponent(raw); } catch (e) { id = raw; }
  const enc = encodeURIComponent(id);

  const $ = (x) => document.getElementById(x);
  const showError = VS.errorStrip($("load-error"));
  const chartsEl = $("charts");
  const note = $("series-note");
  const rangeSel = $("range-select");
  const resetBtn = $("reset-zoom");
  const tbody = $("alert-rows");
  const alertsEmpty = $("alerts-empty");
  const alertCount = $("alert-count");
  const annRows = $("annotation-rows");
  const annEmpty = $("annotations-empty");
  document.title = `${id} \u00b7 Patient`;
  $("ph-id").textContent = id;

  tbody.closest("table").prepend(VS.AlertTable.header(false));
  const rows = new VS.AlertTable(tbody, { showPatient: false });

  const COLORS = {
    reading: "#f4f7fb", mean: "#4fc3f7", mmLine: "rgba(79,195,247,0.45)", mmFill: "rgba(79,195,247,0.20)",
    expLine: "rgba(47,209,122,0.75)", expFill: "rgba(47,209,122,0.16)", score: "#d59bff", news2: "#eef3f8",
    axis: "#93a1b1", grid: "#1c2633", tick: "#263241",
    high: "#ff3b3b", medium: "#ffc400", low: "#29c5f6",
  };

  function showNote(text) {
    note.textContent = text || "";
    note.classList.toggle("hidden", !text);
  }

  // ------------------------------------------------------------ header

  let notFound = false;
  const refreshPatient = VS.coalesced(async () => {
    let p;
    try {
      p = await VS.api(`/api/patients/${enc}`);
    } catch (e) {
      if (e.status === 404) {
        notFound = true;
        showError(`Patient ${id}: not found or not in your cohorts.`);
        document.querySelectorAll("main > :not(#load-error)").forEach((el) => el.classList.add("hidden"));
        return;
      }
      if (e.status !== 401) showError(`Could not load the patient: ${e.message}`);
      throw e;
    }
    showError("");
    $("ph-meta").replaceChildren(p.cohort ? `cohort ${p.cohort}` : "no cohort",
      p.stale ? h("span", { class: "tile-stale" }, " \u00b7 no recent data") : null);
    $("ph-news2").replaceChildren(VS.news2Badge(p.news2), " ", VS.alertCounts(p.alerts),
      p.news2 ? h("span", { class: "small dim" }, ` NEWS2 at ${VS.fmtTime(p.news2.time_ns)}`) : null);
    const grid = VS.vitalsGrid(p.vitals || {}, { others: true, skipMissing: true,
      signals: ["heart_rate", "spo2", "resp_rate", "temperature", "bp", "glucose", "steps", "battery"] });
    grid.id = "ph-vitals";
    if (!grid.childElementCount) grid.append(h("div", { class: "dim" }, "No recent readings."));
    $("ph-vitals").replaceWith(grid);
  });

  // ------------------------------------------------------------ charts

  let charts = [];         // uPlot instances, x-synchronised
  let full = null;         // {min, max} in s: the selected range
  let zoomed = false;
  let syncing = false;
  let staleSeries = false; // an event came while zoomed: reload on reset

  function destroyCharts() {
    for (const u of charts) u.destroy();
    charts = [];
    chartsEl.replaceChildren();
  }

  /** one x (seconds) for several [[t_ns, v], ...] lists, each mapped onto it (null where absent) */
  function align(lists, extra) {
    const xs = new Set(extra || []);
    for (const l of lists) for (const p of l || []) xs.add(Number(p[0]) / NS);
    const x = Array.from(xs).filter(Number.isFinite).sort((a, b) => a - b);
    const at = new Map(x.map((t, i) => [t, i]));
    const ys = lists.map((l) => {
      const y = new Array(x.length).fill(null);
      for (const p of l || []) {
        const i = at.get(Number(p[0]) / NS);
        if (i !== undefined && p[1] !== null && Number.isFinite(Number(p[1]))) y[i] = Number(p[1]);
      }
      return y;
    });
    return [x, ...ys];
  }

  function onScale(u, key) {
    if (key !== "x" || syncing || !full) return;
    const { min, max } = u.scales.x;
    if (min === null || max === null || min === undefined) return;
    syncing = true;
    try {
      for (const o of charts) if (o !== u) o.setScale("x", { min, max });
    } finally { syncing = false; }
    zoomed = Math.abs(min - full.min) > 1 || Math.abs(max - full.max) > 1;
    resetBtn.disabled = !zoomed;
  }

  function resetZoom() {
    if (!full) return;
    syncing = true;
    try { for (const u of charts) u.setScale("x", { min: full.min, max: full.max }); } finally { syncing = false; }
    zoomed = false;
    resetBtn.disabled = true;
    if (staleSeries) { staleSeries = false; loadSeries(); }
  }

  /** vertical markers for alarm events: priority colour, dashed when recovered / resolved */
  function marksPlugin(marks) {
    return {
      hooks: {
        draw: [(u) => {
          if (!marks.length) return;
          const ctx = u.ctx, { left, top, width, height } = u.bbox, px = uPlot.pxRatio || 1;
          ctx.save();
          for (const m of marks) {
            const x = Math.round(u.valToPos(m.t, "x", true));
            if (x < left - 1 || x > left + width + 1) continue;
            ctx.strokeStyle = COLORS[m.priority] || COLORS.low;
            ctx.fillStyle = ctx.strokeStyle;
            ctx.lineWidth = 2 * px;
            ctx.setLineDash(m.reason === "recovered" || m.reason === "resolved" ? [5 * px, 4 * px] : []);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.beginPath();  // a flag at the top
            ctx.moveTo(x, top);
            ctx.lineTo(x + 7 * px, top + 4 * px);
            ctx.lineTo(x, top + 8 * px);
            ctx.closePath();
            ctx.fill();
          }
          ctx.restore();
        }],
      },
    };
  }

  /** NEWS2 bands behind the line: 0-4 low, 5-6 medium, 7+ high */
  function news2BandsPlugin() {
    return {
      hooks: {
        drawAxes: [(u) => {
          const ctx = u.ctx, { left, top, width, height } = u.bbox;
          const y = (v) => u.valToPos(v, "y", true);
          const band = (lo, hi, color) => {
            const y1 = Math.max(top, Math.min(top + height, y(hi)));
            const y0 = Math.max(top, Math.min(top + height, y(lo)));
            ctx.fillStyle = color;
            ctx.fillRect(left, y1, width, y0 - y1);
          };
          ctx.save();
          band(0, 4.5, "rgba(47,209,122,0.07)");
          band(4.5, 6.5, "rgba(255,196,0,0.10)");
          band(6.5, 30, "rgba(255,59,59,0.11)");
          ctx.restore();
        }],
      },
    };
  }

  // uPlot's tick formats: [min tick step (s), format, ...]; times in 24 h, the date where it changes
  const TIME_VALUES = [
    [3600 * 24, "{D} {MMM}", null, null, null, null, null, null, 1],
    [60, "{HH}:{mm}", "\n{D} {MMM}", null, "\n{D} {MMM}", null, null, null, 1],
    [1, "{HH}:{mm}:{ss}", "\n{D} {MMM}", null, "\n{D} {MMM}", null, null, null, 1],
  ];
  const axes = (yLabel, ySize) => [
    // 24-hour local times, spaced so that labels never run into each other
    { stroke: COLORS.axis, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.tick, width: 1 },
      space: 70, values: TIME_VALUES },
    { stroke: COLORS.axis, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.tick, width: 1 },
      size: ySize || 56, label: yLabel || undefined, labelSize: yLabel ? 18 : undefined,
      values: (u, vals) => vals.map((v) => VS.fmtNum(v)) },
  ];
  const fmtLegend = (u, v) => (v === null || v === undefined ? "\u2014" : VS.fmtNum(v));
  const noPoints = { show: false };

  function baseOpts(width, height, plugins) {
    return {
      width, height, plugins,
      scales: { x: { time: true } },
      cursor: { sync: { key: "vs-patient" }, drag: { x: true, y: false, setScale: true }, focus: { prox: 16 } },
      legend: { live: true },
      hooks: { setScale: [onScale] },
    };
  }

  function card(testid, title, unit, right) {
    const chart = h("div", { class: "chart", "data-testid": testid });
    const el = h("section", { class: "chart-card" },
      h("div", { class: "cc-head" }, h("span", { class: "cc-title" }, title),
        unit ? h("span", { class: "cc-unit" }, unit) : null, right || null),
      chart);
    return { el, chart };
  }

  function chartWidth() { return Math.max(300, chartsEl.clientWidth - 22); }

  function signalChart(sig, s, marks, extra) {
    const readings = s.readings || [];
    const win = s.window || {}, an = s.anomaly || {};
    const last = readings.length ? readings[readings.length - 1] : null;
    const right = h("span", { class: "cc-latest" },
      last ? VS.fmtValue(Number(last[1]), s.unit) : "",
      last ? h("span", { class: "cc-note" }, ` at ${VS.fmtTime(last[0])}`) : null);
    const c = card(`chart-${sig}`, VS.signalName(sig), s.unit, right);
    c.chart.dataset.points = String(readings.length);
    c.chart.dataset.signal = sig;
    c.el.querySelector(".cc-head").append(h("span", { class: "cc-note" },
      `${readings.length} readings \u00b7 ${win.measurement || "window"}`));
    chartsEl.append(c.el);
    const data = align([an.expected_high, an.expected_low, win.max, win.min, win.mean, readings], extra);
    const opts = baseOpts(chartWidth(), 220, [marksPlugin(marks)]);
    opts.axes = axes(s.unit);
    opts.series = [
      {},
      { label: "expected high", stroke: COLORS.expLine, width: 1, dash: [4, 4], spanGaps: true, points: noPoints, value: fmtLegend },
      { label: "expected low", stroke: COLORS.expLine, width: 1, dash: [4, 4], spanGaps: true, points: noPoints, value: fmtLegend },
      { label: "max", stroke: COLORS.mmLine, width: 1, spanGaps: true, points: noPoints, value: fmtLegend },
      { label: "min", stroke: COLORS.mmLine, width: 1, spanGaps: true, points: noPoints, value: fmtLegend },
      { label: "mean", stroke: COLORS.mean, width: 2, spanGaps: true, points: noPoints, value: fmtLegend },
      { label: "reading", stroke: COLORS.reading, fill: undefined, width: 1, paths: () => null, value: fmtLegend,
        points: { show: true, size: 5, width: 1, stroke: COLORS.reading, fill: COLORS.reading } },
    ];
    opts.bands = [{ series: [1, 2], fill: COLORS.expFill }, { series: [3, 4], fill: COLORS.mmFill }];
    charts.push(new uPlot(opts, data, c.chart));

    const score = an.score || [];
    if (score.length) {
      const sub = h("div", { class: "chart chart-sub", "data-testid": `chart-${sig}-anomaly`,
                             "data-points": String(score.length) });
      c.el.append(sub);
      const o = baseOpts(chartWidth(), 110, [marksPlugin(marks)]);
      o.axes = axes("score", 56);
      o.series = [{}, { label: "anomaly score", stroke: COLORS.score, width: 1.5, spanGaps: true,
                        points: { show: false }, value: fmtLegend, fill: "rgba(213,155,255,0.10)" }];
      charts.push(new uPlot(o, align([score], extra), sub));
    }
  }

  function news2Chart(news2, marks, extra) {
    const pts = (news2 || []).map((r) => [r[0], r[1]]);
    const last = news2 && news2.length ? news2[news2.length - 1] : null;
    const c = card("chart-news2", "NEWS2", "score", h("span", { class: "cc-latest" },
      last ? String(last[1]) : "", last ? h("span", { class: "cc-note" }, ` at ${VS.fmtTime(last[0])}`) : null));
    c.chart.dataset.points = String(pts.length);
    chartsEl.prepend(c.el);
    if (!pts.length) {
      c.chart.append(h("div", { class: "empty" }, "No NEWS2 scores in this range."));
      return;
    }
    const o = baseOpts(chartWidth(), 150, [news2BandsPlugin(), marksPlugin(marks)]);
    o.axes = axes("NEWS2", 56);
    o.scales.y = { range: (u, min, max) => [0, Math.max(10, (max || 0) + 1)] };
    o.series = [{}, { label: "NEWS2", stroke: COLORS.news2, width: 2, spanGaps: true, value: fmtLegend,
                      paths: uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
                      points: { show: true, size: 5, stroke: COLORS.news2, fill: "#0a0e13" } }];
    charts.push(new uPlot(o, align([pts], extra), c.chart));
  }

  function annotationTable(anns) {
    const sorted = anns.slice().sort((a, b) => Number(b.event_ns) - Number(a.event_ns));
    annRows.replaceChildren(...sorted.map((a) => h("tr", { "data-testid": "annotation-row", "data-priority": a.priority },
      h("td", { class: "nowrap" }, VS.fmtTime(a.event_ns)),
      h("td", {}, h("span", { class: `badge badge-${a.priority}` }, a.priority)),
      h("td", { class: "a-rule" }, a.rule),
      h("td", {}, a.reason),
      h("td", {}, a.signal ? VS.signalName(a.signal) : ""))));
    annEmpty.classList.toggle("hidden", sorted.length > 0);
  }

  let seriesSeq = 0;
  const loadSeries = VS.coalesced(async () => {
    if (notFound) return;
    const seq = ++seriesSeq;
    const range = Number(rangeSel.value) || 21600;
    let got;
    try {
      got = await VS.api(`/api/patients/${enc}/series?range_s=${range}`);
    } catch (e) {
      if (e.status === 401) throw e;
      destroyCharts();
      showNote(e.status === 503 ? `Trends unavailable: the series store is not answering (${e.message}).`
                                : e.status === 404 ? "Patient not found or not in your cohorts."
                                  : `Could not load the trends: ${e.message}`);
      return;
    }
    if (seq !== seriesSeq) return;
    if (typeof window.uPlot !== "function") {
      showNote("The charting library did not load.");
      return;
    }
    destroyCharts();
    full = { min: Number(got.start_ns) / NS, max: Number(got.end_ns) / NS };
    const extra = [full.min, full.max];  // the x axis spans the whole range, data or not
    const anns = got.annotations || [];
    const marksFor = (sig) => anns.filter((a) => !sig || !a.signal || a.signal === sig)
      .map((a) => ({ t: Number(a.event_ns) / NS, priority: a.priority, reason: a.reason, rule: a.rule }));
    const signals = Object.keys(got.signals || {}).sort(VS.bySignalOrder);
    showNote(signals.length ? "" : "No readings in this range.");
    for (const sig of signals) signalChart(sig, got.signals[sig], marksFor(sig), extra);
    news2Chart(got.news2 || [], marksFor(null), extra);
    annotationTable(anns);
    zoomed = false;
    staleSeries = false;
    resetBtn.disabled = true;
  });

  new ResizeObserver(VS.debounce(() => {
    const w = chartWidth();
    for (const u of charts) if (Math.abs(u.width - w) > 2) u.setSize({ width: w, height: u.height });
  }, 100)).observe(chartsEl);

  rangeSel.addEventListener("change", () => loadSeries());
  resetBtn.addEventListener("click", resetZoom);

  // ------------------------------------------------------------ start

  const refreshSeriesSoon = VS.debounce(() => {
    if (zoomed) staleSeries = true; else loadSeries();
  }, 1500);

  try {
    await VS.page("patient", {
      onAlerts(alerts) {
        const mine = alerts.filter((a) => a.patient === id);
        rows.update(mine);
        alertCount.textContent = String(mine.length);
        alertsEmpty.classList.toggle("hidden", mine.length > 0);
      },
      onEvent(kind, data) {
        if (data.patient !== id) return;
        refreshPatient();
        if (kind === "audit") VS.profile.refresh();  // a tag set or cleared (here or elsewhere)
        if (kind === "notice") refreshSeriesSoon();
      },
      onConnect() { refreshPatient(); VS.profile.refresh(); },
      onError(e) { showError(`Could not load the alarms: ${e.message}`); },
    });
  } catch (e) {
    if (e.status !== 401) showError(`Could not start: ${e.message}`);
    return;
  }
  await refreshPatient();
  if (!notFound) VS.profile.refresh();
  loadSeries();
})();
