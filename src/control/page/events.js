// The live event log, newest first, with a filter over what each event says.

import { el } from "./dom.js";

const KEEP = 500;

// One line for an event: its time, type and the fields that name what changed.
export function describe(event) {
  const d = event.data || {};
  const time = typeof d.at === "string" ? d.at.slice(11, 23) : "";
  const what = Object.entries(d)
    .filter(([k]) => k !== "at" && k !== "type")
    .map(([k, v]) => (k === "problems" && Array.isArray(v) ? v.map(problemText).join("; ") : `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`))
    .join(" ");
  return `${time} ${event.type} ${what}`.trim();
}

// A rules problem as the CLI prints it: file:line:col: message.
function problemText(p) {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

export function append(list, event, filter) {
  const text = describe(event);
  const item = el("li", { class: `event ${event.type}` }, text);
  item.hidden = !matches(text, filter);
  list.prepend(item);
  while (list.children.length > KEEP) list.lastElementChild.remove();
}

export function applyFilter(list, filter) {
  for (const item of list.children) item.hidden = !matches(item.textContent, filter);
}

function matches(text, filter) {
  return !filter || text.toLowerCase().includes(filter.toLowerCase());
}
