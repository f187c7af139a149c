// The page's wiring: reads /v1/status, /v1/routes and /v1/faults every second and whenever an
// event says something changed, and hands each part of the screen what it shows.

import { call, problem } from "./api.js";
import { el } from "./dom.js";
import * as drills from "./drills.js";
import * as events from "./events.js";
import * as faults from "./faults.js";
import * as form from "./form.js";
import * as routes from "./routes.js";
import { follow } from "./stream.js";

const REFRESH_MS = 1000;
const $ = (id) => document.getElementById(id);

let refreshing = null;
let again = false;

// One refresh at a time; a request for another while one runs makes one more after it.
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      const [status, routeList, faultList] = await Promise.all([
        call("GET", "/v1/status"),
        call("GET", "/v1/routes"),
        call("GET", "/v1/faults"),
      ]);
      const at = performance.now();
      if (status.status === 200) showStatus(status.body);
      if (routeList.status === 200) {
        form.knowRoutes(routeList.body);
        routes.render($("routes").tBodies[0], routeList.body, at, addFault);
      }
      if (faultList.status === 200) faults.render($("faults").tBodies[0], faultList.body, answer, editFault);
    } catch (e) {
      $("summary").textContent = `the control endpoint does not answer (${e.message})`;
    } finally {
      refreshing = null;
      if (again) {
        again = false;
        refresh();
      }
    }
  })();
  return refreshing;
}

function showStatus(status) {
  $("summary").textContent =
    `${status.routes} routes, ${status.faults_enabled} of ${status.faults} faults on · ` +
    `rules ${status.rules_dir || "(none)"} · ${status.rules_watch} · Switchboard ${status.version}`;
  const banner = $("rejected");
  const problems = status.last_rejected || [];
  $("rejected-problems").replaceChildren(
    ...problems.map((p) => el("li", {}, `${p.file}:${p.line}:${p.col}: ${p.message}`)),
  );
  banner.hidden = problems.length === 0;
}

function answer(text, failed) {
  const line = $("fault-answer");
  line.textContent = text;
  line.classList.toggle("failed", failed);
}

function formDone(text, failed) {
  answer(text, failed);
  refresh();
}

function editFault(fault) {
  form.edit(fault, formDone);
}

function addFault(route) {
  form.add(route, formDone);
}

async function killSwitch(dialog) {
  if (dialog.returnValue !== "reset") return;
  const reply = await call("POST", "/v1/reset");
  if (reply.status === 200) {
    const off = reply.body.turned_off || [];
    answer(`all faults off: ${off.length ? off.join(", ") : "none were on"}`, false);
  } else {
    answer(`all faults off failed: ${problem(reply)}`, true);
  }
  refresh();
}

function start() {
  $("kill").addEventListener("click", () => {
    const dialog = $("kill-dialog");
    dialog.returnValue = "";
    dialog.showModal();
    $("kill-cancel").focus();
  });
  $("kill-dialog").addEventListener("close", (e) => killSwitch(e.target));
  const list = $("events");
  const filter = $("event-filter");
  filter.addEventListener("input", () => events.applyFilter(list, filter.value));
  follow(
    (event) => {
      if (event.type === "connected") return;
      events.append(list, event, filter.value);
      refresh();
    },
    (live) => document.body.classList.toggle("offline", !live),
  );
  $("drill-rollback").addEventListener("click", drills.rollback);
  form.wire();
  drills.listFiles();
  drills.adopt();
  refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(() => faults.tick($("faults").tBodies[0]), 250);
}

start();
