"""The user's say, in real browsers: a user who asks to be asked grants support's request
in the demo app, then support impersonates; the user revokes and the impersonation ends;
a denied request cannot be used; a user who refuses is impersonated only by an owner's
override."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import (
    TOKEN_LIFETIME,
    USER_PASSWORD,
    Stack,
    dashboard_sign_in,
    screenshot,
)
from tests.support.receivers import wait_until

BANNER = "[data-testid=actas-impersonation-banner]"


def _user(stack: Stack, first: str, email: str, preference: str) -> str:
    with stack.backend() as backend:
        found = backend.get("/v1/users", params={"email_address": email}).json()
        if found:
            return str(found[0]["id"])
        created = backend.post("/v1/users", json={
            "email_address": [email], "password": USER_PASSWORD, "first_name": first,
            "last_name": "Tester", "impersonation_preference": preference})
        assert created.status_code == 200, created.text
        return str(created.json()["id"])


def _app_sign_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(stack.app_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#greeting")).to_contain_text("Hello")


def _impersonate(page: Page, stack: Stack, reason: str) -> Page:
    page.get_by_label("Reason", exact=False).first.fill(reason)
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Impersonate user").click()
    app = opened.value
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    return app


def test_a_user_who_asks_grants_access_in_the_app_then_support_impersonates(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    support, user = browser_context_pair
    kat = _user(stack, "Kat", "kat@example.com", "ask")
    dashboard = support.new_page()
    dashboard_sign_in(dashboard, stack, "support@example.com")
    dashboard.goto(f"{stack.actas_url}/dashboard/users/{kat}")
    expect(dashboard.get_by_test_id("consent-state")).to_contain_text("asks to be asked first")
    expect(dashboard.get_by_role("button", name="Impersonate user")).to_be_disabled()
    request_form = dashboard.locator("section", has=dashboard.get_by_role(
        "heading", name="Request access"))
    request_form.get_by_label("Reason").fill("Ticket #7: the invoice page is empty")
    request_form.get_by_role("button", name="Request access").click()
    expect(dashboard.get_by_role("status")).to_contain_text("Access requested")
    expect(dashboard.get_by_test_id("consent-state")).to_contain_text("waiting for the answer")
    screenshot(dashboard, "12-access-requested")

    app = user.new_page()
    _app_sign_in(app, stack, "kat@example.com")
    asked = app.get_by_test_id("actas-access-request")
    expect(asked).to_contain_text("Sam Support asks to sign in as you, read-only")
    expect(asked).to_contain_text("Ticket #7: the invoice page is empty")
    screenshot(app, "13-user-asked")
    asked.get_by_role("button", name=re.compile(r"Allow for \d+ hours")).click()
    expect(app.get_by_test_id("actas-access-grant-active")).to_contain_text(
        "Sam Support may sign in as you (read-only) until")

    dashboard.reload()
    expect(dashboard.get_by_test_id("consent-state")).to_contain_text(
        "Kat Tester granted you access")
    watched = _impersonate(dashboard, stack, "Ticket #7: the invoice page is empty")
    expect(watched.locator(BANNER)).to_contain_text("Kat Tester")
    # The impersonator is not offered the user's answers.
    expect(watched.get_by_test_id("actas-access-unavailable")).to_be_visible()

    # The user takes it back: the impersonation ends within one token lifetime.
    app.reload()
    app.get_by_test_id("actas-access-grant-active").get_by_role(
        "button", name="Revoke now").click()
    expect(app.get_by_test_id("actas-access-none")).to_be_visible()
    expect(watched.locator(BANNER)).to_have_count(0, timeout=(TOKEN_LIFETIME + 60) * 1000)


def test_a_denied_request_cannot_be_used(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    support, user = browser_context_pair
    lin = _user(stack, "Lin", "lin@example.com", "ask")
    dashboard = support.new_page()
    dashboard_sign_in(dashboard, stack, "support@example.com")
    dashboard.goto(f"{stack.actas_url}/dashboard/users/{lin}")
    form = dashboard.locator("section", has=dashboard.get_by_role("heading", name="Request access"))
    form.get_by_label("Reason").fill("Ticket #8: login loop")
    form.get_by_role("button", name="Request access").click()
    expect(dashboard.get_by_role("status")).to_contain_text("Access requested")

    app = user.new_page()
    _app_sign_in(app, stack, "lin@example.com")
    app.get_by_test_id("actas-access-request").get_by_role("button", name="Deny").click()
    expect(app.get_by_test_id("actas-access-none")).to_be_visible()

    dashboard.reload()
    expect(dashboard.get_by_test_id("access-requests")).to_contain_text("denied")
    expect(dashboard.get_by_role("button", name="Impersonate user")).to_be_disabled()
    expect(dashboard.get_by_role("heading", name="Request access")).to_be_visible()


def test_a_user_who_refuses_is_impersonated_only_by_an_owners_override(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    support, owner = browser_context_pair
    max_id = _user(stack, "Max", "max@example.com", "never")
    page = support.new_page()
    dashboard_sign_in(page, stack, "support@example.com")
    page.goto(f"{stack.actas_url}/dashboard/users/{max_id}")
    expect(page.get_by_test_id("consent-state")).to_contain_text("does not allow impersonation")
    expect(page.get_by_role("button", name="Impersonate user")).to_be_disabled()
    expect(page.get_by_role("heading", name="Request access")).to_have_count(0)

    page = owner.new_page()
    dashboard_sign_in(page, stack, "owner@example.com")
    page.goto(f"{stack.actas_url}/dashboard/users/{max_id}")
    page.get_by_test_id("override").check()
    watched = _impersonate(page, stack, "Fraud report #77: spam sent from this account")
    expect(watched.locator(BANNER)).to_contain_text("Max Tester")
    screenshot(page, "14-owner-override")
    # Max is told, whatever the notice settings: `actas dev` prints the mail it sends.
    wait_until(lambda: "Subject: Olivia Owner signed in to your account (your preference was "
                       "overridden)" in stack.log.read_text(),
               lambda: "the override notice was not sent")
    assert "To: max@example.com" in stack.log.read_text()
