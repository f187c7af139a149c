// The drills panel: the drill files beside the rules, a start button for each, and the drill
// the server runs: its phase, probes and progress, a rollback button, then its report and
// chart. While a drill runs the page renews its lease, so closing the page rolls it back.

import { call, problem } from "./api.js";
import { el } from "./dom.js";

const LEASE = "15s";
const RENEW_MS = 5000;
const POLL_MS = 500;
const $ = (id) => document.getElementById(id);

let running = null;

function say(text, failed) {
  const line = $("drill-answer");
  line.textContent = text;
  line.classList.toggle("failed", failed);
}

export async function listFiles() {
  const answer = await call("GET", "/v1/drill-files");
  if (answer.status !== 200) return say(`drill files: ${problem(answer)}`, true);
  const list = $("drill-files");
  if (answer.body.length === 0) {
    list.replaceChildren(el("li", {}, "No drills in the rules directory's drills/."));
    return;
  }
  list.replaceChildren(
    ...answer.body.map((f) => {
      if (f.error) return el("li", { class: "failed" }, `${f.file}: ${f.error}`);
      const button = el("button", { type: "button", "data-file": f.file }, `Start ${f.name}`);
      button.addEventListener("click", () => start(f.file));
      return el("li", {}, button, " ", el("span", { class: "muted" }, `${f.file} — ${f.description}`));
    }),
  );
}

async function start(file) {
  const answer = await call("POST", "/v1/drills", { file, lease: LEASE });
  if (answer.status !== 201) return say(`${file}: ${problem(answer)} (${answer.status})`, true);
  say(`${answer.body.drill} started (${answer.body.id})`, false);
  follow(answer.body.id);
}

// Shows drill `id` until it finishes, renewing its lease meanwhile.
export function follow(id) {
  if (running && running.id === id) return;
  stopFollowing();
  running = { id, renew: setInterval(() => call("POST", `/v1/drills/${id}/lease`), RENEW_MS) };
  $("drill-run").hidden = false;
  $("drill-report").hidden = true;
  $("drill-rollback").hidden = false;
  poll(id);
}

function stopFollowing() {
  if (!running) return;
  clearInterval(running.renew);
  clearTimeout(running.poll);
  running = null;
}

async function poll(id) {
  const answer = await call("GET", `/v1/drills/${id}`);
  if (!running || running.id !== id) return;
  if (answer.status !== 200) {
    say(`drill ${id}: ${problem(answer)}`, true);
    return stopFollowing();
  }
  show(answer.body);
  if (answer.body.state === "finished") {
    stopFollowing();
    await showReport(id, answer.body);
    return;
  }
  running.poll = setTimeout(() => poll(id), POLL_MS);
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function show(status) {
  const p = status.progress;
  $("drill-name").textContent = status.drill;
  $("drill-phase").textContent = `${p.phase.replace("_", " ")} · ${seconds(p.elapsed_ms)} of ${seconds(p.total_ms)}`;
  const bar = $("drill-progress");
  bar.max = Math.max(1, p.total_ms);
  bar.value = Math.min(p.elapsed_ms, bar.max);
  $("drill-faults").textContent = p.faults_on.length ? `faults on: ${p.faults_on.join(", ")}` : "no fault on";
  $("drill-probes").replaceChildren(
    ...p.probes.map(([name, success]) => el("li", {}, `${name}: ${(success * 100).toFixed(0)}% over its last window`)),
  );
}

async function showReport(id, status) {
  $("drill-rollback").hidden = true;
  const report = status.report;
  if (!report) {
    say(`drill ${id} ended without a report: ${status.error || "no reason given"}`, true);
    return;
  }
  $("drill-verdict").textContent =
    `${report.outcome.replace("_", " ")}` + (report.verdict ? `, ${report.verdict.replaceAll("_", " ")}` : "") +
    (report.reason ? ` — ${report.reason}` : "");
  $("drill-table").tBodies[0].replaceChildren(
    ...report.probes.map((probe) => {
      const m = probe.measures || {};
      const ms = (v) => (v === null || v === undefined ? "—" : seconds(v));
      return el(
        "tr",
        {},
        el("th", { scope: "row" }, probe.name),
        el("td", {}, (probe.verdict || "—").replaceAll("_", " ")),
        el("td", {}, ms(m.detect_ms)),
        el("td", {}, `${m.failed_samples ?? 0} / ${m.samples ?? 0}`),
        el("td", {}, ms(m.recovery_ms)),
        el("td", {}, ms(m.rto_ms)),
      );
    }),
  );
  const chart = await call("GET", `/v1/drills/${id}/chart.svg`);
  if (chart.status === 200 && typeof chart.body === "string") {
    // The chart is ours, drawn by this server; parsed as SVG, it is inserted as elements.
    const doc = new DOMParser().parseFromString(chart.body, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg && svg.nodeName === "svg") {
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", `the chart of drill ${status.drill}`);
      $("drill-chart").replaceChildren(document.importNode(svg, true));
    }
  }
  $("drill-report").hidden = false;
}

export async function rollback() {
  if (!running) return;
  const id = running.id;
  const answer = await call("DELETE", `/v1/drills/${id}`);
  if (answer.status === 200) say(`drill ${id}: rolling back`, false);
  else say(`drill ${id}: ${problem(answer)}`, true);
}

// A drill the server already runs (started elsewhere, or before a reload of the page).
export async function adopt() {
  const answer = await call("GET", "/v1/drills");
  if (answer.status !== 200) return;
  const live = answer.body.find((d) => d.state === "running");
  if (live) follow(live.id);
}
