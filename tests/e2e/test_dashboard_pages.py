"""Every dashboard page, as a person with any screen or input sees it: axe-core (from
the npm package, injected into Chromium) finds no serious or critical violation in
light or dark mode; at 390 px nothing but a table's own box scrolls sideways; and the
story can be done with the keyboard alone, with the focus always visible.

The screenshots it takes (1280 px and 390 px) are the README's: ``make screenshots``
copies them into ``docs/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import (
    DEFAULT_TIMEOUT_MS,
    ROOT,
    Stack,
    dashboard_sign_in,
    screenshot,
    user_id,
)

AXE = ROOT / "js" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `cd js && npm ci` (make test does)")
    return AXE.read_text()


def _context(browser: Browser, width: int, scheme: str) -> BrowserContext:
    # bypass_csp: the dashboard's CSP rightly refuses injected scripts; axe is ours.
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme=scheme,  # type: ignore[arg-type]
                                  bypass_csp=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return context


@pytest.fixture(params=[(1280, "light"), (390, "light"), (390, "dark")],
                ids=["1280-light", "390-light", "390-dark"])
def sized(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[Page, int, str]]:
    width, scheme = request.param
    context = _context(browser, width, scheme)
    yield context.new_page(), width, scheme
    context.close()


def _violations(page: Page, axe_source: str) -> list[dict[str, Any]]:
    page.evaluate(axe_source)
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def _describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['impact']} {v['id']}: {v['help']} — "
                     + "; ".join(n["target"][0] for n in v["nodes"][:3]) for v in violations)


def _pages(stack: Stack) -> tuple[list[tuple[str, str]], str]:
    """Every dashboard page worth a look, with a live impersonation so that the lists
    and the detail page have something in them."""
    ada = user_id(stack, "ada@example.com")
    with stack.backend() as backend:
        # Users who ask to be asked, and who refuse: their pages show the consent states.
        minded = {}
        for preference in ("ask", "never"):
            email = f"axe-{preference}@example.com"
            found = backend.get("/v1/users", params={"email_address": email}).json()
            minded[preference] = found[0]["id"] if found else backend.post("/v1/users", json={
                "email_address": [email], "first_name": "Axe", "last_name": preference.title(),
                "impersonation_preference": preference}).json()["id"]
        token = backend.post("/v1/actor_tokens", json={
            "user_id": user_id(stack, "grace@example.com"), "reason": "axe: every page",
            "actor": {"sub": "op_axe", "name": "Axe Auditor"}}).json()
        [event] = backend.get("/v1/audit_events", params={"limit": 1}).json()["data"]
    return [("users", "/dashboard/users"),
            ("users-search-empty", "/dashboard/users?q=nobody-matches-this"),
            ("user", f"/dashboard/users/{ada}"),
            ("user-asks", f"/dashboard/users/{minded['ask']}"),
            ("user-never", f"/dashboard/users/{minded['never']}"),
            ("approvals", "/dashboard/approvals"),
            ("account", "/dashboard/account"),
            ("second-factor-set-up", "/dashboard/account/second_factor"),
            ("step-up", "/dashboard/step_up"),
            ("impersonations", "/dashboard/impersonations"),
            ("audit", "/dashboard/audit"),
            ("audit-event", f"/dashboard/audit/{event['seq']}"),
            ("operators", "/dashboard/operators"),
            ("not-found", "/dashboard/users/user_doesnotexist")], token["url"]


def test_every_page_passes_axe_and_fits_a_phone(sized: tuple[Page, int, str], stack: Stack,
                                                axe_source: str) -> None:
    page, width, scheme = sized
    failures: list[str] = []

    def check(name: str) -> None:
        bad = _violations(page, axe_source)
        if bad:
            failures.append(f"{name} ({width} px, {scheme}):\n{_describe(bad)}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            failures.append(f"{name} ({width} px): the page scrolls sideways by {overflow} px")
        if scheme == "light":
            screenshot(page, f"page-{name}-{width}")

    page.goto(stack.actas_url + "/")
    check("landing")
    page.goto(f"{stack.actas_url}/dashboard/sign_in")
    check("sign-in")
    dashboard_sign_in(page, stack, "owner@example.com")
    pages, ticket_url = _pages(stack)
    # A live impersonation, in a browser of its own, for the lists and the detail page.
    assert page.context.browser is not None
    elsewhere = page.context.browser.new_context()
    try:
        watched = elsewhere.new_page()
        watched.goto(ticket_url)
        expect(watched.get_by_test_id("actas-impersonation-banner")).to_be_visible()
    finally:
        elsewhere.close()
    for name, path in pages:
        page.goto(stack.actas_url + path)
        expect(page.locator("main h1")).to_be_visible()
        check(name)
    # The live impersonation's own page, and the kill switch's confirmation.
    page.goto(f"{stack.actas_url}/dashboard/impersonations")
    row = page.locator("tr", has_text="axe: every page").first
    row.get_by_role("link", name="Axe Auditor").click()
    expect(page.get_by_test_id("impersonation-facts")).to_be_visible()
    check("impersonation")
    page.goto(f"{stack.actas_url}/dashboard/impersonations")
    page.get_by_role("button", name="End all impersonations").click()
    expect(page.get_by_test_id("end-all-confirmation")).to_be_visible()
    check("end-all-confirmation")
    # Out of the way of the other tests' lists and screenshots.
    with stack.backend() as backend:
        for session in backend.get("/v1/sessions", params={"actor_sub": "op_axe",
                                                           "status": "active"}).json():
            backend.post(f"/v1/sessions/{session['id']}/revoke")
    assert not failures, "\n\n".join(failures)


def test_the_story_by_keyboard_alone_with_the_focus_visible(context: BrowserContext,
                                                           stack: Stack) -> None:
    page = context.new_page()
    page.goto(f"{stack.actas_url}/dashboard/sign_in")

    def focus_is_visible() -> None:
        outline = page.evaluate("""() => {
            const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        assert outline[0] != "none" and outline[1] >= 2, outline

    def tab_to(name: str, role: str = "link", limit: int = 60) -> None:
        """Press Tab until the element with this role and name has the focus."""
        target = page.get_by_role(role, name=name).first  # type: ignore[arg-type]
        for _ in range(limit):
            page.keyboard.press("Tab")
            if target.evaluate("el => el === document.activeElement"):
                focus_is_visible()
                return
        raise AssertionError(f"Tab never reached the {role} {name!r}")

    expect(page.get_by_label("Email")).to_be_focused()  # autofocus: type straight away
    page.keyboard.type("support@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("actas-demo-operator")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")

    # The first Tab offers to skip the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    focus_is_visible()
    tab_to("Search", "searchbox")
    page.keyboard.type("turing")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Alan Turing")).to_be_visible()
    tab_to("Alan Turing")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Impersonate user")).to_be_visible()

    tab_to("Reason", "textbox")
    page.keyboard.type("Keyboard only: checking the orders page")
    tab_to("Impersonate user", "button")
    with context.expect_page() as opened:
        page.keyboard.press("Enter")
    app = opened.value
    app.wait_for_url(re.compile(re.escape(stack.app_url)))
    expect(app.get_by_test_id("actas-impersonation-banner")).to_be_visible()

    # And out again, from the banner, by keyboard.
    stop = app.get_by_test_id("actas-stop-impersonating")
    for _ in range(60):
        app.keyboard.press("Tab")
        if stop.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached Stop impersonating")
    app.keyboard.press("Enter")
    expect(app.get_by_test_id("impersonation-ended")).to_be_visible()

