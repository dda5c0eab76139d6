"""Four eyes, in real browsers, on a server whose policy sends every full impersonation
to a second operator (ACTAS_APPROVAL_REQUIRED_FOR=full): the requester waits and cannot
approve their own; an owner approves in the approvals queue; then it starts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import Stack, dashboard_sign_in, running_stack, screenshot, user_id


@pytest.fixture(scope="module")
def four_eyes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("four-eyes"),
                       ACTAS_APPROVAL_REQUIRED_FOR="full",
                       ACTAS_FULL_IMPERSONATION_ROLES="owner,admin,support") as running:
        yield running


def test_a_second_operator_approves_a_full_impersonation_the_requester_could_not(
        browser_context_pair: tuple[BrowserContext, BrowserContext], four_eyes: Stack) -> None:
    stack = four_eyes
    support, owner = browser_context_pair
    grace = user_id(stack, "grace@example.com")
    page = support.new_page()
    dashboard_sign_in(page, stack, "support@example.com")
    page.goto(f"{stack.actas_url}/dashboard/users/{grace}")
    page.get_by_label("Full").check()
    page.get_by_label("Reason").fill("Ticket #31: fix the billing address")
    with support.expect_page() as opened:  # the answer lands in the new tab
        page.get_by_role("button", name="Impersonate user").click()
    answer = opened.value
    expect(answer.get_by_test_id("sent-for-approval")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("approval-waiting")).to_contain_text("policy: full")

    # The requester sees their request in the queue, with nothing to press.
    page.goto(f"{stack.actas_url}/dashboard/approvals")
    request = page.get_by_test_id("approval").filter(has_text="Ticket #31")
    expect(request).to_contain_text("This is your request")
    expect(request.get_by_role("button", name="Approve")).to_have_count(0)

    approver = owner.new_page()
    dashboard_sign_in(approver, stack, "owner@example.com")
    approver.goto(f"{stack.actas_url}/dashboard/approvals")
    waiting = approver.get_by_test_id("approval").filter(has_text="Ticket #31")
    expect(waiting).to_contain_text("Sam Support wants to impersonate Grace Hopper")
    screenshot(approver, "15-approvals-queue")
    waiting.get_by_label("Your reason").fill("Confirmed with Grace on the phone")
    waiting.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status")).to_contain_text("Approved")

    page.goto(f"{stack.actas_url}/dashboard/users/{grace}")
    expect(page.get_by_test_id("approval-ready")).to_contain_text("Approved by Olivia Owner")
    page.get_by_label("Full").check()
    page.get_by_label("Reason").fill("Ticket #31: fix the billing address")
    with support.expect_page() as opened:
        page.get_by_role("button", name="Impersonate user").click()
    app = opened.value
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    banner = app.get_by_test_id("actas-impersonation-banner")
    expect(banner).to_contain_text("Grace Hopper")
    expect(banner).not_to_contain_text("read-only")
