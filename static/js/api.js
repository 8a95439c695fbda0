// Calls to the JSON API from the pages, and the event stream with its reconnection.

export const apiBase = document.body.dataset.api || "/api/v1";

// The URL of an API path (relative to /api/v1), with query parameters.
export function apiUrl(path, params = {}) {
  const url = new URL(`${apiBase}${path}`, window.location.href);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

// { ok, status, data, etag } of a request; data is the JSON body (or null).
export async function request(method, path, { body, params, etag } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: null, etag: null };
  }
  let data = null;
  if (response.status !== 204 && response.status !== 304) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return { ok: response.ok, status: response.status, data, etag: response.headers.get("ETag") };
}

// The error message of a failed request, or `fallback` when the server gave none.
export function errorText(result, fallback) {
  return (result.data && result.data.error && result.data.error.message) || fallback;
}

// Listen to a conversation's event stream; `onResults(summary)` on each new result.
// `onState("live" | "reconnecting")` says how the stream is doing; `others` maps other event
// names (staff streams send `statements`) to their handlers.
//
// The browser's EventSource retries a dropped stream by itself (after the server's `retry:`),
// but gives up for good on an error status such as 503 (the server is at its cap of streams)
// and never waits longer between tries. So: after a 503, or a second error without the stream
// opening in between, close it and open a new one ourselves after a pause that doubles up to
// 30 s, drawn at random between half and all of it, so that pages refused together (or cut off
// by a restart) do not all come back at once.
export function listen(conversation, onResults, onState = () => {}, others = {}) {
  let source = null;
  let pause = 1000;
  let failures = 0;
  let closed = false;
  const open = () => {
    if (closed) return;
    source = new EventSource(apiUrl(`/conversations/${conversation}/events`));
    source.addEventListener("open", () => {
      pause = 1000;
      failures = 0;
      onState("live");
    });
    source.addEventListener("results", (event) => onResults(JSON.parse(event.data)));
    for (const [name, handler] of Object.entries(others)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    }
    source.addEventListener("error", () => {
      onState("reconnecting");
      failures += 1;
      if (source.readyState === EventSource.CLOSED || failures > 1) {
        source.close();
        window.setTimeout(open, pause * (0.5 + Math.random() / 2));
        pause = Math.min(pause * 2, 30000);
      }
    });
  };
  open();
  return () => {
    closed = true;
    if (source) source.close();
  };
}
