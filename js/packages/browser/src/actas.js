/**
 * @actas/browser: the actas browser client.
 *
 * Loads the browser's client from the actas Frontend API, keeps a fresh
 * session JWT (refreshed before it expires, on tab focus, and at the
 * session's hard end), writes it to the `__session` cookie for same-site
 * backends, and tells the page who is signed in and who is acting as them
 * (`getAuth().actor`, the token's RFC 8693 `act` claim), and in which mode
 * (`getAuth().impersonation`: `{ mode: "read_only" | "full", readOnly }`,
 * from the token's `act_mode`), so a page can disable what a read-only
 * impersonator may not do (the backend refuses it anyway).
 *
 * Dependency-free and unbundled: this file is what `GET /v1/actas.js` serves.
 *
 * @example
 *   import { Actas, mountImpersonationBanner } from "https://auth.example.com/v1/actas.js";
 *   const actas = await Actas.load({ frontendApi: "https://auth.example.com" });
 *   mountImpersonationBanner(actas);
 *   const token = await actas.getAuth().getToken();
 *
 * @module @actas/browser
 */

/**
 * @typedef {{ id: string, email_address: string }} EmailAddress
 * @typedef {{
 *   id: string, first_name: string | null, last_name: string | null,
 *   username: string | null, email_addresses: EmailAddress[],
 *   primary_email_address_id: string | null,
 * }} User
 * @typedef {{ identifier: string, first_name: string | null, last_name: string | null }} PublicUserData
 * @typedef {{
 *   id: string, status: string, actor: Actor | null, expire_at: number, abandon_at: number,
 *   user: User, public_user_data: PublicUserData, impersonation_reason: string | null,
 *   impersonation_mode?: "read_only" | "full" | null,
 * }} Session
 * @typedef {{ id: string, sessions: Session[], last_active_session_id: string | null }} Client
 * @typedef {{ sub: string, name?: string, email?: string, act?: Actor, [claim: string]: unknown }} Actor
 * @typedef {{
 *   sub?: string, sid?: string, iat?: number, exp?: number, act?: Actor, [claim: string]: unknown,
 * }} Claims
 * @typedef {{ jwt: string, claims: Claims, receivedAt: number, expiresAt: number }} Token
 * @typedef {{ mode: "read_only" | "full", readOnly: boolean }} Impersonation
 * @typedef {{
 *   isLoaded: boolean, isSignedIn: boolean, userId: string | null, sessionId: string | null,
 *   actor: Actor | null, impersonation: Impersonation | null,
 *   getToken: () => Promise<string | null>, signOut: () => Promise<void>,
 * }} Auth
 * @typedef {{
 *   now: () => number,
 *   setTimeout: (callback: () => void, ms: number) => unknown,
 *   clearTimeout: (handle: unknown) => void,
 * }} Clock
 * @typedef {{
 *   frontendApi: string,
 *   fetch?: typeof fetch,
 *   document?: Document,
 *   window?: Window,
 *   now?: () => number,
 *   setTimeout?: (callback: () => void, ms: number) => unknown,
 *   clearTimeout?: (handle: unknown) => void,
 * }} Options
 */

export const VERSION = "0.1.0-dev.0";

const SESSION_COOKIE = "__session";
// Refresh this long before a token expires (at 50 s of a 60 s token), or at
// half its life when it is shorter than twice this.
const REFRESH_MARGIN_MS = 10_000;
// Never schedule anything sooner than this: no loop can become a tight one.
const MIN_DELAY_MS = 1_000;
// On tab focus, a token older than this is replaced.
const FOCUS_STALE_MS = 5_000;
// getToken() hands out a token only if it stays valid at least this long.
const GET_TOKEN_MIN_VALIDITY_MS = 5_000;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
// Ask for a token a little after the session's hard end, so the server
// (whose clock we only estimate to the second) has certainly reached it.
const HARD_END_GRACE_MS = 500;

/** An error answer from the Frontend API, or a network failure (`status` 0). */
export class ActasRequestError extends Error {
  /**
   * @param {string} message
   * @param {{ status: number, code?: string | null, errors?: unknown[], cause?: unknown }} details
   */
  constructor(message, { status, code = null, errors = [], cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ActasRequestError";
    /** HTTP status, 0 when the request never got an answer. */
    this.status = status;
    /** The first error's `code` from the `{"errors": [...]}` envelope, if any. */
    this.code = code;
    this.errors = errors;
  }

  /** True when the session is over (revoked, ended, expired, or this browser is signed out). */
  get sessionGone() {
    return this.status === 401 || this.status === 404 ||
      (this.status === 400 && this.code === "session_not_active") ||
      (this.status === 403 && this.code === "user_banned");
  }
}

/**
 * The payload of a compact JWT, decoded but NOT verified. Good for reading
 * `exp`, `sid` or `act` in the browser; a backend must verify the signature.
 *
 * @param {string} jwt
 * @returns {Claims}
 */
export function decodeJwt(jwt) {
  const parts = String(jwt).split(".");
  if (parts.length !== 3) throw new TypeError("Not a compact JWT: expected three dot-separated parts.");
  const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
  const payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw new TypeError("The JWT payload is not a JSON object.");
  }
  return payload;
}

/**
 * When to refresh a token of `lifetimeMs`, counted from when it arrived.
 *
 * @param {number} lifetimeMs
 */
export function refreshDelay(lifetimeMs) {
  const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
  return Math.max(MIN_DELAY_MS, lifetimeMs - margin);
}

/** @param {Auth} a @param {Omit<Auth, "getToken" | "signOut">} b */
function sameAuth(a, b) {
  return a.isLoaded === b.isLoaded && a.isSignedIn === b.isSignedIn && a.userId === b.userId &&
    a.sessionId === b.sessionId && JSON.stringify(a.actor) === JSON.stringify(b.actor) &&
    a.impersonation?.mode === b.impersonation?.mode;
}

/**
 * The mode of an impersonation: the token's `act_mode` when there is a token, else the
 * session's `impersonation_mode`. Anything but "full" is read-only (failing closed, as
 * the backend SDK does); a token with `act` but no `act_mode` is "full".
 *
 * @param {Actor | null} actor @param {Claims | null} claims @param {Session | null} session
 * @returns {Impersonation | null}
 */
export function impersonationOf(actor, claims, session) {
  if (!actor) return null;
  const said = claims ? claims.act_mode : session?.impersonation_mode;
  const mode = said === undefined || said === null || said === "full" ? "full" : "read_only";
  return Object.freeze({ mode, readOnly: mode === "read_only" });
}

export class Actas {
  /**
   * Create the client and load it: the browser's sessions and a first token.
   * Rejects (with `ActasRequestError`) only if the client cannot be read;
   * a token that cannot be minted yet is retried in the background.
   *
   * @param {Options} options
   * @returns {Promise<Actas>}
   */
  static async load(options) {
    const actas = new Actas(options);
    await actas.load();
    return actas;
  }

  #api;
  #fetch;
  /** @type {Document | undefined} */ #document;
  /** @type {Window | undefined} */ #window;
  /** @type {Clock} */ #clock;

  #loaded = false;
  /** @type {Client | null} */ #client = null;
  /** @type {Session | null} */ #session = null;
  /** @type {Token | null} */ #token = null;
  // Server time minus local time, estimated from each token's `iat`.
  #skewMs = 0;
  // Bumped whenever the session changes: answers to older requests are ignored.
  #epoch = 0;
  /** @type {{ epoch: number, promise: Promise<void> } | null} */ #inflight = null;
  /** @type {unknown} */ #timer = null;
  #backoffMs = BACKOFF_FIRST_MS;
  /** @type {Set<(auth: Auth) => void>} */ #listeners = new Set();
  /** @type {Auth} */ #auth;
  #onVisibility = () => this.#visibilityChanged();

  /** @param {Options} options */
  constructor(options) {
    if (!options || typeof options.frontendApi !== "string" || !options.frontendApi) {
      throw new TypeError("Actas needs { frontendApi: 'https://…' }, the actas Frontend API URL.");
    }
    const g = /** @type {any} */ (globalThis);
    this.#api = options.frontendApi.replace(/\/+$/, "");
    const fetchImpl = options.fetch ?? g.fetch;
    // Called as plain functions, never as methods of this object: a browser's
    // fetch or setTimeout throws "Illegal invocation" on a foreign `this`.
    this.#fetch = /** @type {typeof fetch} */ ((url, init) => fetchImpl(url, init));
    this.#document = options.document ?? g.document;
    this.#window = options.window ?? g.window;
    const now = options.now ?? Date.now;
    const setTimer = options.setTimeout ?? g.setTimeout;
    const clearTimer = options.clearTimeout ?? g.clearTimeout;
    this.#clock = Object.freeze({
      now: () => now(),
      setTimeout: (/** @type {() => void} */ callback, /** @type {number} */ ms) => setTimer(callback, ms),
      clearTimeout: (/** @type {unknown} */ handle) => clearTimer(handle),
    });
    this.#auth = Object.freeze({
      isLoaded: false, isSignedIn: false, userId: null, sessionId: null, actor: null,
      impersonation: null, getToken: () => this.getToken(), signOut: () => this.signOut(),
    });
  }

  /** Read the client and mint the first token. Resolves once loaded. */
  async load() {
    const body = await this.#request("GET", "/v1/client");
    const client = /** @type {Client | null} */ (body?.response ?? null);
    this.#document?.addEventListener?.("visibilitychange", this.#onVisibility);
    this.#loaded = true;
    await this.#switchTo(client);
  }

  /** Stop every timer and listener (the React provider calls this on unmount). */
  destroy() {
    this.#epoch += 1;
    this.#cancelTimer();
    this.#document?.removeEventListener?.("visibilitychange", this.#onVisibility);
    this.#listeners.clear();
  }

  /**
   * The auth state, with the names of Clerk's `useAuth()`. The same object is
   * returned until the state changes (a snapshot for `useSyncExternalStore`).
   *
   * @returns {Auth}
   */
  getAuth() {
    return this.#auth;
  }

  /** @returns {Client | null} the browser's client, as last read */
  get client() {
    return this.#client;
  }

  /** @returns {Session | null} the active session (with `impersonation_reason`, `expire_at`) */
  get session() {
    return this.#session;
  }

  /** @returns {User | null} the signed-in user (the impersonated one during an impersonation) */
  get user() {
    return this.#session?.user ?? null;
  }

  /** @returns {Clock} the clock and timers this client runs on (injected in tests) */
  get clock() {
    return this.#clock;
  }

  /**
   * Milliseconds until the active session's hard end (by the server's clock,
   * as estimated from the tokens), or null when signed out.
   */
  sessionTimeLeft() {
    if (!this.#session) return null;
    return Math.max(0, this.#session.expire_at - this.#serverNow());
  }

  /**
   * Subscribe to auth state changes. Returns the unsubscribe function.
   *
   * @param {"change"} event
   * @param {(auth: Auth) => void} callback
   * @returns {() => void}
   */
  on(event, callback) {
    if (event !== "change") throw new TypeError(`Unknown event ${JSON.stringify(event)}; there is only "change".`);
    const listener = (/** @type {Auth} */ auth) => callback(auth);
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /**
   * A session JWT valid for at least a few more seconds (refreshed if not),
   * or null when signed out.
   *
   * @returns {Promise<string | null>}
   */
  async getToken() {
    if (this.#tokenValidFor(GET_TOKEN_MIN_VALIDITY_MS)) return /** @type {Token} */ (this.#token).jwt;
    if (!this.#session) return null;
    try {
      await this.#refresh();
    } catch (error) {
      if (this.#tokenValidFor(0)) return /** @type {Token} */ (this.#token).jwt;
      throw error;
    }
    return this.#token?.jwt ?? null;
  }

  /**
   * End the active session on the server, then be signed out. A session the
   * server no longer knows counts as ended; a network failure rejects and
   * leaves the page signed in (it still is).
   */
  async signOut() {
    const session = this.#session;
    if (!session) return;
    try {
      const body = await this.#request("POST", `${sessionPath(session)}/end`);
      if (body?.client !== undefined) this.#client = body.client;
    } catch (error) {
      if (!(error instanceof ActasRequestError && error.sessionGone)) throw error;
    }
    if (this.#session?.id === session.id) await this.#switchTo(null);
  }

  /**
   * End the impersonation and return to the session it replaced (the
   * operator's own, minting a token for it), or be signed out if none is left.
   */
  async stopImpersonating() {
    const session = this.#session;
    if (!session) throw new Error("Not signed in: there is no impersonation to stop.");
    /** @type {Client | null} */
    let client;
    try {
      client = (await this.#request("POST", `${sessionPath(session)}/stop_impersonating`))?.client ?? null;
    } catch (error) {
      if (!(error instanceof ActasRequestError && error.sessionGone)) throw error;
      // Already over (expired or revoked meanwhile): the client says where we are now.
      client = await this.#request("GET", "/v1/client").then((body) => body?.response ?? null, () => null);
    }
    if (this.#session?.id !== session.id) return;
    if (client?.last_active_session_id === session.id) client = { ...client, last_active_session_id: null };
    await this.#switchTo(client);
  }

  // --- state ---------------------------------------------------------------

  /** Make `client`'s last active session the current one (or none), and mint its token. */
  async #switchTo(/** @type {Client | null} */ client) {
    this.#epoch += 1;
    this.#cancelTimer();
    this.#inflight = null;
    this.#backoffMs = BACKOFF_FIRST_MS;
    const hadToken = this.#token !== null;
    this.#client = client;
    this.#session = client?.sessions?.find((s) => s.id === client.last_active_session_id) ?? null;
    this.#token = null;
    // The old session's token must not outlive it in the cookie.
    if (hadToken || !this.#session) this.#clearCookie();
    this.#publish();
    if (!this.#session) return;
    try {
      await this.#refresh();
    } catch {
      // Retried with backoff; the state already says who is signed in.
    }
  }

  #publish() {
    const session = this.#session;
    // The token's `act` is the authority; before the first token, the session's actor
    // (the same object) keeps the banner from missing an impersonation.
    const actor = (this.#token ? this.#token.claims.act : session?.actor) ?? null;
    const next = {
      isLoaded: this.#loaded,
      isSignedIn: session !== null,
      userId: session?.user?.id ?? null,
      sessionId: session?.id ?? null,
      actor,
      impersonation: impersonationOf(actor, this.#token ? this.#token.claims : null, session),
    };
    if (!sameAuth(this.#auth, next)) {
      this.#auth = Object.freeze({ ...next, getToken: this.#auth.getToken, signOut: this.#auth.signOut });
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#auth);
      } catch (error) {
        console.error("actas: a change listener threw", error);
      }
    }
  }

  #serverNow() {
    return this.#clock.now() + this.#skewMs;
  }

  /** @param {number} ms */
  #tokenValidFor(ms) {
    const token = this.#token;
    if (!token || !this.#session) return false;
    const now = this.#clock.now();
    return token.expiresAt - now > ms && this.#session.expire_at > this.#serverNow();
  }

  // --- refreshing ----------------------------------------------------------

  /** Mint a token for the current session; concurrent callers share one request. */
  #refresh() {
    if (this.#inflight?.epoch !== this.#epoch) {
      const inflight = { epoch: this.#epoch, promise: this.#mint() };
      this.#inflight = inflight;
      inflight.promise.then(
        () => { if (this.#inflight === inflight) this.#inflight = null; },
        () => { if (this.#inflight === inflight) this.#inflight = null; },
      );
    }
    return /** @type {{ promise: Promise<void> }} */ (this.#inflight).promise;
  }

  async #mint() {
    const session = /** @type {Session} */ (this.#session);
    const epoch = this.#epoch;
    this.#cancelTimer();
    try {
      const body = await this.#request("POST", `${sessionPath(session)}/tokens`);
      if (epoch !== this.#epoch) return;
      this.#accept(String(body?.jwt));
    } catch (error) {
      if (epoch !== this.#epoch) return;
      if (error instanceof ActasRequestError && error.sessionGone) {
        await this.#switchTo(this.#client && { ...this.#client, last_active_session_id: null });
        return;
      }
      this.#retryLater();
      throw error;
    }
  }

  /** @param {string} jwt */
  #accept(jwt) {
    const claims = decodeJwt(jwt);
    const receivedAt = this.#clock.now();
    const iat = typeof claims.iat === "number" ? claims.iat : null;
    const exp = typeof claims.exp === "number" ? claims.exp : null;
    // Lifetime and refresh are timed on the local clock from arrival, so a
    // skewed browser clock neither refreshes constantly nor too late.
    const lifetimeMs = exp !== null && iat !== null && exp > iat ? (exp - iat) * 1000 : 60_000;
    if (iat !== null) this.#skewMs = iat * 1000 - receivedAt;
    this.#token = { jwt, claims, receivedAt, expiresAt: receivedAt + lifetimeMs };
    this.#backoffMs = BACKOFF_FIRST_MS;
    this.#writeCookie();
    const session = /** @type {Session} */ (this.#session);
    const untilHardEnd = session.expire_at - this.#serverNow() + HARD_END_GRACE_MS;
    this.#schedule(Math.min(refreshDelay(lifetimeMs), untilHardEnd));
    this.#publish();
  }

  #retryLater() {
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    this.#schedule(delay);
  }

  /** @param {number} delay */
  #schedule(delay) {
    this.#cancelTimer();
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#refresh().catch(() => {});
    }, Math.max(MIN_DELAY_MS, delay));
  }

  #cancelTimer() {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #visibilityChanged() {
    if (this.#document?.visibilityState !== "visible" || !this.#session) return;
    const token = this.#token;
    if (token && this.#clock.now() - token.receivedAt <= FOCUS_STALE_MS) return;
    this.#refresh().catch(() => {});
  }

  // --- the user's say in impersonations of their account ------------------
  // None of these work while someone is impersonating the user (the server
  // answers 403 impersonated_session_forbidden): an impersonator must not
  // answer for the user.

  /**
   * The signed-in user's impersonation preference (`allowed`, `ask`, `never`), the
   * instance's default, and their access requests and grants, newest first.
   * @returns {Promise<AccessState>}
   */
  async getAccess() {
    return (await this.#request("GET", "/v1/me/access")).response;
  }

  /**
   * @param {"allowed" | "ask" | "never" | null} preference null: the instance's default
   * @returns {Promise<AccessState>}
   */
  async setImpersonationPreference(preference) {
    return (await this.#request("PATCH", "/v1/me/access",
      { impersonation_preference: preference })).response;
  }

  /**
   * Say yes to an access request, for a while.
   * @param {string} requestId
   * @param {{ durationInSeconds?: number }} [options] default 24 hours
   * @returns {Promise<AccessRequest>}
   */
  async grantAccess(requestId, { durationInSeconds = DAY_SECONDS } = {}) {
    return (await this.#request("POST", `/v1/me/access_requests/${encodeURIComponent(requestId)}/grant`,
      { duration_in_seconds: durationInSeconds })).response;
  }

  /** @param {string} requestId @returns {Promise<AccessRequest>} */
  async denyAccess(requestId) {
    return (await this.#request("POST", `/v1/me/access_requests/${encodeURIComponent(requestId)}/deny`)).response;
  }

  /**
   * Take a grant back; an impersonation under it ends at once.
   * @param {string} requestId @returns {Promise<AccessRequest>}
   */
  async revokeAccess(requestId) {
    return (await this.#request("POST", `/v1/me/access_requests/${encodeURIComponent(requestId)}/revoke`)).response;
  }

  /**
   * Let support in unasked ("look at my account for 48 h"): any operator, in `mode` at most.
   * @param {{ durationInSeconds?: number, mode?: "read_only" | "full", note?: string }} [options]
   * @returns {Promise<AccessRequest>}
   */
  async offerAccess({ durationInSeconds = DAY_SECONDS, mode = "read_only", note } = {}) {
    return (await this.#request("POST", "/v1/me/access_grants",
      { duration_in_seconds: durationInSeconds, mode, ...(note ? { note } : {}) })).response;
  }

  /**
   * The signed-in user names an operator (`op_…`) or an admin tool (`mc_…`) that may act
   * for them (RFC 8693 `may_act`): the token returned is what your admin tool exchanges
   * at actas's `/oauth/token`, once, within five minutes. It is not a session token and
   * signs nobody in to your application. Refused while someone impersonates the user.
   * @param {string} actor @returns {Promise<string>}
   */
  async authorizeActor(actor) {
    const session = this.#session;
    if (!session) throw new Error("Sign in first: only the user can name who may act for them.");
    const body = await this.#request("POST", `${sessionPath(session)}/tokens/may_act`, { actor });
    return String(body?.jwt);
  }

  /**
   * Impersonations of the signed-in user's account they have not been shown yet,
   * newest first (none while someone is impersonating them).
   * @returns {Promise<ImpersonationNotice[]>}
   */
  async getImpersonationNotices() {
    return (await this.#request("GET", "/v1/me/impersonation_notices")).response;
  }

  /** The user has seen them: they are not shown again. */
  async markImpersonationNoticesSeen() {
    return (await this.#request("POST", "/v1/me/impersonation_notices/seen")).response;
  }

  // --- I/O -----------------------------------------------------------------

  /**
   * @param {"GET" | "POST" | "PATCH"} method
   * @param {string} path
   * @param {object} [payload] the JSON body of a POST or PATCH (default `{}`)
   * @returns {Promise<any>}
   */
  async #request(method, path, payload) {
    /** @type {RequestInit} */
    const init = { method, credentials: "include" };
    if (method !== "GET") {
      // A JSON content type makes this a non-simple request: the server's CSRF check.
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(payload ?? {});
    }
    let response;
    try {
      response = await this.#fetch(this.#api + path, init);
    } catch (cause) {
      throw new ActasRequestError(`${method} ${path}: network error`, { status: 0, cause });
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's error page): the status decides.
    }
    if (!response.ok) {
      const errors = Array.isArray(body?.errors) ? body.errors : [];
      const first = errors[0] ?? {};
      throw new ActasRequestError(
        `${method} ${path}: ${response.status}${first.message ? ` ${first.message}` : ""}`,
        { status: response.status, code: first.code ?? null, errors },
      );
    }
    return body;
  }

  #writeCookie() {
    const token = /** @type {Token} */ (this.#token);
    const session = /** @type {Session} */ (this.#session);
    const untilExpiry = Math.min(token.expiresAt - this.#clock.now(), session.expire_at - this.#serverNow());
    const maxAge = Math.max(0, Math.floor(untilExpiry / 1000));
    this.#setCookie(`${SESSION_COOKIE}=${token.jwt}; path=/; max-age=${maxAge}; samesite=lax`);
  }

  #clearCookie() {
    this.#setCookie(`${SESSION_COOKIE}=; path=/; max-age=0; samesite=lax`);
  }

  /** @param {string} cookie */
  #setCookie(cookie) {
    if (!this.#document) return;
    const location = this.#window?.location ?? this.#document.location;
    this.#document.cookie = cookie + (location?.protocol === "https:" ? "; secure" : "");
  }
}

/** @param {Session} session */
function sessionPath(session) {
  return `/v1/client/sessions/${encodeURIComponent(session.id)}`;
}

// --- the impersonation banner ----------------------------------------------

/**
 * Who is acting as whom, and why: what both banners (this one and React's) say.
 *
 * @param {Actor} actor
 * @param {Session} session
 * @param {Impersonation | null} [impersonation]
 */
export function describeImpersonation(actor, session, impersonation = null) {
  const data = session.public_user_data ?? /** @type {PublicUserData} */ ({});
  const user = session.user ?? /** @type {User} */ ({});
  const first = user.first_name ?? data.first_name;
  const last = user.last_name ?? data.last_name;
  const userLabel = [first, last].filter(Boolean).join(" ") || data.identifier || user.username || user.id;
  const actorLabel = String(actor.name || actor.email || actor.sub);
  const reason = session.impersonation_reason || null;
  const mode = (impersonation ?? impersonationOf(actor, null, session))?.mode ?? "full";
  // Said only when read-only: the banner is how the impersonator knows writes are refused.
  const modeNote = mode === "read_only" ? " (read-only)" : "";
  return {
    userLabel,
    actorLabel,
    reason,
    mode,
    message: `You are signed in as ${userLabel} by ${actorLabel}${modeNote}${reason ? ` · ${reason}` : ""}`,
  };
}

/**
 * "mm:ss" (or "h:mm:ss" from an hour up) for a remaining time, rounded up to the second.
 *
 * @param {number} ms
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/** How long until the countdown's text next changes. @param {number} ms */
export function nextTick(ms) {
  return ms <= 0 ? 1000 : (ms % 1000) || 1000;
}

const DAY_SECONDS = 86_400;

/** A moment as the notices write it: "2025-01-16 09:00 UTC". @param {number} ms */
const when = (ms) => `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;

/**
 * @typedef {{
 *   id: string, status: string, requested_by: Actor | null, reason: string | null,
 *   mode: "read_only" | "full", session_max_duration_in_seconds: number,
 *   expires_at: number, granted_until: number | null, created_at: number,
 * }} AccessRequest
 * status: pending | granted | denied | withdrawn | revoked | lapsed | expired.
 * requested_by null: access the user offered unasked.
 *
 * @typedef {{
 *   impersonation_preference: "allowed" | "ask" | "never",
 *   default_preference: "allowed" | "ask" | "never",
 *   requests: AccessRequest[],
 * }} AccessState
 */

/**
 * @typedef {{
 *   session_id: string, actor: Actor, reason: string | null, mode: "read_only" | "full",
 *   started_at: number, ended_at: number | null, status: string,
 * }} ImpersonationNotice
 */

/**
 * Tell the signed-in user about impersonations of their account since they last
 * looked: ``onNotice(notices)`` is called (the event), and, unless ``toast: false``, a
 * dismissable note is shown at the bottom of the page ("Sam Support signed in to your
 * account on …, read-only: Ticket #42"), linking to ``historyUrl``. Dismissing it marks
 * the notices seen on the server, for every device. Nothing is shown to an impersonator.
 *
 * @param {Actas} actas
 * @param {{
 *   container?: Element,
 *   toast?: boolean,
 *   historyUrl?: string,
 *   onNotice?: (notices: ImpersonationNotice[]) => void,
 *   onError?: (error: unknown) => void,
 * }} [options]
 * @returns {() => void} unmount
 */
export function mountImpersonationNotice(actas, options = {}) {
  const container = options.container ?? /** @type {any} */ (globalThis).document?.body;
  if (!container) throw new TypeError("mountImpersonationNotice needs a container.");
  const doc = container.ownerDocument;
  /** @type {HTMLElement | null} */ let toast = null;
  let gone = false;

  const show = (/** @type {ImpersonationNotice[]} */ notices) => {
    toast = doc.createElement("div");
    toast.setAttribute("role", "status");
    toast.dataset.testid = "actas-impersonation-notice";
    Object.assign(toast.style, {
      position: "fixed", bottom: "1em", right: "1em", left: "1em", maxWidth: "32em",
      marginLeft: "auto", zIndex: "2147483646", padding: "0.75em 1em", boxSizing: "border-box",
      background: "#ffffff", color: "#1b1f24", border: "2px solid #b00020", borderRadius: "8px",
      boxShadow: "0 4px 16px rgba(0, 0, 0, 0.2)", font: "15px/1.45 system-ui, sans-serif",
    });
    const title = doc.createElement("strong");
    title.textContent = notices.length === 1
      ? "Someone from support signed in to your account"
      : `Support signed in to your account ${notices.length} times`;
    const list = doc.createElement("ul");
    list.style.margin = "0.4em 0";
    list.style.paddingLeft = "1.2em";
    for (const n of notices.slice(0, 3)) {
      const item = doc.createElement("li");
      const who = n.actor?.name || n.actor?.email || "Support";
      item.textContent = `${who}, ${when(n.started_at)}${n.mode === "read_only" ? ", read-only" : ""}: ${n.reason ?? "no reason given"}`;
      list.append(item);
    }
    const actions = doc.createElement("div");
    if (options.historyUrl) {
      const link = doc.createElement("a");
      link.href = options.historyUrl;
      link.textContent = "See who accessed your account";
      actions.append(link, doc.createTextNode(" "));
    }
    const dismiss = doc.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Got it";
    dismiss.dataset.testid = "actas-impersonation-notice-dismiss";
    dismiss.addEventListener("click", async () => {
      dismiss.disabled = true;
      try {
        await actas.markImpersonationNoticesSeen();
        toast?.remove();
        toast = null;
      } catch (error) {
        dismiss.disabled = false;
        if (options.onError) options.onError(error);
      }
    });
    actions.append(dismiss);
    toast.append(title, list, actions);
    container.append(toast);
  };

  (async () => {
    const auth = actas.getAuth();
    if (!auth.isSignedIn || auth.actor) return;
    const notices = await actas.getImpersonationNotices();
    if (gone || !notices.length) return;
    options.onNotice?.(notices);
    if (options.toast !== false) show(notices);
  })().catch((error) => {
    if (options.onError) options.onError(error);
  });
  return () => {
    gone = true;
    toast?.remove();
  };
}

const PREFERENCE_LABELS = Object.freeze({
  allowed: "Support may sign in as me when they need to",
  ask: "Support must ask me first",
  never: "Nobody may sign in as me",
});

/**
 * Render the user's say in impersonations into `container`: access requests waiting for
 * an answer (grant for a while, or deny), grants in force (revoke), the preference, and
 * an offer of access. Plain DOM, text only (names and reasons are never parsed as HTML),
 * no styles of its own beyond layout: the page's CSS applies. While someone is
 * impersonating the user it shows only why it is unavailable.
 *
 * @param {Actas} actas
 * @param {{
 *   container: Element,
 *   grantSeconds?: number,
 *   offerSeconds?: number,
 *   onChange?: (state: AccessState) => void,
 *   onError?: (error: unknown) => void,
 * }} options
 * @returns {() => void} unmount
 */
export function mountAccessRequests(actas, options) {
  const { container, grantSeconds = DAY_SECONDS, offerSeconds = 2 * DAY_SECONDS } = options;
  const doc = container.ownerDocument;
  const root = doc.createElement("div");
  root.dataset.testid = "actas-access";
  container.append(root);
  let gone = false;

  const el = (/** @type {string} */ tag, /** @type {string} */ text = "", testid = "") => {
    const node = doc.createElement(tag);
    if (text) node.textContent = text;
    if (testid) node.dataset.testid = testid;
    return node;
  };
  const who = (/** @type {AccessRequest} */ r) =>
    r.requested_by ? (r.requested_by.name || r.requested_by.email || r.requested_by.sub) : "Support";
  const button = (/** @type {string} */ label, /** @type {() => Promise<unknown>} */ action, testid = "") => {
    const b = /** @type {HTMLButtonElement} */ (el("button", label, testid));
    b.type = "button";
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await action();
        await refresh();
      } catch (error) {
        b.disabled = false;
        if (options.onError) options.onError(error);
        else console.error("actas:", error);
      }
    });
    return b;
  };

  const render = (/** @type {AccessState} */ state) => {
    const waiting = state.requests.filter((r) => r.status === "pending");
    const granted = state.requests.filter((r) => r.status === "granted");
    const parts = [];
    for (const r of waiting) {
      const item = el("div", "", "actas-access-request");
      item.setAttribute("role", "group");
      item.setAttribute("aria-label", `Access request from ${who(r)}`);
      const minutes = Math.round(r.session_max_duration_in_seconds / 60);
      item.append(el("p", `${who(r)} asks to sign in as you${r.mode === "read_only" ? ", read-only" : ""}, for up to ${minutes} min at a time: “${r.reason ?? "no reason given"}”. Answer by ${when(r.expires_at)}.`));
      const hours = Math.round(grantSeconds / 3600);
      item.append(button(`Allow for ${hours} hours`, () => actas.grantAccess(r.id, { durationInSeconds: grantSeconds }), "actas-access-grant"),
        doc.createTextNode(" "), button("Deny", () => actas.denyAccess(r.id), "actas-access-deny"));
      parts.push(item);
    }
    for (const r of granted) {
      const item = el("div", "", "actas-access-grant-active");
      item.append(el("p", `${r.requested_by ? who(r) : "Support"} may sign in as you${r.mode === "read_only" ? " (read-only)" : ""} until ${when(/** @type {number} */ (r.granted_until))}.`),
        button("Revoke now", () => actas.revokeAccess(r.id), "actas-access-revoke"));
      parts.push(item);
    }
    if (!waiting.length && !granted.length) parts.push(el("p", "Nobody is asking for access to your account.", "actas-access-none"));

    const label = el("label", "Who may sign in as you ");
    const select = /** @type {HTMLSelectElement} */ (el("select", "", "actas-access-preference"));
    for (const value of /** @type {const} */ (["allowed", "ask", "never"])) {
      const option = /** @type {HTMLOptionElement} */ (el("option", PREFERENCE_LABELS[value]));
      option.value = value;
      option.selected = value === state.impersonation_preference;
      select.append(option);
    }
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        await actas.setImpersonationPreference(/** @type {any} */ (select.value));
        await refresh();
      } catch (error) {
        select.disabled = false;
        if (options.onError) options.onError(error);
      }
    });
    label.append(select);
    const hours = Math.round(offerSeconds / 3600);
    const offer = button(`Let support look at my account for ${hours} hours`,
      () => actas.offerAccess({ durationInSeconds: offerSeconds }), "actas-access-offer");
    root.replaceChildren(...parts, label, doc.createTextNode(" "), offer);
    options.onChange?.(state);
  };

  const refresh = async () => {
    if (gone) return;
    if (actas.getAuth().actor) {
      root.replaceChildren(el("p", "Not available while someone is acting as you.", "actas-access-unavailable"));
      return;
    }
    const state = await actas.getAccess();
    if (!gone) render(state);
  };
  refresh().catch((error) => {
    if (options.onError) options.onError(error);
    else console.error("actas:", error);
  });
  return () => {
    gone = true;
    root.remove();
  };
}

// White on #b00020: contrast 7.3:1 (WCAG AA asks 4.5:1).
export const BANNER_COLORS = Object.freeze({ background: "#b00020", text: "#ffffff" });

/**
 * Show a fixed bar at the top of the page whenever someone is acting as the
 * user: who, by whom, why, a countdown to the session's hard end, and a
 * "Stop impersonating" button. Styles are set through the CSSOM, so a strict
 * Content-Security-Policy (no 'unsafe-inline' styles) does not strip them.
 *
 * @param {Actas} actas
 * @param {{
 *   container?: Element,
 *   onStopped?: () => void,
 *   onError?: (error: unknown) => void,
 * }} [options]
 * @returns {() => void} unmount
 */
export function mountImpersonationBanner(actas, options = {}) {
  const container = options.container ?? /** @type {any} */ (globalThis).document?.body;
  if (!container) throw new TypeError("mountImpersonationBanner needs a container (no document.body here).");
  const doc = container.ownerDocument;
  const clock = actas.clock;
  /** @type {HTMLElement | null} */ let banner = null;
  /** @type {HTMLElement | null} */ let countdown = null;
  /** @type {string | null} */ let shownFor = null;
  /** @type {unknown} */ let timer = null;
  // The bar is fixed over the top of the page: the container gets top padding of the
  // bar's height (kept as the bar wraps or the window resizes), so that it hides nothing.
  /** @type {string | null} */ let paddingBefore = null;
  /** @type {{ disconnect(): void } | null} */ let resizeWatch = null;
  const reserveSpace = () => {
    if (!banner || !(/** @type {any} */ (container)).style) return;
    const style = /** @type {HTMLElement} */ (container).style;
    if (paddingBefore === null) paddingBefore = style.paddingTop;
    style.paddingTop = `${banner.offsetHeight}px`;
  };
  const releaseSpace = () => {
    resizeWatch?.disconnect();
    resizeWatch = null;
    if (paddingBefore !== null) /** @type {HTMLElement} */ (container).style.paddingTop = paddingBefore;
    paddingBefore = null;
  };

  const stopTicking = () => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
  };
  const tick = () => {
    timer = null;
    const left = actas.sessionTimeLeft() ?? 0;
    if (countdown) countdown.textContent = formatCountdown(left);
    timer = clock.setTimeout(tick, nextTick(left));
  };
  const remove = () => {
    stopTicking();
    releaseSpace();
    banner?.remove();
    banner = countdown = shownFor = null;
  };

  const render = () => {
    const { actor, impersonation } = actas.getAuth();
    const session = actas.session;
    if (!actor || !session) return remove();
    const key = JSON.stringify([session.id, actor, session.impersonation_reason, impersonation?.mode]);
    if (key === shownFor) return;
    remove();
    shownFor = key;
    const { message } = describeImpersonation(actor, session, impersonation);

    banner = doc.createElement("div");
    banner.setAttribute("role", "region");
    banner.setAttribute("aria-label", "Impersonation");
    banner.dataset.testid = "actas-impersonation-banner";
    Object.assign(banner.style, {
      position: "fixed", top: "0", left: "0", right: "0", zIndex: "2147483647",
      display: "flex", flexWrap: "wrap", alignItems: "center", justifyContent: "center",
      gap: "0.75em", padding: "0.5em 1em", margin: "0", boxSizing: "border-box",
      background: BANNER_COLORS.background, color: BANNER_COLORS.text,
      font: "600 15px/1.4 system-ui, sans-serif", textAlign: "center",
      boxShadow: "0 2px 6px rgba(0, 0, 0, 0.35)",
    });

    // Announced once; the countdown lives outside the live region so that
    // screen readers are not interrupted every second.
    const live = doc.createElement("span");
    live.setAttribute("aria-live", "polite");
    const ends = doc.createElement("span");
    ends.style.whiteSpace = "nowrap";  // "ends in 29:59" never breaks in two
    ends.append(" · ends in ");
    countdown = doc.createElement("span");
    countdown.dataset.testid = "actas-countdown";
    countdown.style.fontVariantNumeric = "tabular-nums";
    countdown.setAttribute("role", "timer");
    countdown.textContent = formatCountdown(actas.sessionTimeLeft() ?? 0);
    ends.append(countdown);

    const button = doc.createElement("button");
    button.type = "button";
    button.dataset.testid = "actas-stop-impersonating";
    button.textContent = "Stop impersonating";
    Object.assign(button.style, {
      background: BANNER_COLORS.text, color: BANNER_COLORS.background, font: "inherit",
      border: `2px solid ${BANNER_COLORS.text}`, borderRadius: "4px", padding: "0.2em 0.8em",
      cursor: "pointer", outline: "none",
    });
    // A visible focus ring, white on the red bar, set without a stylesheet.
    button.addEventListener("focus", () => {
      button.style.outline = `3px solid ${BANNER_COLORS.text}`;
      button.style.outlineOffset = "2px";
    });
    button.addEventListener("blur", () => { button.style.outline = "none"; });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await actas.stopImpersonating();
        options.onStopped?.();
      } catch (error) {
        if (options.onError) options.onError(error);
        else console.error("actas: could not stop impersonating", error);
      } finally {
        button.disabled = false;
      }
    });

    banner.append(live, ends, button);
    container.prepend(banner);
    live.textContent = message;
    reserveSpace();
    const Observer = /** @type {any} */ (doc.defaultView)?.ResizeObserver;
    if (Observer) {
      resizeWatch = new Observer(reserveSpace);
      /** @type {any} */ (resizeWatch).observe(banner);
    }
    tick();
  };

  const unsubscribe = actas.on("change", render);
  render();
  return () => {
    unsubscribe();
    remove();
  };
}

export default Actas;
