import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";

import Default, { Actas, ActasRequestError, VERSION, decodeJwt, refreshDelay } from "../src/actas.js";
import { ACTOR, JANE, ORIGIN, SAM, base64url, environment, unsignedJwt } from "./support.js";

const SECOND = 1000;

async function signedIn(settings = {}, session = {}) {
  const env = environment(settings);
  env.server.addSession({ id: "sess_jane", ...session });
  const actas = await Actas.load(env.options);
  const events = [];
  actas.on("change", (auth) => events.push(auth));
  return { ...env, actas, events };
}

async function impersonating({ withOperatorSession = true, expireIn = 30 * 60 * SECOND } = {}) {
  const env = environment();
  if (withOperatorSession) env.server.addSession({ id: "sess_sam", user: SAM });
  env.server.addSession({
    id: "sess_imp", user: JANE, actor: ACTOR, reason: "Ticket #42: cannot see invoices",
    expireIn, returnTo: withOperatorSession ? "sess_sam" : null,
  });
  const actas = await Actas.load(env.options);
  const events = [];
  actas.on("change", (auth) => events.push(auth));
  return { ...env, actas, events };
}

describe("load", () => {
  test("reads the client, mints the first token, writes the cookie", async () => {
    const { server, document, actas } = await signedIn();

    const [getClient, mint] = server.requests;
    assert.equal(server.requests.length, 2);
    assert.equal(getClient.url, `${ORIGIN}/v1/client`);
    assert.equal(getClient.method, "GET");
    assert.equal(getClient.credentials, "include");
    assert.equal(mint.url, `${ORIGIN}/v1/client/sessions/sess_jane/tokens`);
    assert.equal(mint.method, "POST");
    assert.equal(mint.credentials, "include");
    assert.deepEqual(mint.headers, { "Content-Type": "application/json" });
    assert.equal(mint.body, "{}");

    const auth = actas.getAuth();
    assert.equal(auth.isLoaded, true);
    assert.equal(auth.isSignedIn, true);
    assert.equal(auth.userId, "user_jane");
    assert.equal(auth.sessionId, "sess_jane");
    assert.equal(auth.actor, null);
    const jwt = await auth.getToken();
    assert.equal(decodeJwt(jwt).sid, "sess_jane");
    assert.equal(server.requests.length, 2, "a fresh token is not re-minted");
    assert.equal(document.lastCookie, `__session=${jwt}; path=/; max-age=60; samesite=lax; secure`);
    assert.equal(actas.user.first_name, "Jane");
    assert.equal(actas.session.id, "sess_jane");
    assert.equal(actas.client.id, "client_1");
  });

  test("no secure flag on an http page", async () => {
    const { document } = await signedIn({ protocol: "http:" });
    assert.match(document.lastCookie, /; samesite=lax$/);
  });

  test("a browser without a client is loaded and signed out, and a stale cookie is cleared", async () => {
    const env = environment();
    const actas = await Actas.load(env.options);
    assert.deepEqual(
      { ...actas.getAuth(), getToken: null, signOut: null },
      { isLoaded: true, isSignedIn: false, userId: null, sessionId: null, actor: null, impersonation: null, getToken: null, signOut: null },
    );
    assert.equal(env.server.requests.length, 1);
    assert.equal(env.document.lastCookie, "__session=; path=/; max-age=0; samesite=lax; secure");
    assert.equal(await actas.getAuth().getToken(), null);
    assert.equal(actas.user, null);
    assert.equal(actas.sessionTimeLeft(), null);
    assert.deepEqual(env.clock.pending, []);
  });

  test("the impersonated session's actor is the token's act claim", async () => {
    const { actas } = await impersonating();
    const auth = actas.getAuth();
    assert.equal(auth.userId, "user_jane");
    assert.equal(auth.sessionId, "sess_imp");
    assert.deepEqual(auth.actor, ACTOR);
    assert.deepEqual({ ...auth.impersonation }, { mode: "full", readOnly: false });
    assert.equal(actas.session.impersonation_reason, "Ticket #42: cannot see invoices");
  });

  test("a read-only impersonation says so from the token's act_mode", async () => {
    const env = environment();
    env.server.addSession({ id: "sess_imp", actor: ACTOR, mode: "read_only" });
    const actas = await Actas.load(env.options);
    assert.deepEqual({ ...actas.getAuth().impersonation }, { mode: "read_only", readOnly: true });
  });

  test("an impersonation is visible before its first token arrives", async () => {
    const env = environment();
    env.server.addSession({ id: "sess_imp", actor: ACTOR });
    env.server.fail("/tokens", "network");
    const actas = await Actas.load(env.options);
    assert.deepEqual(actas.getAuth().actor, ACTOR);
  });

  test("rejects when the client cannot be read", async () => {
    const env = environment();
    env.server.fail("/v1/client", { status: 503, body: null });
    await assert.rejects(Actas.load(env.options), (error) => {
      assert.ok(error instanceof ActasRequestError);
      assert.equal(error.status, 503);
      return true;
    });
  });

  test("a first token that cannot be minted yet is retried in the background", async () => {
    const env = environment();
    env.server.addSession({ id: "sess_jane" });
    env.server.fail("/tokens", "network");
    const actas = await Actas.load(env.options);
    assert.equal(actas.getAuth().isSignedIn, true);
    assert.deepEqual(env.clock.pending, [SECOND]);
    await env.clock.advance(SECOND);
    assert.equal(env.server.calls("/tokens").length, 2);
    assert.ok(await actas.getToken());
  });

  test("the snapshot keeps its identity until the state changes", async () => {
    const { actas, clock } = await signedIn();
    const before = actas.getAuth();
    await clock.advance(50 * SECOND); // a refresh: same user, same session
    assert.equal(actas.getAuth(), before);
  });

  test("exports", () => {
    assert.equal(Default, Actas);
    assert.throws(() => new Actas({}), TypeError);
  });

  test("VERSION is the package's version", async () => {
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(VERSION, pkg.version);
  });
});

describe("refresh loop", () => {
  test("a 60 s token is refreshed once, at 50 s, and then every 50 s", async () => {
    const { server, clock, document } = await signedIn();
    await clock.advance(49.9 * SECOND);
    assert.equal(server.calls("/tokens").length, 1);
    await clock.advance(0.1 * SECOND);
    assert.equal(server.calls("/tokens").length, 2);
    assert.equal(server.calls("/tokens")[1].at - server.calls("/tokens")[0].at, 50 * SECOND);
    assert.match(document.lastCookie, /max-age=60/);
    await clock.advance(49 * SECOND);
    assert.equal(server.calls("/tokens").length, 2);
    await clock.advance(1 * SECOND);
    assert.equal(server.calls("/tokens").length, 3);
  });

  test("a 10 s token is refreshed at 5 s", async () => {
    const { server, clock } = await signedIn({ lifetime: 10 });
    await clock.advance(4.9 * SECOND);
    assert.equal(server.calls("/tokens").length, 1);
    await clock.advance(0.1 * SECOND);
    assert.equal(server.calls("/tokens").length, 2);
  });

  test("refreshDelay", () => {
    assert.equal(refreshDelay(60 * SECOND), 50 * SECOND);
    assert.equal(refreshDelay(300 * SECOND), 290 * SECOND);
    assert.equal(refreshDelay(10 * SECOND), 5 * SECOND);
    assert.equal(refreshDelay(20 * SECOND), 10 * SECOND);
    assert.equal(refreshDelay(1 * SECOND), 1 * SECOND);
    assert.equal(refreshDelay(0), 1 * SECOND);
  });

  test("tab focus refreshes a token older than 5 s, not a fresh one", async () => {
    const { server, clock, document } = await signedIn();
    await clock.advance(3 * SECOND);
    document.setVisibility("hidden");
    document.setVisibility("visible");
    await clock.advance(0);
    assert.equal(server.calls("/tokens").length, 1);

    await clock.advance(17 * SECOND);
    document.setVisibility("hidden");
    await clock.advance(0);
    assert.equal(server.calls("/tokens").length, 1, "hiding the tab refreshes nothing");
    document.setVisibility("visible");
    await clock.advance(0);
    assert.equal(server.calls("/tokens").length, 2);

    // The loop restarts from the new token: next refresh 50 s after it, not before.
    await clock.advance(49 * SECOND);
    assert.equal(server.calls("/tokens").length, 2);
    await clock.advance(1 * SECOND);
    assert.equal(server.calls("/tokens").length, 3);
  });

  test("an impersonation is refreshed at its hard end, which signs it out promptly", async () => {
    const { server, clock, actas, events } = await impersonating({ withOperatorSession: false, expireIn: 20 * SECOND });
    assert.equal(actas.sessionTimeLeft(), 20 * SECOND);
    await clock.advance(20.4 * SECOND);
    assert.equal(server.calls("/tokens").length, 1);
    await clock.advance(0.1 * SECOND);
    assert.equal(server.calls("/tokens").length, 2);
    assert.equal(actas.getAuth().isSignedIn, false);
    assert.equal(events.at(-1).actor, null);
    assert.deepEqual(clock.pending, []);
  });

  test("the hard end is timed on the server's clock, estimated from the token", async () => {
    const env = environment({ skewMs: 3 * 60 * SECOND }); // the browser's clock is 3 min slow
    env.server.addSession({ id: "sess_imp", actor: ACTOR, expireIn: 30 * SECOND });
    const actas = await Actas.load(env.options);
    assert.equal(actas.sessionTimeLeft(), 30 * SECOND);
    await env.clock.advance(31 * SECOND);
    assert.equal(actas.getAuth().isSignedIn, false);
  });

  test("a token past the session's hard end is never handed out", async () => {
    const env = environment();
    env.server.addSession({ id: "sess_imp", actor: ACTOR, expireIn: 20 * SECOND });
    const actas = await Actas.load(env.options);
    env.server.fail("/tokens", "network", "network", "network");
    await env.clock.advance(21 * SECOND);
    assert.equal(actas.getAuth().isSignedIn, true, "unknown yet: the server did not answer");
    await assert.rejects(actas.getToken(), ActasRequestError);
  });
});

describe("revoked or expired session", () => {
  const cases = [
    ["400 session_not_active", (server) => { server.sessions[0].status = "revoked"; }],
    ["401 signed_out", (server) => server.fail("/tokens", { status: 401, body: { errors: [{ code: "signed_out" }] } })],
    ["404 resource_not_found", (server) => { server.sessions.length = 0; }],
    ["403 user_banned", (server) => server.fail("/tokens", { status: 403, body: { errors: [{ code: "user_banned" }] } })],
  ];
  for (const [name, revoke] of cases) {
    test(`${name}: signed out, event fired, cookie cleared, no more refreshing`, async () => {
      const { server, clock, document, actas, events } = await signedIn();
      revoke(server);
      await clock.advance(50 * SECOND);
      assert.equal(server.calls("/tokens").length, 2);
      assert.equal(actas.getAuth().isSignedIn, false);
      assert.equal(actas.getAuth().userId, null);
      assert.equal(actas.session, null);
      assert.equal(events.at(-1).isSignedIn, false);
      assert.equal(document.lastCookie, "__session=; path=/; max-age=0; samesite=lax; secure");
      assert.deepEqual(clock.pending, []);
      document.setVisibility("visible");
      await clock.advance(10 * 60 * SECOND);
      assert.equal(server.calls("/tokens").length, 2);
      assert.equal(await actas.getToken(), null);
    });
  }
});

describe("network errors and 5xx", () => {
  test("are retried with growing backoff capped at 30 s, keeping the valid token", async () => {
    const { server, clock, actas } = await signedIn();
    const token = await actas.getToken();
    server.fail("/tokens", "network", { status: 502, body: null }, { status: 500 }, "network",
      "network", "network", "network", "network");
    clock.delays.length = 0;
    await clock.advance(50 * SECOND); // the scheduled refresh fails
    assert.deepEqual(clock.delays, [1 * SECOND]);
    assert.equal(actas.getAuth().isSignedIn, true);
    assert.equal(await actas.getToken(), token, "still valid for 10 s: kept");

    await clock.advance(1 * SECOND + 2 * SECOND + 4 * SECOND + 8 * SECOND + 16 * SECOND + 30 * SECOND + 30 * SECOND);
    assert.deepEqual(clock.delays,
      [1, 2, 4, 8, 16, 30, 30, 30].map((s) => s * SECOND));
    assert.equal(server.calls("/tokens").length, 1 + 8);
    assert.equal(actas.getAuth().isSignedIn, true, "an outage is not a sign-out");

    // The server is back: the next retry succeeds and the normal rhythm resumes.
    await clock.advance(30 * SECOND);
    assert.equal(server.calls("/tokens").length, 10);
    assert.deepEqual(clock.pending, [50 * SECOND]);
  });

  test("never a tight loop: an hour of outage costs a bounded number of requests", async () => {
    const { server, clock } = await signedIn();
    server.fail("/tokens", ...Array(10_000).fill("network"));
    await clock.advance(60 * 60 * SECOND);
    const calls = server.calls("/tokens").length;
    assert.ok(calls > 100 && calls < 130, `${calls} token requests in an hour`);
    assert.ok(clock.delays.every((ms) => ms >= SECOND));
  });

  test("getToken rejects when the token has expired and the server cannot be reached", async () => {
    const { server, clock, actas } = await signedIn();
    server.fail("/tokens", ...Array(20).fill("network"));
    await clock.advance(61 * SECOND);
    await assert.rejects(actas.getToken(), (error) => error instanceof ActasRequestError && error.status === 0);
  });
});

describe("getToken", () => {
  test("refreshes a token that expires within 5 s", async () => {
    const { server, clock, actas } = await signedIn();
    clock.timers.clear(); // only getToken may refresh in this test
    await clock.advance(54 * SECOND);
    const old = await actas.getToken();
    assert.equal(server.calls("/tokens").length, 1, "6 s left: fresh enough");
    await clock.advance(1.5 * SECOND);
    const fresh = await actas.getToken();
    assert.equal(server.calls("/tokens").length, 2);
    assert.notEqual(fresh, old);
    assert.equal(decodeJwt(fresh).iat * SECOND, clock.now() - (clock.now() % SECOND));
  });

  test("concurrent callers share one request", async () => {
    const { server, clock, actas } = await signedIn();
    clock.timers.clear(); // only getToken may refresh in this test
    await clock.advance(58 * SECOND);
    const tokens = await Promise.all([actas.getToken(), actas.getToken(), actas.getAuth().getToken()]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(server.calls("/tokens").length, 2);
  });
});

describe("signOut", () => {
  test("ends the session on the server, clears the cookie, stops refreshing", async () => {
    const { server, clock, document, actas, events } = await signedIn();
    await actas.getAuth().signOut();
    const [end] = server.calls("/end");
    assert.equal(end.url, `${ORIGIN}/v1/client/sessions/sess_jane/end`);
    assert.equal(end.method, "POST");
    assert.equal(end.credentials, "include");
    assert.deepEqual(end.headers, { "Content-Type": "application/json" });
    assert.equal(end.body, "{}");
    assert.equal(actas.getAuth().isSignedIn, false);
    assert.equal(events.at(-1).isSignedIn, false);
    assert.equal(document.lastCookie, "__session=; path=/; max-age=0; samesite=lax; secure");
    assert.deepEqual(clock.pending, []);
    assert.equal(await actas.getToken(), null);
    await actas.signOut(); // already signed out: nothing to do
    assert.equal(server.calls("/end").length, 1);
  });

  test("a session the server already ended counts as signed out", async () => {
    const { server, actas } = await signedIn();
    server.sessions[0].status = "revoked";
    await actas.signOut();
    assert.equal(actas.getAuth().isSignedIn, false);
  });

  test("a network failure rejects and leaves the page signed in", async () => {
    const { server, actas } = await signedIn();
    server.fail("/end", "network");
    await assert.rejects(actas.signOut(), ActasRequestError);
    assert.equal(actas.getAuth().isSignedIn, true);
  });
});

describe("stopImpersonating", () => {
  test("returns to the operator's own session, with a token for it", async () => {
    const { server, document, actas, events } = await impersonating();
    assert.deepEqual(actas.getAuth().actor, ACTOR);
    events.length = 0;

    await actas.stopImpersonating();

    const [stop] = server.calls("/stop_impersonating");
    assert.equal(stop.url, `${ORIGIN}/v1/client/sessions/sess_imp/stop_impersonating`);
    assert.equal(stop.method, "POST");
    assert.equal(stop.credentials, "include");
    assert.deepEqual(stop.headers, { "Content-Type": "application/json" });
    assert.equal(stop.body, "{}");
    const last = server.requests.at(-1);
    assert.equal(last.path, "/v1/client/sessions/sess_sam/tokens");

    const auth = actas.getAuth();
    assert.equal(auth.isSignedIn, true);
    assert.equal(auth.userId, "user_sam");
    assert.equal(auth.sessionId, "sess_sam");
    assert.equal(auth.actor, null);
    assert.equal(actas.user.first_name, "Sam");
    assert.equal(decodeJwt(await actas.getToken()).sid, "sess_sam");
    assert.equal(events[0].actor, null, "the banner goes as soon as the impersonation ends");
    const cookies = document.cookies.slice(-2);
    assert.match(cookies[0], /^__session=; path=\/; max-age=0/, "the impersonation's token leaves the cookie first");
    assert.match(cookies[1], /^__session=ey/);
  });

  test("signed out when the operator has no session left in this browser", async () => {
    const { actas, clock } = await impersonating({ withOperatorSession: false });
    await actas.stopImpersonating();
    assert.equal(actas.getAuth().isSignedIn, false);
    assert.deepEqual(clock.pending, []);
  });

  test("an impersonation that already ended still lands on the operator's session", async () => {
    const { server, actas } = await impersonating();
    server.sessions.find((s) => s.id === "sess_imp").status = "revoked";
    server.lastActive = "sess_sam";
    await actas.stopImpersonating();
    assert.equal(actas.getAuth().sessionId, "sess_sam");
  });

  test("a network failure rejects and changes nothing", async () => {
    const { server, actas } = await impersonating();
    server.fail("/stop_impersonating", "network");
    await assert.rejects(actas.stopImpersonating(), ActasRequestError);
    assert.deepEqual(actas.getAuth().actor, ACTOR);
  });
});

describe("events", () => {
  test("on('change') returns its unsubscribe function", async () => {
    const { actas, clock } = await signedIn();
    const seen = [];
    const off = actas.on("change", (auth) => seen.push(auth.isSignedIn));
    await clock.advance(50 * SECOND);
    off();
    await actas.signOut();
    assert.deepEqual(seen, [true]);
    assert.throws(() => actas.on("chnage", () => {}), TypeError);
  });

  test("a throwing listener does not stop the others", async (t) => {
    t.mock.method(console, "error", () => {});
    const { actas } = await signedIn();
    const seen = [];
    actas.on("change", () => { throw new Error("boom"); });
    actas.on("change", (auth) => seen.push(auth.isSignedIn));
    await actas.signOut();
    assert.deepEqual(seen, [false]);
  });

  test("destroy stops timers and listeners", async () => {
    const { actas, clock, document, server } = await signedIn();
    actas.destroy();
    assert.deepEqual(clock.pending, []);
    document.setVisibility("visible");
    await clock.advance(5 * 60 * SECOND);
    assert.equal(server.calls("/tokens").length, 1);
  });
});

describe("decodeJwt", () => {
  test("decodes base64url JSON, any padding, non-ASCII", () => {
    for (const name of ["a", "ab", "abc", "Zoë ✓"]) {
      assert.deepEqual(decodeJwt(unsignedJwt({ sub: "user_1", name })), { sub: "user_1", name });
    }
    assert.deepEqual(decodeJwt(`x.${base64url('{"a":"?>?"}')}.y`), { a: "?>?" });
  });

  test("refuses what is not a JWT with an object payload", () => {
    assert.throws(() => decodeJwt("abc"), TypeError);
    assert.throws(() => decodeJwt(`x.${base64url("[1]")}.y`), TypeError);
    assert.throws(() => decodeJwt("x.!!!.y"));
  });
});
