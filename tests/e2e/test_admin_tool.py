"""An application's admin tool signs in as a user through actas (RFC 8693 token
exchange), with a credential an owner created in the dashboard: the tool (played by
this test over HTTP) exchanges a user id for a ticket, naming the operator it acts for,
and the operator's browser lands in the demo app as the user, with that operator in
``act``. Without a valid actor, or for a protected user, the tool gets RFC 6749's error
and the audit log says so."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import Stack, dashboard_sign_in, screenshot, user_id

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
USER_ID = "urn:actas:params:oauth:token-type:user_id"
OPERATOR_ID = "urn:actas:params:oauth:token-type:operator_id"
BANNER = "[data-testid=actas-impersonation-banner]"


def test_an_admin_tool_signs_in_as_a_user_for_the_operator_it_names(
        browser_context_pair: tuple[BrowserContext, BrowserContext], stack: Stack) -> None:
    owner, support = browser_context_pair
    page = owner.new_page()
    dashboard_sign_in(page, stack, "owner@example.com")
    page.get_by_role("link", name="Admin tools").click()
    page.get_by_label("Name").fill("Support console")
    page.get_by_role("button", name="Create").click()
    created = page.get_by_test_id("created-tool")
    expect(created).to_contain_text("Support console was created")
    client_id = page.get_by_test_id("client-id").inner_text().strip()
    secret = page.get_by_test_id("client-secret").inner_text().strip()
    screenshot(page, "18-admin-tool-created")
    page.get_by_role("link", name="Operators").click()
    sam = page.locator("tr", has_text="support@example.com").get_attribute("data-operator-id")
    assert sam and sam.startswith("op_")

    def exchange(user: str, actor: str) -> httpx.Response:
        with httpx.Client(base_url=stack.actas_url, timeout=30, trust_env=False) as tool:
            return tool.post("/oauth/token", auth=(client_id, secret), data={
                "grant_type": TOKEN_EXCHANGE, "subject_token": user,
                "subject_token_type": USER_ID, "actor_token": actor,
                "actor_token_type": OPERATOR_ID, "reason": "Ticket #90: the cart is empty"})

    granted = exchange(user_id(stack, "ada@example.com"), sam)
    assert granted.status_code == 200, granted.text
    app = support.new_page()  # Sam's browser, sent on by the admin tool
    app.goto(granted.json()["url"])
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    banner = app.locator(BANNER)
    expect(banner).to_contain_text("Ada Lovelace")
    expect(banner).to_contain_text("Sam Support")
    expect(banner).to_contain_text("Ticket #90")
    expect(app.get_by_test_id("backend-saw")).to_contain_text("acting as you")

    nobody = exchange(user_id(stack, "grace@example.com"), "op_nobody")
    assert nobody.status_code == 400 and nobody.json()["error"] == "invalid_grant"
    protected = exchange(user_id(stack, "root@example.com"), sam)
    assert protected.status_code == 400
    assert protected.json()["error"] == "unauthorized_client"
    with stack.backend() as backend:
        told = backend.get("/v1/audit_events", params={
            "type": "oauth.exchange_refused"}).json()["data"]
        refused = backend.get("/v1/audit_events", params={
            "type": "impersonation.refused"}).json()["data"]
    assert {e["data"]["error"] for e in told if e["data"]["client_id"] == client_id} == {
        "invalid_grant", "unauthorized_client"}
    assert any(e["user_id"] == user_id(stack, "root@example.com") for e in refused)
