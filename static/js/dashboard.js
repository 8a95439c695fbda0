// The facilitator dashboard: on each `results` event of the stream, fetch the results (with
// their texts), the positions and the participation series, each with its ETag, and redraw
// without a reload. The page was rendered with the same figures; this keeps them live.
import { apiUrl, listen, request } from "./api.js";
import { createChart } from "./chart.js";
import {
  format, renderGroupsTable, renderLists, renderSeriesTable, view,
} from "./dashboard-render.js";
import { watchFreshness } from "./freshness.js";
import { createMap, decodePositions } from "./map.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const texts = config.texts;
const id = config.conversation;
const etags = { results: null, positions: null, participation: null };
let results = null, positions = null, series = null, busy = false, again = false;

const map = createMap(
  document.getElementById("map"),
  document.getElementById("map-canvas"),
  document.getElementById("map-overlay"),
  {
    shapes: config.shapes,
    youText: texts.you,
    onZoom: (zoom) => {
      document.getElementById("zoom-level").textContent = format(texts.zoom, { z: zoom.toFixed(1) });
    },
  },
);
document.getElementById("map-tools").hidden = false;
document.getElementById("chart").hidden = false;
document.getElementById("zoom-in").addEventListener("click", map.zoomIn);
document.getElementById("zoom-out").addEventListener("click", map.zoomOut);
document.getElementById("zoom-reset").addEventListener("click", map.reset);
const chart = createChart(document.getElementById("chart"), texts);
const freshness = watchFreshness({
  label: document.getElementById("freshness"),
  warning: document.getElementById("worker-warning"),
  texts,
  computedMs: config.computed_ms,
});

// The positions body (binary), or null when unchanged (304) or missing.
async function fetchPositions() {
  const headers = etags.positions ? { "If-None-Match": etags.positions } : {};
  try {
    const response = await fetch(apiUrl(`/conversations/${id}/positions`), { credentials: "same-origin", headers });
    if (response.status !== 200) return null;
    etags.positions = response.headers.get("ETag");
    return decodePositions(await response.arrayBuffer());
  } catch {
    return null;
  }
}

async function fetchJson(name, path, params) {
  const answer = await request("GET", path, { params, etag: etags[name] });
  if (answer.status !== 200) return null;
  etags[name] = answer.etag;
  return answer.data;
}

function showCounts(participation) {
  document.getElementById("n-participants").textContent = format(texts.participants, { n: participation.participants });
  document.getElementById("n-votes").textContent = format(texts.votes, { n: participation.votes });
}

async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const [doc, placed, points] = await Promise.all([
      fetchJson("results", `/conversations/${id}/results`, { include: "texts" }),
      fetchPositions(),
      fetchJson("participation", `/conversations/${id}/participation`),
    ]);
    results = doc || results;
    positions = placed || positions;
    series = points ? points.series : series;
    if (results) {
      showCounts(results.participation);
      freshness.set(results.computed_ms);
      const shown = view(results, texts, config.shapes);
      if (doc) renderLists(shown, texts);
      if (positions && (placed || doc)) {
        // Measured by benchmarks/dashboard.py: decoding aside, the whole draw of the map.
        const started = performance.now();
        const summary = map.update(positions, results.k, config.pid);
        performance.measure("map-draw", { start: started, end: performance.now() });
        renderGroupsTable(shown, summary, texts);
        document.getElementById("map").setAttribute("aria-label",
          `${format(texts.map, { n: summary.placed, k: results.k })}. ${document.getElementById("map-help").textContent}`);
      }
      if (doc) document.getElementById("live-status").textContent = format(texts.new_result, { n: results.participation.participants, m: results.participation.votes });
    }
    if (series && points) {
      chart.update(series);
      renderSeriesTable(series, texts);
    }
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

// The event tells the counts at once; the rest follows from the fetches.
listen(id, (summary) => {
  if (summary.participation) showCounts(summary.participation);
  if (summary.computed_ms) freshness.set(summary.computed_ms);
  refresh();
}, (state) => {
  if (state === "reconnecting") document.getElementById("live-status").textContent = texts.reconnecting;
});
refresh();
