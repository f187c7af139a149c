// The fault form: edits a fault's kind, parameters, probability, direction, cap and TTL, or
// adds a fault to a route. The server is the one judge of what is valid: the form offers the
// kinds GET /v1/kinds says fit the route, starts from parameters it accepts, sends what was
// typed, and marks the input the server's answer blames, with the server's words.

import { call, problem } from "./api.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

let kinds = null;
let routes = [];
// What the open form is for: { mode: "edit", fault } or { mode: "add" }.
let editing = null;
let onDone = () => {};

// The routes the form can add a fault to, from the latest reading of /v1/routes.
export function knowRoutes(list) {
  routes = list;
}

async function catalogue() {
  if (!kinds) {
    const answer = await call("GET", "/v1/kinds");
    if (answer.status !== 200) throw new Error(`/v1/kinds: ${problem(answer)}`);
    kinds = answer.body;
  }
  return kinds;
}

function protocolOf(routeName) {
  const route = routes.find((r) => r.name === routeName);
  return route ? route.protocol : null;
}

// [name, params] of a kind as the API shows it: {"Latency": {"ms": 1}} or "Drop".
function split(kind) {
  if (typeof kind === "string") return [kind, {}];
  const [name, params] = Object.entries(kind)[0];
  return [name, params || {}];
}

function fillKinds(routeName, selected) {
  const protocol = protocolOf(routeName);
  const select = $("ff-kind");
  const fitting = kinds.filter((k) => protocol === null || k.protocols.includes(protocol));
  select.replaceChildren(...fitting.map((k) => el("option", { value: k.name }, k.name)));
  if (fitting.some((k) => k.name === selected)) select.value = selected;
}

// One input per parameter, typed by its value: numbers, text, a checkbox, or JSON for lists
// and maps. Each carries the JSON path the server names when it blames it.
function fillParams(kindName, params) {
  const box = $("ff-params");
  const inputs = Object.entries(params).map(([param, value]) => {
    const id = `ff-param-${param}`;
    const attributes = { id, name: param, "data-field": `kind.${kindName}.${param}`, "aria-describedby": `${id}-error` };
    let input;
    if (typeof value === "number") {
      input = el("input", { ...attributes, type: "number", step: "any", inputmode: "decimal", "data-type": "number" });
      input.value = String(value);
    } else if (typeof value === "boolean") {
      input = el("input", { ...attributes, type: "checkbox", "data-type": "boolean" });
      input.checked = value;
    } else if (value !== null && typeof value === "object") {
      input = el("textarea", { ...attributes, rows: 2, "data-type": "json" });
      input.value = JSON.stringify(value);
    } else {
      input = el("input", { ...attributes, type: "text", "data-type": value === null ? "optional" : "text" });
      input.value = value === null ? "" : value;
    }
    return el("div", { class: "param" }, el("label", { for: id }, param), input, el("span", { id: `${id}-error`, class: "field-error" }));
  });
  box.replaceChildren(el("legend", {}, `${kindName} parameters`), ...(inputs.length ? inputs : [el("p", { class: "muted" }, "none")]));
  const entry = kinds.find((k) => k.name === kindName);
  const directional = Boolean(entry && entry.directional);
  $("ff-direction-row").hidden = !directional;
  $("ff-direction-label").hidden = !directional;
}

function showKind(kindName) {
  const current = editing.mode === "edit" && split(editing.fault.kind);
  if (current && current[0] === kindName) return fillParams(kindName, current[1]);
  const entry = kinds.find((k) => k.name === kindName);
  fillParams(kindName, entry ? split(entry.example)[1] : {});
}

// The parameters as typed; a value that is not what its input expects is sent as typed, for
// the server to name.
function readParams() {
  const params = {};
  for (const input of $("ff-params").querySelectorAll("[data-field]")) {
    const raw = input.value.trim();
    switch (input.dataset.type) {
      case "number":
        params[input.name] = raw === "" ? null : Number(raw);
        break;
      case "boolean":
        params[input.name] = input.checked;
        break;
      case "json":
        try {
          params[input.name] = JSON.parse(raw);
        } catch {
          params[input.name] = raw;
        }
        break;
      case "optional":
        params[input.name] = raw === "" ? null : raw;
        break;
      default:
        params[input.name] = input.value;
    }
  }
  return params;
}

function body() {
  const kindName = $("ff-kind").value;
  const out = {
    enabled: $("ff-enabled").checked,
    probability: $("ff-probability").value.trim() === "" ? 1 : Number($("ff-probability").value),
    kind: { [kindName]: readParams() },
  };
  if (!$("ff-direction-row").hidden) out.direction = $("ff-direction").value;
  const cap = $("ff-max-active").value.trim();
  const hadCap = editing.mode === "edit" && editing.fault.max_active != null;
  if (cap !== "") out.max_active = Number(cap);
  else if (hadCap) out.max_active = null;
  const ttl = $("ff-ttl").value.trim();
  if (ttl !== "") out.ttl = ttl;
  else if ($("ff-ttl-clear").checked) out.ttl = null;
  if (editing.mode === "add") {
    out.name = $("ff-name").value.trim();
    out.route = $("ff-route").value;
  }
  return out;
}

function clearBlame() {
  for (const input of $("fault-form").querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const span of $("fault-form").querySelectorAll(".field-error")) span.textContent = "";
  $("fault-form-error").textContent = "";
}

// Marks the input the server blamed; a field the form has no input for (a part of a list, say)
// falls back to the nearest one that holds it.
function blame(field, message, status) {
  $("fault-form-error").textContent = message;
  if (!field) return;
  const form = $("fault-form");
  let input = null;
  for (let path = field; path && !input; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
    input = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
  }
  if (!input && field.startsWith("kind")) input = $("ff-kind");
  if (!input) return;
  input.setAttribute("aria-invalid", "true");
  const span = $(`${input.id}-error`);
  if (span) {
    span.textContent = message;
    // Said once, beside the input; the line at the foot points there.
    $("fault-form-error").textContent = `refused (${status}): see ${document.querySelector(`label[for="${input.id}"]`)?.textContent || field}`;
  }
  input.focus();
}

async function submit(event) {
  event.preventDefault();
  clearBlame();
  const sending = body();
  const name = editing.mode === "edit" ? editing.fault.name : sending.name;
  const answer =
    editing.mode === "edit"
      ? await call("PATCH", `/v1/faults/${encodeURIComponent(name)}`, sending)
      : await call("POST", "/v1/faults", sending);
  if (answer.status === 200 || answer.status === 201) {
    $("fault-dialog").close();
    onDone(`${name}: ${editing.mode === "edit" ? "saved" : "added"} (${answer.status})`, false);
    return;
  }
  blame(answer.body && answer.body.field, problem(answer), answer.status);
}

async function open(target, done) {
  onDone = done;
  try {
    await catalogue();
  } catch (e) {
    done(e.message, true);
    return;
  }
  editing = target;
  clearBlame();
  const fault = target.mode === "edit" ? target.fault : null;
  const routeName = fault ? fault.route : target.route;
  $("fault-form-title").textContent = fault ? `Edit fault ${fault.name}` : `Add a fault to ${routeName}`;
  $("fault-save").textContent = fault ? "Save" : "Add the fault";
  $("ff-name").value = fault ? fault.name : "";
  $("ff-name").readOnly = Boolean(fault);
  $("ff-route").replaceChildren(...routes.map((r) => el("option", { value: r.name }, r.name)));
  $("ff-route").value = routeName;
  $("ff-route").disabled = Boolean(fault);
  $("ff-enabled").checked = fault ? fault.enabled : true;
  $("ff-probability").value = String(fault ? fault.probability : 1);
  $("ff-direction").value = fault ? fault.direction : "Downstream";
  $("ff-max-active").value = fault && fault.max_active != null ? String(fault.max_active) : "";
  $("ff-ttl").value = "";
  $("ff-ttl-clear").checked = false;
  $("ff-ttl-clear-row").hidden = !(fault && fault.expires_at);
  $("ff-ttl-hint").textContent = fault && fault.expires_at ? "empty keeps the time it has; a new one counts from now" : "empty: until switched off";
  const kindName = fault ? split(fault.kind)[0] : "Latency";
  fillKinds(routeName, kindName);
  showKind($("ff-kind").value);
  $("fault-dialog").showModal();
  (fault ? $("ff-kind") : $("ff-name")).focus();
}

export function edit(fault, done) {
  return open({ mode: "edit", fault }, done);
}

export function add(route, done) {
  return open({ mode: "add", route }, done);
}

export function wire() {
  $("fault-form").addEventListener("submit", submit);
  $("fault-cancel").addEventListener("click", () => $("fault-dialog").close());
  $("ff-kind").addEventListener("change", () => {
    clearBlame();
    showKind($("ff-kind").value);
  });
  $("ff-route").addEventListener("change", () => {
    fillKinds($("ff-route").value, $("ff-kind").value);
    showKind($("ff-kind").value);
  });
}
