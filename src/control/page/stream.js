// /v1/events as a stream read through fetch, since EventSource cannot send the token. Each
// event is handed to `onEvent` as { type, data }; the stream reconnects when it ends.

import { askToken, headers, token } from "./api.js";

export async function follow(onEvent, onState) {
  let wait = 250;
  for (;;) {
    try {
      const response = await fetch("/v1/events", { headers: headers() });
      if (response.status === 401) {
        await askToken(token() ? "That token was refused; give the control token." : "This Switchboard asks for its control token.");
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      onState(true);
      wait = 250;
      await read(response.body, onEvent);
    } catch {
      // The endpoint went away or restarted: try again below.
    }
    onState(false);
    await new Promise((done) => setTimeout(done, wait));
    wait = Math.min(wait * 2, 5000);
  }
}

async function read(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = parse(block);
      if (event) onEvent(event);
    }
  }
}

// One server-sent event: its `event:` name and its `data:` lines as JSON. Comments (keep-alives)
// give nothing.
export function parse(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length === 0) return null;
  try {
    return { type, data: JSON.parse(data.join("\n")) };
  } catch {
    return { type, data: { text: data.join("\n") } };
  }
}
