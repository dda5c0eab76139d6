"""An application's admin tool signs in as a user through actas (RFC 8693 token
exchange), with a credential an owner created in the dashboard: the tool (played by
this test over HTTP) exchanges a user id for a ticket, naming the operator it acts for,
and the operator's browser lands in the demo app as the user, with that operator in
``act``. Without a valid actor, or for a protected user, the tool gets RFC 6749's error
and the audit log says so."""

from __future__ import annotations

import re

import pytest
from examples.admin_tool.sign_in_as import Refused, sign_in_as
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import Stack, dashboard_sign_in, screenshot, user_id

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

    def exchange(user: str, actor: str) -> str:  # the example admin tool's button
        return sign_in_as(stack.actas_url, client_id, secret, user_id=user_id(stack, user),
                          operator_id=actor, reason="Ticket #90: the cart is empty")

    url = exchange("ada@example.com", sam)
    app = support.new_page()  # Sam's browser, sent on by the admin tool
    app.goto(url)
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    banner = app.locator(BANNER)
    expect(banner).to_contain_text("Ada Lovelace")
    expect(banner).to_contain_text("Sam Support")
    expect(banner).to_contain_text("Ticket #90")
    expect(app.get_by_test_id("backend-saw")).to_contain_text("acting as you")

    with pytest.raises(Refused) as nobody:
        exchange("grace@example.com", "op_nobody")
    assert nobody.value.error == "invalid_grant"
    with pytest.raises(Refused) as protected:
        exchange("root@example.com", sam)
    assert protected.value.error == "unauthorized_client"
    with stack.backend() as backend:
        told = backend.get("/v1/audit_events", params={
            "type": "oauth.exchange_refused"}).json()["data"]
        refused = backend.get("/v1/audit_events", params={
            "type": "impersonation.refused"}).json()["data"]
    assert {e["data"]["error"] for e in told if e["data"]["client_id"] == client_id} == {
        "invalid_grant", "unauthorized_client"}
    assert any(e["user_id"] == user_id(stack, "root@example.com") for e in refused)
