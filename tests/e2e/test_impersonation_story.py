"""The whole story in a real browser: dashboard → Impersonate user → the app as the user.

Each step asserts what the page shows and, where it matters, what the
application's backend saw (``auth.actor`` on its request).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Response, expect

from tests.e2e.conftest import (
    TOKEN_LIFETIME,
    USER_PASSWORD,
    Stack,
    dashboard_sign_in,
    screenshot,
    user_id,
)
from tests.support.receivers import wait_until

BANNER = "[data-testid=actas-impersonation-banner]"
REASON = "Ticket #4242: the invoice page is empty"
HARD_LIMIT = 20  # seconds: long enough for a slow page load, short enough to wait out
TOKENS_PATH = re.compile(r"/v1/client/sessions/[^/]+/tokens")


def decode_unverified(jwt: str) -> dict[str, Any]:
    """The claims of a token actas itself just minted (read, not verified)."""
    payload = jwt.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def _backend_saw(stack: Stack) -> dict[str, object]:
    seen = httpx.get(f"{stack.app_url}/api/_seen", timeout=5).json()
    assert seen, "the app's backend saw no request"
    last: dict[str, object] = seen[-1]
    return last


def _forced_delete(page: Page) -> list[Any]:
    """Call the app's delete endpoint as the page would, button or not: [status, code]."""
    result: list[Any] = page.evaluate("""async () => {
        const token = document.cookie.match(/__session=([^;]+)/)[1];
        const r = await fetch("/api/account/delete", {method: "POST",
            headers: {Authorization: `Bearer ${token}`}});
        return [r.status, (await r.json()).errors[0].code];
    }""")
    return result


def _open_user(page: Page, stack: Stack, email: str) -> None:
    page.goto(f"{stack.actas_url}/dashboard/users")
    page.get_by_label("Search").fill(email)
    page.get_by_role("button", name="Search").click()
    page.locator("tbody tr").first.get_by_role("link").first.click()


def _submit_impersonation(page: Page, stack: Stack) -> Page:
    """Press *Impersonate user*: the application opens in a new tab, which is returned;
    the dashboard stays where it was."""
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Impersonate user").click()
    app = opened.value
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    return app


def _impersonate_from_dashboard(page: Page, stack: Stack, email: str, reason: str) -> Page:
    _open_user(page, stack, email)
    page.get_by_label("Reason").fill(reason)
    return _submit_impersonation(page, stack)


def test_support_engineer_impersonates_a_user_and_stops(context: BrowserContext,
                                                        stack: Stack) -> None:
    page = context.new_page()
    dashboard_sign_in(page, stack, "support@example.com")
    screenshot(page, "01-dashboard-users")

    page.get_by_label("Search").fill("lovelace")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Impersonate user")).to_be_visible()
    screenshot(page, "02-user-detail")

    page.get_by_label("Reason").fill(REASON)
    dashboard = page
    page = _submit_impersonation(dashboard, stack)
    # The dashboard stays in its own tab, on Ada's page.
    expect(dashboard.get_by_role("heading", name="Impersonate user")).to_be_visible()

    # Landed in the application, in a new tab, as Ada, with the banner saying so.
    banner = page.locator(BANNER)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Ada Lovelace")
    expect(banner).to_contain_text("Sam Support")
    expect(banner).to_contain_text(REASON)
    expect(banner).to_contain_text(re.compile(r"ends in \d+:\d\d"))
    expect(page.locator("#greeting")).to_have_text("Hello, Ada Lovelace")
    # The bar covers nothing of the page: the page starts below it.
    bar, header = banner.bounding_box(), page.locator("header").first
    top = header.bounding_box()
    assert bar is not None and top is not None and top["y"] >= bar["y"] + bar["height"] - 1
    expect(page.get_by_test_id("backend-saw")).to_contain_text("acting as you")
    saw = _backend_saw(stack)
    assert saw["user_id"] == user_id(stack, "ada@example.com")
    actor = saw["actor"]
    assert isinstance(actor, dict) and str(actor["sub"]).startswith("op_")
    assert actor["name"] == "Sam Support"
    screenshot(page, "03-app-impersonating")

    # The dashboard started it read-only: the banner says so, the page disables its
    # write, and the app's backend refuses the write even when the page is forced.
    expect(banner).to_contain_text("(read-only)")
    expect(page.get_by_test_id("address-note")).to_be_visible()
    expect(page.locator("#address-save")).to_be_disabled()
    page.evaluate("""() => { for (const id of ["address", "address-save"])
                               document.getElementById(id).disabled = false; }""")
    page.locator("#address").fill("1 Forced Lane")
    page.locator("#address-save").click()
    expect(page.get_by_test_id("address-result")).to_contain_text("read-only")
    forced = page.evaluate("""async () => {
        const token = document.cookie.match(/__session=([^;]+)/)[1];
        const r = await fetch("/api/address", {method: "POST", body: '{"address": "2 Forced Lane"}',
            headers: {"Content-Type": "application/json", Authorization: `Bearer ${token}`}});
        return [r.status, (await r.json()).errors[0].code];
    }""")
    assert forced == [403, "impersonation_read_only"]
    screenshot(page, "04-read-only-write-refused")

    # Back in the dashboard tab: the live list names both limits and counts them down
    # without a reload.
    dashboard.goto(f"{stack.actas_url}/dashboard/impersonations")
    row = dashboard.locator("tr", has_text=REASON)
    hard, idle = row.get_by_test_id("hard-limit"), row.get_by_test_id("idle-limit")
    expect(hard).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(idle).to_have_text(re.compile(r"^\d+:\d\d$"))
    first = hard.inner_text()
    expect(hard).not_to_have_text(first)  # the page's script ticks it
    screenshot(dashboard, "04b-live-impersonations")

    # A sensitive action is not offered, and the backend refuses it when forced (read-only
    # refuses it first).
    expect(page.get_by_role("button", name="Delete my account")).to_be_disabled()
    expect(page.get_by_test_id("delete-note")).to_be_visible()
    assert _forced_delete(page) == [403, "impersonation_read_only"]

    # Stop impersonating: the banner goes, this browser is no longer Ada, and the page
    # says the impersonation ended, with the way back to the dashboard.
    page.get_by_test_id("actas-stop-impersonating").click()
    expect(banner).to_have_count(0)
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.get_by_test_id("impersonation-ended")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the actas dashboard")).to_have_attribute(
        "href", f"{stack.actas_url}/dashboard/impersonations")
    screenshot(page, "05-stopped")

    # Every step actas took part in is in the audit log, whose chain verifies. (The
    # refused deletion was refused by the app's own backend, locally, by the SDK.)
    page.goto(f"{stack.actas_url}/dashboard/audit")
    expect(page.get_by_test_id("chain-status")).to_contain_text("Chain verified")
    for event in ("operator.signed_in", "actor_token.created", "actor_token.accepted",
                  "session.created", "session.ended"):
        expect(page.locator("td code", has_text=event).first).to_be_visible()
    screenshot(page, "06-audit-log")


def test_banner_counts_down_and_the_session_ends_at_its_hard_limit(
        context: BrowserContext, stack: Stack) -> None:
    with stack.backend() as backend:
        token = backend.post("/v1/actor_tokens", json={
            "user_id": user_id(stack, "grace@example.com"),
            "actor": {"sub": "op_e2e", "name": "Countdown Tester"},
            "reason": "Hard limit test", "session_max_duration_in_seconds": HARD_LIMIT}).json()
    page = context.new_page()
    page.goto(token["url"])
    page.wait_for_url(re.compile(re.escape(stack.app_url)))
    countdown = page.get_by_test_id("actas-countdown")
    expect(countdown).to_have_text(re.compile(r"\d+:\d\d"))
    first = countdown.inner_text()
    minutes, seconds = first.split(":")
    assert 0 < int(minutes) * 60 + int(seconds) <= HARD_LIMIT + 1, first  # shown rounded up
    expect(countdown).not_to_have_text(first)  # it counts down
    screenshot(page, "07-countdown")

    # At the hard limit the browser client notices and the app is signed out.
    expect(page.locator(BANNER)).to_have_count(0, timeout=(HARD_LIMIT + 60) * 1000)
    expect(page.locator("#signed-out")).to_be_visible()
    with stack.backend() as backend:
        [session] = backend.get("/v1/sessions", params={"actor_sub": "op_e2e"}).json()
    assert session["status"] == "expired"


def test_end_now_signs_the_app_out_within_one_token_lifetime(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    support, owner = browser_context_pair
    minted: list[Response] = []  # from every tab of the support engineer's browser
    support.on("response", lambda r: minted.append(r) if TOKENS_PATH.search(r.url) else None)
    operator = support.new_page()
    dashboard_sign_in(operator, stack, "support@example.com")
    app = _impersonate_from_dashboard(operator, stack, "alan@example.com", "End-now test")
    expect(app.locator(BANNER)).to_be_visible()

    dashboard = owner.new_page()
    dashboard_sign_in(dashboard, stack, "owner@example.com")
    dashboard.goto(f"{stack.actas_url}/dashboard/impersonations")
    row = dashboard.locator("tr", has_text="End-now test")
    expect(row).to_be_visible()
    screenshot(dashboard, "08-live-impersonations")
    row.get_by_role("button", name="End now").click()
    expect(dashboard.get_by_role("status")).to_contain_text("was ended")

    # The app's next refresh is refused and it signs out (however late a busy
    # machine runs that timer)...
    expect(app.locator(BANNER)).to_have_count(0, timeout=(TOKEN_LIFETIME + 60) * 1000)
    expect(app.locator("#signed-out")).to_be_visible()
    expect(app.get_by_test_id("impersonation-ended")).to_be_visible()  # told, not dropped
    screenshot(app, "09-ended-by-dashboard")

    # ...and, by the server's own clock, no token it minted for the session
    # outlives the end by more than one token lifetime: every backend stops
    # accepting the impersonation within that time.
    issued = [r.json()["jwt"] for r in minted if r.ok]
    sessions = {decode_unverified(jwt)["sid"] for jwt in issued}
    assert len(sessions) == 1, sessions
    with stack.backend() as backend:
        session = backend.get(f"/v1/sessions/{sessions.pop()}").json()
    assert session["status"] == "revoked"
    ended_at = session["updated_at"] / 1000
    for jwt in issued:
        claims = decode_unverified(jwt)
        assert claims["iat"] <= ended_at + 1 and claims["exp"] <= ended_at + TOKEN_LIFETIME + 1
    assert any(not r.ok for r in minted), "the app never asked again after End now"


def test_the_user_sees_who_accessed_their_account(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    support, user = browser_context_pair
    reason = "Access history test: refund question"
    operator = support.new_page()
    dashboard_sign_in(operator, stack, "support@example.com")
    operator = _impersonate_from_dashboard(operator, stack, "ada@example.com", reason)
    expect(operator.get_by_test_id("orders")).not_to_be_empty()
    session_id = operator.evaluate("""async () => {
        const token = document.cookie.match(/__session=([^;]+)/)[1];
        await fetch("/api/address", {method: "POST", body: '{"address": "x"}',
            headers: {"Content-Type": "application/json", Authorization: `Bearer ${token}`}});
        return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sid;
    }""")
    operator.get_by_test_id("actas-stop-impersonating").click()
    expect(operator.locator(BANNER)).to_have_count(0)
    with stack.backend() as backend:  # the demo app reports in the background: wait for it
        wait_until(lambda: len(backend.get("/v1/impersonation_activity",
                                           params={"session_id": session_id}).json()) >= 2)

    page = user.new_page()
    page.goto(stack.app_url)
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#greeting")).to_have_text("Hello, Ada Lovelace")
    expect(page.locator(BANNER)).to_have_count(0)
    # Told at once, on this visit, that someone signed in as her; once dismissed, never again.
    notice = page.get_by_test_id("actas-impersonation-notice")
    expect(notice).to_contain_text("Sam Support")
    expect(notice).to_contain_text(reason)
    screenshot(page, "10a-user-notice")
    notice.get_by_role("button", name="Got it").click()
    expect(notice).to_have_count(0)
    page.reload()
    expect(page.locator("#greeting")).to_have_text("Hello, Ada Lovelace")
    expect(page.get_by_test_id("access-history")).to_contain_text("Sam Support")
    expect(page.get_by_test_id("actas-impersonation-notice")).to_have_count(0)
    history = page.get_by_test_id("access-history")
    expect(history).to_contain_text("Sam Support")
    expect(history).to_contain_text(reason)
    expect(history).to_contain_text("read-only")
    expect(history).to_contain_text("GET /api/me")
    expect(history).to_contain_text("POST /api/address (refused: read-only)")
    expect(page.get_by_test_id("backend-saw")).to_contain_text("The backend sees you")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_test_id("delete-result")).to_contain_text("would now be deleted")
    screenshot(page, "10-user-access-history")


def test_a_full_impersonation_may_change_the_address_but_not_delete_the_account(
        context: BrowserContext, stack: Stack) -> None:
    page = context.new_page()
    dashboard_sign_in(page, stack, "owner@example.com")
    _open_user(page, stack, "grace@example.com")
    expect(page.get_by_label("Read-only")).to_be_checked()  # the dashboard's default
    page.get_by_label("Full").check()
    page.get_by_label("Reason").fill("Full-mode test: fix the shipping address")
    page = _submit_impersonation(page, stack)
    banner = page.locator(BANNER)
    expect(banner).to_be_visible()
    expect(banner).not_to_contain_text("read-only")
    # Enabled once the saved address is in the field (the page loads it after the
    # banner): filled before, the load would have put the old address back.
    expect(page.locator("#address-save")).to_be_enabled()
    page.locator("#address").fill("7 Full Access Road")
    page.locator("#address-save").click()
    expect(page.get_by_test_id("address-result")).to_contain_text("Saved: 7 Full Access Road")
    expect(page.get_by_role("button", name="Delete my account")).to_be_disabled()
    status, _code = _forced_delete(page)
    assert status == 403
    screenshot(page, "11-full-impersonation")


def test_support_cannot_choose_full_and_is_told_why(context: BrowserContext,
                                                    stack: Stack) -> None:
    page = context.new_page()
    dashboard_sign_in(page, stack, "support@example.com")
    _open_user(page, stack, "alan@example.com")
    expect(page.get_by_label("Full")).to_be_disabled()
    expect(page.get_by_test_id("full-mode-unavailable")).to_contain_text("read-only")
