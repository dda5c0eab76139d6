"""Operators' second factors in Chromium, on a server of their own (the other browser
tests' operators keep signing in with a password):

- an operator sets up an authenticator app, signs out, and signs in again with a second
  step (here a recovery code; the TOTP code itself is computed in the test);
- an operator enrols a passkey in Chrome's virtual authenticator (CDP ``WebAuthn``),
  signs out, signs in with the passkey alone, and, once the step-up window has passed,
  is asked for it again before impersonating.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import (
    OPERATOR_PASSWORD,
    Stack,
    running_stack,
    screenshot,
    user_id,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("second-factor")


@pytest.fixture(scope="module")
def own_stack(data_dir: Path) -> Iterator[Stack]:
    with running_stack(data_dir) as running:
        yield running


def _virtual_authenticator(page: Page) -> None:
    """A platform authenticator with resident keys and user verification (a laptop's
    fingerprint reader), answering without a person, for this page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})


def _age_second_factor_checks(data_dir: Path, operator_email: str, minutes: int) -> None:
    """Let the step-up window pass: the operator's last second-factor check moves back in
    the server's database (the browser test cannot wait, nor freeze that process's clock)."""
    with contextlib.closing(sqlite3.connect(data_dir / "actas" / "actas.db")) as db, db:
        db.execute("UPDATE operator_sessions SET second_factor_at = second_factor_at - ? "
                   "WHERE second_factor_at IS NOT NULL AND operator_id = "
                   "(SELECT id FROM operators WHERE email_address = ?)",
                   (minutes * 60_000, operator_email))


def test_an_operator_sets_up_totp_then_signs_in_with_a_second_step(
        context: BrowserContext, own_stack: Stack) -> None:
    stack = own_stack
    page = context.new_page()
    page.goto(f"{stack.actas_url}/dashboard/sign_in")
    page.get_by_label("Email").fill("support@example.com")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")

    page.get_by_role("link", name=re.compile("Sam Support")).click()  # the header: your account
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_test_id("totp-qr")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    screenshot(page, "16-second-factor-set-up")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    codes = page.get_by_test_id("recovery-codes").inner_text().split()
    assert len(codes) == 10
    page.get_by_role("link", name="I saved them, continue").click()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill("support@example.com")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="One more step")).to_be_visible()
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")
    page.goto(f"{stack.actas_url}/dashboard/account")
    expect(page.get_by_test_id("second-factor")).to_contain_text("9 recovery codes left")


def test_an_operator_enrols_a_passkey_signs_in_with_it_and_steps_up_with_it(
        context: BrowserContext, own_stack: Stack, data_dir: Path) -> None:
    stack = own_stack
    page = context.new_page()
    _virtual_authenticator(page)
    page.goto(f"{stack.actas_url}/dashboard/sign_in")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")

    page.goto(f"{stack.actas_url}/dashboard/account")
    page.get_by_label("Name it (optional)").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    codes = page.get_by_test_id("recovery-codes").inner_text().split()
    assert len(codes) == 10  # the first factor comes with recovery codes
    page.get_by_role("link", name="I saved them, continue").click()
    page.goto(f"{stack.actas_url}/dashboard/account")
    expect(page.get_by_test_id("passkeys")).to_contain_text("Test laptop")
    screenshot(page, "17-passkey-added")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()

    # Within the step-up window the passkey sign-in counts: the application opens.
    ada = user_id(stack, "ada@example.com")
    page.goto(f"{stack.actas_url}/dashboard/users/{ada}")
    expect(page.get_by_test_id("step-up-due")).to_have_count(0)

    _age_second_factor_checks(data_dir, "owner@example.com", minutes=11)
    page.reload()
    expect(page.get_by_test_id("step-up-due")).to_be_visible()
    page.get_by_label("Reason").fill("Ticket #40: the export is empty")
    page.get_by_role("button", name="Impersonate user").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users/{ada}")
    expect(page.get_by_test_id("step-up-due")).to_have_count(0)
    page.get_by_label("Reason").fill("Ticket #40: the export is empty")
    with context.expect_page() as opened:
        page.get_by_role("button", name="Impersonate user").click()
    app = opened.value
    expect(app.get_by_text("Ada", exact=False).first).to_be_visible()
    with stack.backend() as backend:
        [created, *_] = backend.get("/v1/audit_events", params={
            "type": "actor_token.created"}).json()["data"]
        assert created["data"]["second_factor"]["kind"] == "passkey"
        [accepted, *_] = backend.get("/v1/audit_events", params={
            "type": "actor_token.accepted"}).json()["data"]
    # The impersonation's page says how its impersonator confirmed it was them.
    page.goto(f"{stack.actas_url}/dashboard/impersonations/{accepted['session_id']}")
    expect(page.get_by_test_id("second-factor-check")).to_contain_text("a passkey")
