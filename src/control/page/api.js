// Calls to the control endpoint, with its token when it has one. The token is asked for once,
// kept for this tab in sessionStorage, and asked for again when the endpoint answers 401.

const KEY = "switchboard.token";
let asking = null;

export function token() {
  return sessionStorage.getItem(KEY);
}

export function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

// Shows the token dialog with `why`, and resolves once a token is given. Callers that arrive
// while it is open wait for the same answer.
export function askToken(why) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  document.getElementById("token-why").textContent = why;
  input.value = "";
  asking = new Promise((resolve) => {
    form.addEventListener(
      "submit",
      () => {
        sessionStorage.setItem(KEY, input.value.trim());
        asking = null;
        resolve();
      },
      { once: true },
    );
  });
  dialog.showModal();
  input.focus();
  return asking;
}

// The answer to `method path` with `body` as JSON: { status, body }, body parsed when it is
// JSON. A 401 asks for the token and tries again.
export async function call(method, path, body) {
  for (;;) {
    const init = { method, headers: headers(body === undefined ? {} : { "content-type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: the text is the answer.
    }
    if (response.status === 401) {
      await askToken(token() ? "That token was refused; give the control token." : "This Switchboard asks for its control token.");
      continue;
    }
    return { status: response.status, body: parsed };
  }
}

// What went wrong, in the server's words where it gave some.
export function problem(answer) {
  if (answer.body && typeof answer.body === "object" && answer.body.error) return answer.body.error;
  return `HTTP ${answer.status}`;
}
