// The HTTP API, the UI's only way into the log: fetch with the session's bearer token, problem documents
// as errors, and the change feed (/v1/feed) read as a stream (EventSource cannot send a header).

const TOKEN_KEY = "schemalog.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The token kept for this browser tab's session only. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthenticated = () => {};

/** What to do when the server says the token no longer authenticates (sign out). */
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function url(path, params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) search.append(k, String(one));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** One API call: the parsed JSON (or text), ApiError for any 4xx/5xx. */
export async function api(path, { method = "GET", params, body, signal, text = false, bearer } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  const secret = bearer || token.get();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, params), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = { detail: `HTTP ${response.status} ${response.statusText}` };
    }
    if (response.status === 401 && !bearer) onUnauthenticated(problem);
    throw new ApiError(response.status, problem);
  }
  if (text) return response.text();
  return response.status === 204 ? null : response.json();
}

/**
 * The change feed: one connection per signed-in session, shared by the views. Each event is given to
 * every listener; "open" is announced on each (re)connection so that a view can read again what it may
 * have missed before the feed was there. Reconnects with backoff, sending Last-Event-ID.
 */
export class Feed {
  constructor() {
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.lastId = null;
    this.controller = null;
    this.stopped = true;
    this.status = "off";
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.generation = (this.generation || 0) + 1;
    this.loop(this.generation);
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.setStatus("off");
  }

  emit(kind, data) {
    for (const fn of this.listeners) {
      try {
        fn(kind, data);
      } catch (error) {
        console.error("feed listener", error);
      }
    }
  }

  async loop(generation) {
    let backoff = 1000;
    const current = () => !this.stopped && this.generation === generation; // (a sign-out ends this loop)
    while (current()) {
      this.controller = new AbortController();
      try {
        await this.read(this.controller.signal);
        backoff = 1000;
      } catch (error) {
        if (!current()) break;
        if (error instanceof ApiError && error.status === 401) break;
      }
      if (!current()) break;
      this.setStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, backoff * (0.5 + Math.random() / 2)));
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  async read(signal) {
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token.get()}` };
    if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
    const response = await fetch("/v1/feed", { headers, signal, cache: "no-store" });
    if (!response.ok || !response.body) {
      let problem = null;
      try {
        problem = await response.json();
      } catch {
        problem = null;
      }
      if (response.status === 401) onUnauthenticated(problem);
      throw new ApiError(response.status, problem);
    }
    this.setStatus("live");
    this.emit("open", null);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          this.dispatch(event);
          event = { type: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  }

  dispatch(event) {
    if (event.id !== null) this.lastId = event.id;
    if (!event.data.length) return;
    let data;
    try {
      data = JSON.parse(event.data.join("\n"));
    } catch {
      return;
    }
    if (event.type === "cutoff") {
      if (data && data.after !== undefined) this.lastId = String(data.after);
      if (this.controller) this.controller.abort(); // reconnect from where it stopped
      return;
    }
    this.emit("event", data);
  }
}
