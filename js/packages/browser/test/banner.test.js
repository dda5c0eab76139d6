import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { JSDOM } from "jsdom";

import {
  Actas,
  BANNER_COLORS,
  describeImpersonation,
  impersonationOf,
  formatCountdown,
  mountImpersonationBanner,
} from "../src/actas.js";
import { ACTOR, JANE, SAM, environment } from "./support.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const REASON = "Ticket #42: cannot see invoices";

let dom;
let body;
beforeEach(() => {
  dom = new JSDOM("<!doctype html><html><body><main>The app</main></body></html>", {
    url: "https://app.example.test/",
  });
  body = dom.window.document.body;
});

async function impersonating({ actor = ACTOR, user = JANE, reason = REASON, operator = true } = {}) {
  const env = environment();
  if (operator) env.server.addSession({ id: "sess_sam", user: SAM });
  env.server.addSession({ id: "sess_imp", user, actor, reason, expireIn: 30 * MINUTE, returnTo: "sess_sam" });
  const actas = await Actas.load(env.options);
  return { ...env, actas };
}

const $ = (testid) => body.querySelector(`[data-testid="${testid}"]`);

describe("mountImpersonationBanner", () => {
  test("says who acts as whom, why, and until when", async () => {
    const { actas } = await impersonating();
    mountImpersonationBanner(actas, { container: body });
    const banner = $("actas-impersonation-banner");
    assert.ok(banner);
    assert.equal(body.firstElementChild, banner, "first in the page");
    assert.equal(
      banner.textContent,
      `You are signed in as Jane Doe by Sam Support · ${REASON} · ends in 30:00Stop impersonating`,
    );
    assert.equal(banner.style.position, "fixed");
    assert.equal(banner.style.top, "0px");
  });

  test("is accessible: a labelled region, announced once, a focusable button", async () => {
    const { actas, clock } = await impersonating();
    mountImpersonationBanner(actas, { container: body });
    const banner = $("actas-impersonation-banner");
    assert.equal(banner.getAttribute("role"), "region");
    assert.equal(banner.getAttribute("aria-label"), "Impersonation");

    const live = banner.querySelector("[aria-live]");
    assert.equal(live.getAttribute("aria-live"), "polite");
    assert.equal(live.textContent, `You are signed in as Jane Doe by Sam Support · ${REASON}`);
    assert.ok(!live.contains($("actas-countdown")), "the countdown must not re-announce every second");
    const liveText = live.firstChild;
    await clock.advance(5 * SECOND);
    assert.equal(live.firstChild, liveText, "the live region's text is never rewritten");

    const button = $("actas-stop-impersonating");
    assert.equal(button.tagName, "BUTTON");
    assert.equal(button.type, "button");
    assert.equal(button.textContent, "Stop impersonating");
    assert.equal(button.tabIndex, 0);
    button.focus();
    assert.equal(dom.window.document.activeElement, button);
    assert.equal(button.style.outline, "3px solid #ffffff");
    button.blur();
    assert.equal(button.style.outline, "none");
  });

  test("white on #b00020 has a contrast of at least 4.5:1", () => {
    const luminance = (hex) => {
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
        .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [light, dark] = [luminance(BANNER_COLORS.text), luminance(BANNER_COLORS.background)].sort((a, b) => b - a);
    assert.ok((light + 0.05) / (dark + 0.05) >= 4.5);
  });

  test("counts down every second to the session's hard end", async () => {
    const { actas, clock } = await impersonating();
    mountImpersonationBanner(actas, { container: body });
    assert.equal($("actas-countdown").textContent, "30:00");
    await clock.advance(1 * SECOND);
    assert.equal($("actas-countdown").textContent, "29:59");
    await clock.advance(0.5 * SECOND);
    assert.equal($("actas-countdown").textContent, "29:59");
    await clock.advance(0.5 * SECOND);
    assert.equal($("actas-countdown").textContent, "29:58");
    await clock.advance(29 * MINUTE + 57 * SECOND);
    assert.equal($("actas-countdown").textContent, "00:01");
  });

  test("Stop impersonating returns to the operator and removes the banner", async () => {
    const { actas, server } = await impersonating();
    let stopped = 0;
    mountImpersonationBanner(actas, { container: body, onStopped: () => { stopped += 1; } });
    $("actas-stop-impersonating").click();
    assert.equal($("actas-stop-impersonating").disabled, true, "no double submit");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(server.calls("/stop_impersonating").length, 1);
    assert.equal(stopped, 1);
    assert.equal($("actas-impersonation-banner"), null);
    assert.equal(actas.getAuth().userId, "user_sam");
  });

  test("a failed stop keeps the banner and re-enables the button", async () => {
    const { actas, server } = await impersonating();
    const errors = [];
    mountImpersonationBanner(actas, { container: body, onError: (error) => errors.push(error) });
    server.fail("/stop_impersonating", "network");
    $("actas-stop-impersonating").click();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(errors.length, 1);
    assert.ok($("actas-impersonation-banner"));
    assert.equal($("actas-stop-impersonating").disabled, false);
  });

  test("is removed when the impersonation ends elsewhere, and stops ticking", async () => {
    const { actas, server, clock } = await impersonating({ operator: false });
    mountImpersonationBanner(actas, { container: body });
    server.sessions[0].status = "revoked"; // the dashboard's "End now"
    await clock.advance(50 * SECOND);
    assert.equal(actas.getAuth().isSignedIn, false);
    assert.equal($("actas-impersonation-banner"), null);
    assert.deepEqual(clock.pending, []);
  });

  test("reserves its height at the top of the page, and gives it back", async () => {
    body.style.paddingTop = "12px";
    const { actas } = await impersonating();
    const unmount = mountImpersonationBanner(actas, { container: body });
    const banner = $("actas-impersonation-banner");
    assert.equal(body.style.paddingTop, `${banner.offsetHeight}px`);
    assert.equal(banner.children[1].style.whiteSpace, "nowrap", "'ends in 29:59' stays whole");
    unmount();
    assert.equal(body.style.paddingTop, "12px");
  });

  test("shows nothing without an actor, and nothing after unmount", async () => {
    const env = environment();
    env.server.addSession({ id: "sess_jane" });
    const plain = await Actas.load(env.options);
    const unmountPlain = mountImpersonationBanner(plain, { container: body });
    assert.equal($("actas-impersonation-banner"), null);
    unmountPlain();

    const { actas, clock } = await impersonating();
    const unmount = mountImpersonationBanner(actas, { container: body });
    assert.ok($("actas-impersonation-banner"));
    unmount();
    assert.equal($("actas-impersonation-banner"), null);
    await clock.advance(5 * MINUTE);
    assert.equal($("actas-impersonation-banner"), null);
    assert.equal(clock.pending.length, 1, "only the token refresh is left");
  });

  test("labels: the actor's name, else email, else sub; the user's name, else identifier", () => {
    const session = {
      user: { ...JANE, first_name: null, last_name: null },
      public_user_data: { identifier: "jane@example.com", first_name: null, last_name: null },
      impersonation_reason: null,
    };
    assert.equal(describeImpersonation({ sub: "user_sam", email: "sam@example.com" }, session).message,
      "You are signed in as jane@example.com by sam@example.com");
    assert.equal(describeImpersonation({ sub: "user_sam" }, { ...session, impersonation_reason: "why" }).message,
      "You are signed in as jane@example.com by user_sam · why");
    assert.equal(describeImpersonation(ACTOR, { ...session, user: JANE }).userLabel, "Jane Doe");
  });

  test("a read-only impersonation says so; the mode comes from the token, else the session", () => {
    const session = { user: JANE, public_user_data: {}, impersonation_reason: "why", impersonation_mode: "read_only" };
    assert.equal(describeImpersonation(ACTOR, session).message,
      "You are signed in as Jane Doe by Sam Support (read-only) · why");
    assert.equal(describeImpersonation(ACTOR, { ...session, impersonation_mode: "full" }).message,
      "You are signed in as Jane Doe by Sam Support · why");
    assert.deepEqual({ ...impersonationOf(ACTOR, { act_mode: "read_only" }, null) }, { mode: "read_only", readOnly: true });
    assert.deepEqual({ ...impersonationOf(ACTOR, { act_mode: "full" }, session) }, { mode: "full", readOnly: false });
    assert.deepEqual({ ...impersonationOf(ACTOR, {}, session) }, { mode: "full", readOnly: false }, "no act_mode: full");
    assert.deepEqual({ ...impersonationOf(ACTOR, { act_mode: "new" }, null) }, { mode: "read_only", readOnly: true }, "unknown: closed");
    assert.deepEqual({ ...impersonationOf(ACTOR, null, session) }, { mode: "read_only", readOnly: true });
    assert.equal(impersonationOf(null, { act_mode: "read_only" }, session), null);
  });

  test("formatCountdown", () => {
    assert.equal(formatCountdown(0), "00:00");
    assert.equal(formatCountdown(-5), "00:00");
    assert.equal(formatCountdown(1), "00:01");
    assert.equal(formatCountdown(59_001), "01:00");
    assert.equal(formatCountdown(30 * MINUTE), "30:00");
    assert.equal(formatCountdown(4 * 60 * MINUTE), "4:00:00");
  });
});
