// Test doubles for the browser client: a clock whose timers run only when the
// test advances it, an in-memory Frontend API behind a fake fetch, and a
// document that records cookies and dispatches visibilitychange.

export const START = Date.UTC(2025, 0, 15, 9, 0, 0);
export const ORIGIN = "https://auth.example.test";

/** Let every pending promise chain run (the fake fetch never uses timers). */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

export class FakeClock {
  constructor(start = START) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
    /** Every delay ever asked for, in order. */
    this.delays = [];
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
      this.delays.push(ms);
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
  }

  /** Move time forward by `ms`, running each timer that comes due, in order. */
  async advance(ms) {
    const target = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= target && (due === null || timer.at < due[1].at)) due = [id, timer];
      }
      if (due === null) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }

  get pending() {
    return [...this.timers.values()].map((timer) => timer.at - this.t).sort((a, b) => a - b);
  }
}

export function base64url(text) {
  return Buffer.from(text, "utf8").toString("base64url");
}

export function unsignedJwt(claims) {
  return `${base64url(JSON.stringify({ alg: "RS256", kid: "ins_test", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}.c2ln`;
}

export const JANE = {
  id: "user_jane",
  first_name: "Jane",
  last_name: "Doe",
  username: null,
  email_addresses: [{ id: "idn_jane", email_address: "jane@example.com" }],
  primary_email_address_id: "idn_jane",
};

export const SAM = {
  id: "user_sam",
  first_name: "Sam",
  last_name: "Support",
  username: null,
  email_addresses: [{ id: "idn_sam", email_address: "sam@example.com" }],
  primary_email_address_id: "idn_sam",
};

export const ACTOR = { sub: "user_sam", name: "Sam Support", email: "sam@example.com" };

/**
 * An in-memory Frontend API with the real one's shapes and status codes.
 * `fail(pathPattern, ...replies)` makes the next matching requests answer
 * "network" (fetch rejects) or `{ status, body }` instead.
 */
export class FakeServer {
  constructor(clock, { lifetime = 60, skewMs = 0 } = {}) {
    this.clock = clock;
    this.lifetime = lifetime;
    this.skewMs = skewMs; // server clock minus the browser's
    this.requests = [];
    this.sessions = [];
    this.lastActive = null;
    this.scripted = [];
    this.fetch = (url, init) => this.#handle(url, init);
  }

  now() {
    return this.clock.now() + this.skewMs;
  }

  addSession({ id, user = JANE, actor = null, reason = null, expireIn = 7 * 86_400_000, returnTo = null, mode = null }) {
    const session = {
      id,
      object: "session",
      status: "active",
      actor,
      impersonation_mode: actor ? (mode ?? "full") : null,
      user,
      user_id: user.id,
      expire_at: this.now() + expireIn,
      abandon_at: this.now() + 86_400_000,
      public_user_data: {
        identifier: user.email_addresses[0]?.email_address ?? user.username ?? user.id,
        first_name: user.first_name,
        last_name: user.last_name,
      },
      impersonation_reason: reason,
      returnTo,
    };
    this.sessions.push(session);
    this.lastActive = id;
    return session;
  }

  fail(pattern, ...replies) {
    for (const reply of replies) this.scripted.push({ pattern, reply });
  }

  /** Requests whose path matches `pattern` (a string suffix or a RegExp). */
  calls(pattern) {
    return this.requests.filter((r) => matches(pattern, r.path));
  }

  #active() {
    return this.sessions.filter((s) => s.status === "active" && s.expire_at > this.now());
  }

  client() {
    return {
      id: "client_1",
      object: "client",
      sessions: this.#active().map(({ returnTo: _returnTo, ...session }) => ({ ...session })),
      last_active_session_id: this.lastActive,
    };
  }

  async #handle(url, init = {}) {
    const path = url.startsWith(ORIGIN) ? url.slice(ORIGIN.length) : url;
    const request = {
      url, path, method: init.method ?? "GET", headers: { ...(init.headers ?? {}) },
      body: init.body, credentials: init.credentials, at: this.clock.now(),
    };
    this.requests.push(request);
    const index = this.scripted.findIndex((s) => matches(s.pattern, path));
    if (index >= 0) {
      const [{ reply }] = this.scripted.splice(index, 1);
      if (reply === "network") throw new TypeError("Failed to fetch");
      return respond(reply.status, reply.body ?? null);
    }
    if (request.method === "POST" && request.headers["Content-Type"] !== "application/json") {
      return error(403, "request_header_missing");
    }
    if (request.credentials !== "include") return error(401, "signed_out");
    if (request.method === "GET" && path === "/v1/client") {
      const client = this.client();
      return respond(200, { response: client, client });
    }
    const match = /^\/v1\/client\/sessions\/([^/]+)\/(tokens|end|stop_impersonating)$/.exec(path);
    if (request.method !== "POST" || !match) return error(404, "resource_not_found");
    const session = this.sessions.find((s) => s.id === decodeURIComponent(match[1]));
    if (!session) return error(404, "resource_not_found");
    const active = session.status === "active" && session.expire_at > this.now();
    if (match[2] === "tokens") {
      if (!active) return error(400, "session_not_active");
      const iat = Math.floor(this.now() / 1000);
      const claims = { iss: ORIGIN, sub: session.user.id, sid: session.id, iat, nbf: iat - 5, exp: iat + this.lifetime };
      if (session.actor) Object.assign(claims, { act: session.actor, act_mode: session.impersonation_mode });
      return respond(200, { object: "token", jwt: unsignedJwt(claims) });
    }
    if (match[2] === "stop_impersonating" && !session.actor) return error(400, "session_not_impersonated");
    if (!active) return error(400, "session_not_active");
    session.status = "ended";
    if (this.lastActive === session.id) {
      const back = this.#active().find((s) => s.id === session.returnTo) ?? this.#active()[0];
      this.lastActive = back?.id ?? null;
    }
    return respond(200, { response: { ...session }, client: this.client() });
  }
}

function matches(pattern, path) {
  return typeof pattern === "string" ? path.endsWith(pattern) : pattern.test(path);
}

function respond(status, body) {
  return {
    ok: status >= 200 && status < 300,
    status,
    json: async () => {
      if (body === null) throw new SyntaxError("Unexpected end of JSON input");
      return body;
    },
  };
}

function error(status, code) {
  return respond(status, { errors: [{ code, message: code.replace(/_/g, " "), long_message: code, meta: {} }] });
}

export class FakeDocument {
  constructor() {
    this.cookies = [];
    this.visibilityState = "visible";
    this.listeners = new Map();
  }

  set cookie(value) {
    this.cookies.push(value);
  }

  get cookie() {
    return "";
  }

  get lastCookie() {
    return this.cookies.at(-1);
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
  }

  removeEventListener(type, listener) {
    this.listeners.get(type)?.delete(listener);
  }

  setVisibility(state) {
    this.visibilityState = state;
    for (const listener of this.listeners.get("visibilitychange") ?? []) listener({ type: "visibilitychange" });
  }
}

/** A page on https://app.example.test wired to a FakeServer. */
export function environment({ lifetime = 60, skewMs = 0, protocol = "https:" } = {}) {
  const clock = new FakeClock();
  const server = new FakeServer(clock, { lifetime, skewMs });
  const document = new FakeDocument();
  const window = { location: { protocol } };
  const options = {
    frontendApi: `${ORIGIN}/`,
    fetch: server.fetch,
    document,
    window,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  };
  return { clock, server, document, window, options };
}
