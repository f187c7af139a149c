// The faults table: a labelled switch per fault that PATCHes it and shows the server's answer,
// its kind as a rules file writes it, where it came from, its TTL counting down, and a button
// that opens the form to edit it.

import { call, problem } from "./api.js";
import { el, syncRows } from "./dom.js";

// A fault's kind as RON: {"Latency": {"ms": 200}} → Latency(ms: 200).
export function kindText(kind) {
  if (typeof kind === "string") return `${kind}()`;
  const [name, fields] = Object.entries(kind)[0] || ["?", {}];
  const parts = Object.entries(fields || {})
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${value(v)}`);
  return `${name}(${parts.join(", ")})`;
}

function value(v) {
  if (typeof v === "string") return /^[A-Z][A-Za-z]*$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(value).join(", ")}]`;
  // Parameters nested in a kind are maps (headers), which RON writes with braces and quoted keys.
  if (v && typeof v === "object") return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${value(x)}`).join(", ")}}`;
  return String(v);
}

// Whole seconds left until `expiresAt` (RFC 3339) at `now` (ms), or "" without one.
export function remaining(expiresAt, now) {
  if (!expiresAt) return "";
  const left = Math.max(0, Math.ceil((Date.parse(expiresAt) - now) / 1000));
  const minutes = Math.floor(left / 60);
  return minutes > 0 ? `${minutes}m ${String(left % 60).padStart(2, "0")}s` : `${left}s`;
}

export function render(tbody, faults, onAnswer, onEdit) {
  const byName = new Map(faults.map((f) => [f.name, f]));
  syncRows(
    tbody,
    faults.map((f) => f.name),
    (name) => {
      const id = `switch-${name}`;
      const input = el("input", { type: "checkbox", role: "switch", id, class: "switch" });
      input.addEventListener("change", () => flip(name, input, onAnswer));
      const edit = el("button", { type: "button", class: "edit", "aria-label": `Edit ${name}` }, "Edit");
      edit.addEventListener("click", () => onEdit(byName.get(name)));
      return el(
        "tr",
        {},
        el("td", {}, input, el("label", { for: id, class: "visually-hidden" }, `${name} on`)),
        el("th", { scope: "row" }),
        el("td"),
        el("td", { class: "kind" }),
        el("td"),
        el("td", { class: "ttl num" }),
        el("td", { class: "actions" }, edit),
      );
    },
    (row, name) => {
      const fault = byName.get(name);
      const input = row.querySelector("input");
      // A switch waiting for its answer keeps what the user asked for.
      if (!input.disabled) input.checked = fault.enabled;
      row.classList.toggle("on", fault.enabled);
      row.cells[1].textContent = fault.name;
      row.cells[2].textContent = fault.route;
      row.cells[3].textContent = kindText(fault.kind) + (fault.probability < 1 ? ` × ${fault.probability}` : "");
      row.cells[4].textContent = fault.source;
      row.cells[5].dataset.expiresAt = fault.expires_at || "";
      row.cells[5].textContent = remaining(fault.expires_at, Date.now());
    },
  );
}

// Counts every TTL in `tbody` down, between readings of /v1/faults.
export function tick(tbody) {
  for (const cell of tbody.querySelectorAll("td.ttl")) {
    cell.textContent = remaining(cell.dataset.expiresAt, Date.now());
  }
}

async function flip(name, input, onAnswer) {
  const enabled = input.checked;
  input.disabled = true;
  try {
    const answer = await call("PATCH", `/v1/faults/${encodeURIComponent(name)}`, { enabled });
    if (answer.status === 200) {
      onAnswer(`${name}: ${answer.body.enabled ? "on" : "off"} (${answer.status})`, false);
    } else {
      input.checked = !enabled;
      onAnswer(`${name}: ${problem(answer)} (${answer.status})`, true);
    }
  } catch (e) {
    input.checked = !enabled;
    onAnswer(`${name}: the endpoint did not answer (${e.message})`, true);
  } finally {
    input.disabled = false;
  }
}
