"""An operator sets up an authenticator app in Chromium, signs out, and signs in again
with a second step (here a recovery code; the TOTP code itself is computed in the test).
On a server of its own: the other browser tests' operators keep signing in with a
password."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import OPERATOR_PASSWORD, Stack, running_stack, screenshot


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("second-factor")) as running:
        yield running


def test_an_operator_sets_up_totp_then_signs_in_with_a_second_step(
        context: BrowserContext, own_stack: Stack) -> None:
    stack = own_stack
    page = context.new_page()
    page.goto(f"{stack.actas_url}/dashboard/sign_in")
    page.get_by_label("Email").fill("support@example.com")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
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
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="One more step")).to_be_visible()
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")
    page.goto(f"{stack.actas_url}/dashboard/account")
    expect(page.get_by_test_id("second-factor")).to_contain_text("9 recovery codes left")
