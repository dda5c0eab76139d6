import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { JSDOM } from "jsdom";

import { Actas, mountAccessRequests, mountImpersonationNotice } from "../src/actas.js";
import { ACTOR, environment, settle } from "./support.js";

const HOUR = 3600;
const T = Date.UTC(2025, 0, 16, 9, 0, 0);

const pending = {
  id: "areq_1", status: "pending", requested_by: { sub: "op_sam", name: "Sam Support" },
  reason: "Ticket #42: <b>refunds</b>", mode: "read_only", session_max_duration_in_seconds: 1800,
  expires_at: T, granted_until: null, created_at: T - 1000,
};
const granted = { ...pending, id: "areq_2", status: "granted", granted_until: T };
const state = (requests, preference = "ask") => ({
  response: { impersonation_preference: preference, default_preference: "allowed", requests },
  client: null,
});
const reply = (body) => ({ status: 200, body });

let body;
beforeEach(() => {
  body = new JSDOM("<!doctype html><html><body></body></html>").window.document.body;
});

async function signedIn({ actor = null } = {}) {
  const env = environment();
  env.server.addSession({ id: "sess_jane", actor });
  const actas = await Actas.load(env.options);
  return { ...env, actas };
}

describe("the user's say, in the browser client", () => {
  test("each call goes to its endpoint with a JSON body, as the CSRF check wants", async () => {
    const { actas, server } = await signedIn();
    server.fail("/v1/me/access", reply(state([pending])));
    assert.equal((await actas.getAccess()).requests[0].id, "areq_1");
    server.fail("/grant", reply({ response: granted }));
    await actas.grantAccess("areq_1", { durationInSeconds: 2 * HOUR });
    server.fail("/deny", reply({ response: pending }));
    await actas.denyAccess("areq_1");
    server.fail("/revoke", reply({ response: pending }));
    await actas.revokeAccess("areq_2");
    server.fail("/v1/me/access_grants", reply({ response: granted }));
    await actas.offerAccess({ durationInSeconds: 48 * HOUR, note: "invoices" });
    server.fail("/v1/me/access", reply(state([], "never")));
    await actas.setImpersonationPreference("never");

    const sent = server.requests.filter((r) => r.path.startsWith("/v1/me/"))
      .map((r) => [r.method, r.path, r.body ?? null, r.headers["Content-Type"] ?? null]);
    assert.deepEqual(sent, [
      ["GET", "/v1/me/access", null, null],
      ["POST", "/v1/me/access_requests/areq_1/grant", '{"duration_in_seconds":7200}', "application/json"],
      ["POST", "/v1/me/access_requests/areq_1/deny", "{}", "application/json"],
      ["POST", "/v1/me/access_requests/areq_2/revoke", "{}", "application/json"],
      ["POST", "/v1/me/access_grants", '{"duration_in_seconds":172800,"mode":"read_only","note":"invoices"}', "application/json"],
      ["PATCH", "/v1/me/access", '{"impersonation_preference":"never"}', "application/json"],
    ]);
  });

  test("authorizeActor asks for a may_act token for the session, naming the actor", async () => {
    const { actas, server } = await signedIn();
    server.fail("/tokens/may_act", reply({ object: "token", jwt: "h.p.s" }));
    assert.equal(await actas.authorizeActor("op_sam"), "h.p.s");
    const [sent] = server.requests.filter((r) => r.path.endsWith("/tokens/may_act"));
    assert.equal(sent.method, "POST");
    assert.equal(sent.path, "/v1/client/sessions/sess_jane/tokens/may_act");
    assert.equal(sent.body, '{"actor":"op_sam"}');
  });

  test("mountAccessRequests shows who asks and why, as text, and grants on a click", async () => {
    const { actas, server } = await signedIn();
    server.fail("/v1/me/access", reply(state([pending])));
    mountAccessRequests(actas, { container: body });
    await settle();
    const request = body.querySelector("[data-testid=actas-access-request]");
    assert.match(request.textContent, /Sam Support asks to sign in as you, read-only, for up to 30 min/);
    assert.match(request.textContent, /<b>refunds<\/b>/, "a reason is text, never markup");
    assert.equal(request.querySelector("b"), null);

    server.fail("/grant", reply({ response: granted }));
    server.fail("/v1/me/access", reply(state([granted])));
    request.querySelector("[data-testid=actas-access-grant]").click();
    await settle();
    await settle();
    assert.ok(server.calls("/v1/me/access_requests/areq_1/grant").length === 1);
    const active = body.querySelector("[data-testid=actas-access-grant-active]");
    assert.match(active.textContent, /Sam Support may sign in as you \(read-only\) until 2025-01-16 09:00 UTC/);
    assert.equal(body.querySelector("[data-testid=actas-access-preference]").value, "ask");
  });

  test("an impersonator is shown nothing to answer", async () => {
    const { actas, server } = await signedIn({ actor: ACTOR });
    mountAccessRequests(actas, { container: body });
    await settle();
    assert.ok(body.querySelector("[data-testid=actas-access-unavailable]"));
    assert.equal(server.calls("/v1/me/access").length, 0);
  });
});

describe("mountImpersonationNotice", () => {
  const notice = {
    session_id: "sess_imp", actor: { sub: "op_sam", name: "Sam Support" }, reason: "Ticket #42",
    mode: "read_only", started_at: T, ended_at: T + 60_000, status: "ended",
  };

  test("tells the user, calls back, and marks the notices seen when dismissed", async () => {
    const { actas, server } = await signedIn();
    server.fail("/v1/me/impersonation_notices", reply({ response: [notice], client: null }));
    const told = [];
    mountImpersonationNotice(actas, { container: body, historyUrl: "/account#access",
                                      onNotice: (n) => told.push(n) });
    await settle();
    await settle();
    assert.equal(told.length, 1);
    const toast = body.querySelector("[data-testid=actas-impersonation-notice]");
    assert.match(toast.textContent, /Sam Support, 2025-01-16 09:00 UTC, read-only: Ticket #42/);
    assert.equal(toast.querySelector("a").getAttribute("href"), "/account#access");
    server.fail("/v1/me/impersonation_notices/seen", reply({ response: { seen_at: T }, client: null }));
    toast.querySelector("[data-testid=actas-impersonation-notice-dismiss]").click();
    await settle();
    assert.equal(server.calls("/v1/me/impersonation_notices/seen").length, 1);
    assert.equal(body.querySelector("[data-testid=actas-impersonation-notice]"), null);
  });

  test("nothing new: no toast; an impersonator: not even asked", async () => {
    const { actas, server } = await signedIn();
    server.fail("/v1/me/impersonation_notices", reply({ response: [], client: null }));
    mountImpersonationNotice(actas, { container: body });
    await settle();
    assert.equal(body.querySelector("[data-testid=actas-impersonation-notice]"), null);

    const watched = await signedIn({ actor: ACTOR });
    mountImpersonationNotice(watched.actas, { container: body });
    await settle();
    assert.equal(watched.server.calls("/v1/me/impersonation_notices").length, 0);
  });
});
