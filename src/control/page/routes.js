// The routes table: one row per route with its addresses and what its clients saw since the
// previous reading: open connections, attempts per second, the error share and a p99 sparkline,
// and a button that opens the form to add a fault to it.

import { el, svg, syncRows } from "./dom.js";

// Upper bounds of the latency buckets /v1/routes counts in, in ms (LATENCY_BUCKETS_MS); one
// more bucket holds everything above the last.
const BOUNDS_MS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
const HISTORY = 60;

// Per route: the previous counts and when they were read, and the recent p99s.
const seen = new Map();

// Attempts, errors and latency buckets of a route, from the part of its JSON its protocol fills.
export function countsOf(route) {
  const stats = route.stats || {};
  const failed = stats.failed || 0;
  if (route.http) {
    return { attempts: route.http.requests, errors: route.http.errors, latency: route.http.latency_counts || [] };
  }
  if (route.commands) {
    const c = route.commands;
    return { attempts: c.commands - (c.dropped || 0) + failed, errors: c.errors + (c.injected || 0) + failed, latency: c.latency_counts || [] };
  }
  if (route.dns) {
    const d = route.dns;
    return { attempts: d.queries, errors: (d.server_errors || 0) + (d.upstream_timeouts || 0) + (d.injected || 0) + (d.dropped || 0), latency: d.latency_counts || [] };
  }
  if (route.datagrams) {
    const up = route.datagrams.upstream;
    return { attempts: up.received, errors: up.dropped + route.datagrams.downstream.dropped, latency: [] };
  }
  return { attempts: (stats.ended || 0) + failed, errors: failed, latency: stats.round_trip_counts || [] };
}

// The 99th percentile of bucket counts: the upper bound of the bucket it falls in (the last
// bound, doubled, for the bucket above them all). null without samples.
export function p99(buckets) {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(total * 0.99);
  let running = 0;
  for (let i = 0; i < buckets.length; i++) {
    running += buckets[i];
    if (running >= rank) return i < BOUNDS_MS.length ? BOUNDS_MS[i] : BOUNDS_MS[BOUNDS_MS.length - 1] * 2;
  }
  return null;
}

function delta(now, before) {
  return now.map((n, i) => Math.max(0, n - (before[i] || 0)));
}

// What changed on `route` since the previous reading at time `at` (ms).
function reading(route, at) {
  const counts = countsOf(route);
  const previous = seen.get(route.name);
  const entry = previous || { history: [] };
  let rate = null;
  let errorShare = null;
  let p = null;
  if (previous && at > previous.at) {
    const attempts = Math.max(0, counts.attempts - previous.counts.attempts);
    const errors = Math.max(0, counts.errors - previous.counts.errors);
    rate = (attempts * 1000) / (at - previous.at);
    errorShare = attempts > 0 ? errors / attempts : null;
    p = p99(delta(counts.latency, previous.counts.latency));
    entry.history.push(p);
    if (entry.history.length > HISTORY) entry.history.shift();
  }
  entry.counts = counts;
  entry.at = at;
  seen.set(route.name, entry);
  return { rate, errorShare, p99: p, history: entry.history };
}

function sparkline(history) {
  const width = 120;
  const height = 24;
  const values = history.map((v) => (v === null ? 0 : v));
  const top = Math.max(1, ...values);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", "aria-hidden": "true" });
  if (values.length > 1) {
    const step = width / (HISTORY - 1);
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / top) * (height - 2)).toFixed(1)}`);
    chart.append(svg("polyline", { points: points.join(" ") }));
  }
  return chart;
}

function cells(row) {
  return {
    name: row.cells[0], protocol: row.cells[1], listen: row.cells[2], upstream: row.cells[3],
    open: row.cells[4], rate: row.cells[5], errors: row.cells[6], p99: row.cells[7],
  };
}

export function render(tbody, routes, at, onAdd) {
  const byName = new Map(routes.map((r) => [r.name, r]));
  // A route removed from the rules takes its history with it.
  for (const name of seen.keys()) if (!byName.has(name)) seen.delete(name);
  syncRows(
    tbody,
    routes.map((r) => r.name),
    (name) => {
      const add = el("button", { type: "button", class: "add", "aria-label": `Add a fault to ${name}` }, "Add a fault");
      add.addEventListener("click", () => onAdd(name));
      return el("tr", {}, el("th", { scope: "row" }), el("td"), el("td"), el("td"), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "p99" }), el("td", { class: "actions" }, add));
    },
    (row, name) => {
      const route = byName.get(name);
      const r = reading(route, at);
      const c = cells(row);
      c.name.textContent = route.name + (route.enabled === false ? " (disabled)" : "");
      c.protocol.textContent = route.protocol;
      c.listen.textContent = route.bound || route.listen;
      c.upstream.textContent = route.upstream;
      c.open.textContent = String(route.stats ? route.stats.open : "—");
      c.rate.textContent = r.rate === null ? "—" : r.rate.toFixed(1);
      c.errors.textContent = r.errorShare === null ? "—" : `${(r.errorShare * 100).toFixed(1)}%`;
      c.p99.replaceChildren(sparkline(r.history), el("span", {}, r.p99 === null ? "—" : `≤ ${r.p99} ms`));
    },
  );
}
