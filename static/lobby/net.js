// A JSON WebSocket that reconnects by itself, with backoff, until told to stop.
//
// Close codes the server uses to say "do not come back" (kicked, replaced by another tab,
// lobby closed, left) end it for good; anything else (a node restarting sends 1012, a
// dropped network shows as 1006) makes it reconnect. `hello` runs on every (re)connect,
// so a client says who it is again each time (resume with its token).

export const BASE = document.querySelector('meta[name="app-base"]').content;

/** Close codes after which reconnecting would only be refused again. */
export const FINAL = new Set([1000, 4001, 4003, 4004]);

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${BASE}${path}`;
}

export class JsonSocket {
  /**
   * @param {string} path  under the app's base, e.g. "ws/directory"
   * @param {{hello?: Function, message: Function, status?: Function, ended?: Function,
   *          refused?: Function}} handlers
   *   hello(sock)          connected (again)
   *   message(data)        a JSON message
   *   status(kind, text)   "ok" | "busy" | "bad" for the page's status line
   *   ended(code, reason)  closed for good (a FINAL code)
   *   refused()            the handshake keeps failing: ask the caller whether to go on
   *                        (return false to stop)
   */
  constructor(path, handlers) {
    this.url = wsUrl(path);
    this.handlers = handlers;
    this.ws = null;
    this.stopped = false;
    this.backoff = 400;
    this.failures = 0;
    this.retry = null;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    this.report("busy", "connecting…");
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.backoff = 400;
      this.report("ok", "connected");
      this.handlers.hello?.(this);
    };
    ws.onmessage = (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (this.ws === ws) this.handlers.message(data);
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws || this.stopped) return;
      if (FINAL.has(event.code)) {
        this.stopped = true;
        this.report("bad", "disconnected");
        this.handlers.ended?.(event.code, event.reason);
        return;
      }
      if (!opened) {
        this.failures += 1;
        if (this.failures >= 2 && this.handlers.refused && !(await this.handlers.refused())) {
          this.stop();
          return;
        }
      }
      const wait = this.backoff * (1 + Math.random() * 0.3);
      this.backoff = Math.min(this.backoff * 2, 8000);
      this.report("busy", `reconnecting in ${Math.ceil(wait / 1000)} s…`);
      this.retry = setTimeout(() => this.connect(), wait);
    };
  }

  report(kind, text) {
    if (!this.stopped || kind === "bad") this.handlers.status?.(kind, text);
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(data) {
    if (this.open) this.ws.send(JSON.stringify(data));
    return this.open;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.ws) this.ws.close(1000, "page left");
    this.ws = null;
  }
}

// Requests go through Outcome.request (static/js/outcome.js, loaded before this module): a
// 503 that says nothing ran is sent again by itself; a read is sent again after "unknown"
// too. The body of what comes back carries `outcome` ("not-run", "unknown" or absent) so the
// page can say whether a refused request may have happened.

/** GET a JSON endpoint of the app: [status, body] (status 0 if unreachable). */
export async function getJson(path) {
  try {
    const response = await window.Outcome.request(BASE + path, {
      headers: { Accept: "application/json" },
    });
    return [response.status, await answer(response)];
  } catch {
    return [0, {}];
  }
}

/** POST JSON to the app: [status, body]. */
export async function postJson(path, body, onWait) {
  try {
    const response = await window.Outcome.request(
      BASE + path,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
      { onWait },
    );
    return [response.status, await answer(response)];
  } catch {
    return [0, { error: "the server cannot be reached", outcome: "unknown" }];
  }
}

async function answer(response) {
  const body = await response.json().catch(() => ({}));
  if (response.outcome && body && typeof body === "object") body.outcome = response.outcome;
  return body;
}
