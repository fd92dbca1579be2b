// The service's API as the page uses it: fetch with the API key (kept in this tab only),
// the service's error text, and the one reader of server-sent events for every stream.

const KEY_STORAGE = "rag-api-key";
let apiKey = sessionStorage.getItem(KEY_STORAGE) || "";
let promptForKey = () => Promise.reject(new Error("no way to ask for an API key"));
let keyRequest = null; // one prompt, however many calls were refused meanwhile

export const hasKey = () => Boolean(apiKey);

// `prompt(message)` asks the user and resolves with the key they gave.
export function setKeyPrompt(prompt) {
  promptForKey = prompt;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  apiKey = "";
}

function keyFromUser(message) {
  keyRequest ??= promptForKey(message)
    .then((key) => {
      apiKey = key;
      sessionStorage.setItem(KEY_STORAGE, key);
    })
    .finally(() => {
      keyRequest = null;
    });
  return keyRequest;
}

// fetch() with the key; a 401 asks for a (new) key and tries again.
export async function api(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    if (apiKey) headers.set("Authorization", `Bearer ${apiKey}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    const body = await response.json().catch(() => ({}));
    await keyFromUser(apiKey ? (body.error && body.error.message) || "That key was refused." : "");
  }
}

// The message of the service's error body, or the status line.
export async function errorText(response) {
  const body = await response.json().catch(() => null);
  return (body && body.error && body.error.message) || `${response.status} ${response.statusText}`;
}

// Server-sent events from a fetch() response (EventSource cannot POST): {event, data}.
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// POST `payload` as JSON to a streaming endpoint (/ask, /summarize with stream: true) and
// yield its `token` and `done` events. An error status or an `error` event is thrown as an
// Error with the service's message (`failure` when the event carries none).
export async function* streamEvents(path, payload, failure) {
  const response = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  if (!response.ok) throw new Error(await errorText(response));
  for await (const item of readEvents(response)) {
    if (item.event === "error") throw new Error(item.data.error ? item.data.error.message : failure);
    yield item;
  }
}
