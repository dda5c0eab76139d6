import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Actas } from "@actas/browser";
import { JSDOM } from "jsdom";
import React from "react";
import { renderToString } from "react-dom/server";

import { ACTOR, JANE, SAM, environment } from "../../browser/test/support.js";
import {
  AccessRequest,
  ActasProvider,
  ImpersonationBanner,
  useAuth,
  useImpersonation,
  useSession,
} from "../src/index.js";

const h = React.createElement;
const SECOND = 1000;
const REASON = "Ticket #42";

async function loaded({ impersonating = false, signedIn = true, mode = "full" } = {}) {
  const env = environment();
  if (signedIn) env.server.addSession({ id: "sess_sam", user: SAM });
  if (impersonating) {
    env.server.addSession({
      id: "sess_imp", user: JANE, actor: ACTOR, reason: REASON, expireIn: 10 * 60 * SECOND, returnTo: "sess_sam",
      mode,
    });
  }
  const actas = await Actas.load(env.options);
  return { ...env, actas };
}

function Whoami() {
  const { isLoaded, isSignedIn, userId, sessionId, actor } = useAuth();
  const { session } = useSession();
  return h("p", { id: "whoami" },
    `loaded=${isLoaded} signedIn=${isSignedIn} user=${userId} session=${sessionId} ` +
    `actor=${actor ? actor.sub : "none"} name=${session ? session.user.first_name : "-"}`);
}

describe("server rendering", () => {
  test("useAuth and useSession read the provided client", async () => {
    const { actas } = await loaded();
    const html = renderToString(h(ActasProvider, { client: actas }, h(Whoami)));
    assert.match(html, /loaded=true signedIn=true user=user_sam session=sess_sam actor=none name=Sam/);
  });

  test("signed out", async () => {
    const { actas } = await loaded({ signedIn: false });
    const html = renderToString(h(ActasProvider, { client: actas }, h(Whoami), h(ImpersonationBanner)));
    assert.match(html, /loaded=true signedIn=false user=null session=null actor=none name=-/);
    assert.doesNotMatch(html, /actas-impersonation-banner/);
  });

  test("before the client has loaded: Clerk's undefined values", () => {
    const html = renderToString(h(ActasProvider, { frontendApi: "https://auth.example.test" }, h(Whoami)));
    assert.match(html, /loaded=false signedIn=undefined user=undefined session=undefined actor=none name=-/);
  });

  test("the banner, with the same text and test ids as the DOM one", async () => {
    const { actas } = await loaded({ impersonating: true });
    const html = renderToString(h(ActasProvider, { client: actas }, h(ImpersonationBanner), h(Whoami)));
    assert.match(html, /actor=user_sam/);
    assert.match(html, /role="region" aria-label="Impersonation" data-testid="actas-impersonation-banner"/);
    assert.match(html, /<span aria-live="polite">You are signed in as Jane Doe by Sam Support · Ticket #42<\/span>/);
    assert.match(html, /ends in <span data-testid="actas-countdown"[^>]*>10:00<\/span>/);
    assert.match(html, /<button type="button" data-testid="actas-stop-impersonating"[^>]*>Stop impersonating<\/button>/);
    assert.match(html, /background:#b00020;color:#ffffff/);
  });

  test("useImpersonation: the mode, for a UI that disables what read-only may not do", async () => {
    function Mode() {
      const { isImpersonating, mode, readOnly } = useImpersonation();
      return h("p", null, `impersonating=${isImpersonating} mode=${mode} readOnly=${readOnly}`);
    }
    const readOnly = await loaded({ impersonating: true, mode: "read_only" });
    const html = renderToString(h(ActasProvider, { client: readOnly.actas }, h(ImpersonationBanner), h(Mode)));
    assert.match(html, /impersonating=true mode=read_only readOnly=true/);
    assert.match(html, /You are signed in as Jane Doe by Sam Support \(read-only\) · Ticket #42/);
    const own = await loaded();
    assert.match(renderToString(h(ActasProvider, { client: own.actas }, h(Mode))),
      /impersonating=false mode=null readOnly=false/);
  });

  test("hooks outside the provider say so", () => {
    assert.throws(() => renderToString(h(Whoami)), /inside <ActasProvider>/);
  });
});

describe("in a DOM", () => {
  let dom;
  let added = [];
  before(() => {
    dom = new JSDOM("<!doctype html><html><body><div id=root></div></body></html>", {
      url: "https://app.example.test/",
      pretendToBeVisual: true,
    });
    const globals = { window: dom.window, document: dom.window.document, IS_REACT_ACT_ENVIRONMENT: true };
    // Node 20 has no global navigator, which react-dom/client reads; Node 21+ has one.
    if (globalThis.navigator === undefined) globals.navigator = dom.window.navigator;
    for (const [name, value] of Object.entries(globals)) {
      Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
    }
    added = Object.keys(globals);
  });
  after(() => {
    for (const name of added) delete globalThis[name];
    dom.window.close();
  });

  test("the banner counts down, stops the impersonation, and useAuth follows", async () => {
    const { createRoot } = await import("react-dom/client");
    const { actas, clock, server } = await loaded({ impersonating: true });
    const container = document.getElementById("root");
    const root = createRoot(container);
    let stopped = 0;
    await React.act(async () => {
      root.render(h(ActasProvider, { client: actas },
        h(ImpersonationBanner, { onStopped: () => { stopped += 1; } }), h(Whoami)));
    });
    const $ = (testid) => container.querySelector(`[data-testid="${testid}"]`);
    assert.equal($("actas-countdown").textContent, "10:00");
    assert.match(container.querySelector("#whoami").textContent, /user=user_jane session=sess_imp actor=user_sam/);

    const live = container.querySelector("[aria-live]");
    const liveText = live.firstChild;
    await React.act(() => clock.advance(3 * SECOND));
    assert.equal($("actas-countdown").textContent, "09:57");
    assert.equal(live.firstChild, liveText, "the announced text is not rewritten by the countdown");

    const button = $("actas-stop-impersonating");
    await React.act(async () => { button.focus(); });
    assert.equal(button.style.outline, "3px solid #ffffff");

    await React.act(async () => { button.click(); });
    await React.act(() => clock.advance(0));
    assert.equal(server.calls("/stop_impersonating").length, 1);
    assert.equal(stopped, 1);
    assert.equal($("actas-impersonation-banner"), null);
    assert.match(container.querySelector("#whoami").textContent, /user=user_sam session=sess_sam actor=none/);

    await React.act(async () => root.unmount());
  });

  test("the provider loads a client from frontendApi and destroys it on unmount", async () => {
    const { createRoot } = await import("react-dom/client");
    const env = environment();
    env.server.addSession({ id: "sess_sam", user: SAM });
    const { frontendApi, ...options } = env.options;
    const container = document.getElementById("root");
    const root = createRoot(container);
    await React.act(async () => { root.render(h(ActasProvider, { frontendApi, options }, h(Whoami))); });
    await React.act(() => env.clock.advance(0));
    assert.match(container.textContent, /loaded=true signedIn=true user=user_sam/);
    assert.equal(env.clock.pending.length, 1);
    await React.act(async () => root.unmount());
    assert.deepEqual(env.clock.pending, [], "no timer outlives the provider");
  });

  test("<AccessRequest/> lists who asks, and grants on a click", async () => {
    const { createRoot } = await import("react-dom/client");
    const { actas, server } = await loaded();
    const request = {
      id: "areq_1", status: "pending", requested_by: { sub: "op_sam", name: "Sam Support" },
      reason: "Ticket #42", mode: "read_only", session_max_duration_in_seconds: 1800,
      expires_at: Date.UTC(2025, 0, 16), granted_until: null, created_at: 0,
    };
    const access = (requests) => ({ status: 200, body: { response: {
      impersonation_preference: "ask", default_preference: "allowed", requests }, client: null } });
    server.fail("/v1/me/access", access([request]));
    const container = document.getElementById("root");
    const root = createRoot(container);
    await React.act(async () => {
      root.render(h(ActasProvider, { client: actas }, h(AccessRequest)));
    });
    const asked = container.querySelector("[data-testid=actas-access-request]");
    assert.match(asked.textContent, /Sam Support asks to sign in as you, read-only/);
    server.fail("/grant", { status: 200, body: { response: { ...request, status: "granted" } } });
    server.fail("/v1/me/access", access([{ ...request, status: "granted", granted_until: Date.UTC(2025, 0, 17) }]));
    await React.act(async () => { asked.querySelector("[data-testid=actas-access-grant]").click(); });
    await React.act(async () => {});
    assert.equal(server.calls("/v1/me/access_requests/areq_1/grant").length, 1);
    assert.ok(container.querySelector("[data-testid=actas-access-grant-active]"));
    await React.act(async () => root.unmount());
  });
});
