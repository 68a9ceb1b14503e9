// The JSON API as the pages use it: the browser session's cookie goes with every request
// (same origin), and unsafe methods repeat the session's CSRF token from the `csrftoken`
// cookie in X-CSRFToken, as the API requires of session requests.

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(value.join("="));
  }
  return "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(errorText(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.code || (this.body.error && this.body.error.code) || null;
  }
}

// Both dialects' error bodies: {"detail": ...} and field errors {"field": ["..."]} (/api),
// {"error": ..., "fields": {...}} (/api/v1).
export function errorText(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  if (typeof body.error === "string") {
    const fields = body.fields ? Object.values(body.fields).flat() : [];
    return [body.error, ...fields].join(" ");
  }
  if (body.error && typeof body.error.message === "string") return body.error.message;
  return Object.entries(body)
    .filter(([, value]) => Array.isArray(value))
    .map(([field, value]) => `${field}: ${value.join(" ")}`)
    .join(" ");
}

export function request(method, path, { body, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (!SAFE.has(method)) init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

// The parsed JSON body (null for 204), or an ApiError with the server's message.
export async function api(method, path, options = {}) {
  const response = await request(method, path, options);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return { body, headers: response.headers };
}

export async function getJson(path) {
  return (await api("GET", path)).body;
}

// Server-Sent Events from a fetch response (EventSource cannot POST): yields
// {event, id, data} with data parsed as JSON.
export async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { event: "message", id: null, data: "" };
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = text;
        else if (field === "id") event.id = text;
        else if (field === "data") data.push(text);
      }
      if (!data.length) continue;
      try {
        event.data = JSON.parse(data.join("\n"));
      } catch {
        event.data = data.join("\n");
      }
      yield event;
    }
  }
}
