"""Operators sign in strongly: a TOTP second factor required of every role that may
impersonate, recovery codes, and a fresh check (step-up) before impersonating.

The attacks: using the dashboard with a password alone; replaying a code seen once;
using a recovery code twice; guessing codes; impersonating long after the last check.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from actas.server import Instance, operators
from actas.server.audit import RequestOrigin
from actas.server.clock import FrozenClock
from tests.support.dashboard import PASSWORD, _operator, post_sign_in
from tests.support.dashboard import csrf_in as _csrf
from tests.support.flows import create_user

CLI = RequestOrigin(user_agent="test")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"operator_second_factor": "required", "step_up_minutes": 10}


def _code(secret: str, clock: FrozenClock) -> str:
    return pyotp.TOTP(secret).at(clock.now_ms() // 1000)


def _enrol(dashboard: TestClient, clock: FrozenClock) -> tuple[str, list[str]]:
    page = dashboard.get("/dashboard/account/second_factor").text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page)
    factor = re.search(r'name="factor_id" value="([^"]+)"', page)
    assert secret and factor, page
    done = dashboard.post("/dashboard/account/second_factor", data={
        "csrf_token": _csrf(page), "factor_id": factor.group(1),
        "code": _code(secret.group(1), clock)})
    assert done.status_code == 200, done.text
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", done.text)
    return secret.group(1), codes


def test_a_password_alone_opens_nothing_but_the_set_up(
        dashboard: TestClient, instance: Instance, clock: FrozenClock) -> None:
    _operator(instance, "sam@support.test", "support")
    signed_in = post_sign_in(dashboard, "sam@support.test", PASSWORD)
    assert signed_in.headers["location"].startswith("/dashboard/account/second_factor?next=")
    blocked = dashboard.get("/dashboard/users")
    assert blocked.status_code == 303
    assert blocked.headers["location"].startswith("/dashboard/account/second_factor")

    page = dashboard.get("/dashboard/account/second_factor").text
    wrong = dashboard.post("/dashboard/account/second_factor", data={
        "csrf_token": _csrf(page), "factor_id": "opf_x", "code": "000000"})
    assert wrong.status_code == 422
    _secret, codes = _enrol(dashboard, clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert dashboard.get("/dashboard/users").status_code == 200
    account = dashboard.get("/dashboard/account").text
    assert "Authenticator app" in account and "10 recovery codes left" in account


def test_the_second_step_a_code_is_good_once_and_a_recovery_code_too(
        dashboard: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    _operator(instance, "sam@support.test", "support")
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    secret, codes = _enrol(dashboard, clock)
    used = _code(secret, clock)

    dashboard.cookies.clear()
    again = post_sign_in(dashboard, "sam@support.test", PASSWORD)
    assert again.headers["location"].startswith("/dashboard/sign_in/second_factor")
    assert dashboard.get("/dashboard/users").status_code == 303
    form = dashboard.get("/dashboard/sign_in/second_factor").text
    replayed = dashboard.post("/dashboard/sign_in/second_factor",
                              data={"csrf_token": _csrf(form), "code": used})
    assert replayed.status_code == 401  # the enrolment's code, seen once
    clock.advance(seconds=30)
    fresh = dashboard.post("/dashboard/sign_in/second_factor",
                           data={"csrf_token": _csrf(form), "code": _code(secret, clock)})
    assert fresh.status_code == 303 and dashboard.get("/dashboard/users").status_code == 200

    for attempt in range(2):  # a recovery code signs in once
        dashboard.cookies.clear()
        post_sign_in(dashboard, "sam@support.test", PASSWORD)
        form = dashboard.get("/dashboard/sign_in/second_factor").text
        answer = dashboard.post("/dashboard/sign_in/second_factor",
                                data={"csrf_token": _csrf(form), "code": codes[0].upper()})
        assert answer.status_code == (303 if attempt == 0 else 401)
    types = [e["type"] for e in backend.get("/v1/audit_events", params={"limit": 200}).json()[
        "data"]]
    assert {"operator.second_factor_enrolled", "operator.second_factor_failed",
            "operator.recovery_code_used", "operator.second_factor_checked"} <= set(types)


def test_guessing_codes_is_rate_limited(dashboard: TestClient, instance: Instance,
                                        clock: FrozenClock) -> None:
    _operator(instance, "sam@support.test", "support")
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    _enrol(dashboard, clock)
    dashboard.cookies.clear()
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    form = dashboard.get("/dashboard/sign_in/second_factor").text
    statuses = [dashboard.post("/dashboard/sign_in/second_factor",
                               data={"csrf_token": _csrf(form), "code": f"{n:06d}"}).status_code
                for n in range(12)]
    assert 429 in statuses and statuses.index(429) <= 10


def test_impersonating_asks_again_after_the_step_up_window(
        dashboard: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    _operator(instance, "sam@support.test", "support")
    ada = create_user(backend)
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    secret, _codes = _enrol(dashboard, clock)
    token = _csrf(dashboard.get(f"/dashboard/users/{ada['id']}").text)
    fresh = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #1"})
    assert "/v1/tickets/accept" in fresh.headers["location"]  # just checked at enrolment

    clock.advance(seconds=11 * 60)
    token = _csrf(dashboard.get(f"/dashboard/users/{ada['id']}").text)
    stale = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #2"})
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/dashboard/step_up?next=")
    page = dashboard.get(stale.headers["location"]).text
    assert "Confirm it" in page
    checked = dashboard.post("/dashboard/step_up", data={
        "csrf_token": _csrf(page), "code": _code(secret, clock),
        "next": f"/dashboard/users/{ada['id']}"})
    assert checked.headers["location"] == f"/dashboard/users/{ada['id']}"
    started = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                             data={"csrf_token": token, "reason": "Ticket #2"})
    assert "/v1/tickets/accept" in started.headers["location"]
    [latest, *_] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert latest["data"]["second_factor"]["kind"] == "totp"
    assert latest["data"]["second_factor"]["at"] == clock.now_ms()


def test_a_viewer_promoted_while_signed_in_must_set_up_a_factor_before_impersonating(
        dashboard: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    """A viewer needs no factor and signs in with a password; promoted meanwhile, that
    session must not impersonate or make admin tools without one."""
    ada = create_user(backend)
    vera_id = _operator(instance, "vera@viewer.test", "viewer")
    post_sign_in(dashboard, "vera@viewer.test", PASSWORD)
    assert dashboard.get("/dashboard/users").status_code == 200  # no factor needed
    with instance.transaction() as db:
        vera = operators.get(db, vera_id)
        operators.set_role(db, instance, vera, "owner", by="cli", origin=CLI)
    token = _csrf(dashboard.get(f"/dashboard/users/{ada['id']}").text)
    refused = [
        dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                       data={"csrf_token": token, "reason": "Ticket #5"}),
        dashboard.post("/dashboard/admin_tools", data={"csrf_token": token, "name": "Mine",
                                                       "full": "yes", "protected": "yes"}),
    ]
    for answer in refused:
        assert answer.headers["location"].startswith("/dashboard/step_up?next=")
    check = dashboard.get(refused[0].headers["location"])
    assert check.headers["location"].startswith("/dashboard/account/second_factor?next=")
    _secret, codes = _enrol(dashboard, clock)
    assert codes
    started = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                             data={"csrf_token": token, "reason": "Ticket #5"})
    assert "/v1/tickets/accept" in started.headers["location"]


def test_odd_characters_in_a_csrf_token_or_a_code_are_refused_not_a_crash(
        dashboard: TestClient, instance: Instance, clock: FrozenClock) -> None:
    _operator(instance, "sam@support.test", "support")
    form = dashboard.get("/dashboard/sign_in").text
    assert form
    odd = dashboard.post("/dashboard/sign_in", data={
        "email": "sam@support.test", "password": PASSWORD, "csrf_token": "é" * 64})
    assert odd.status_code == 403
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    _enrol(dashboard, clock)
    dashboard.cookies.clear()
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    page = dashboard.get("/dashboard/sign_in/second_factor").text
    arabic = dashboard.post("/dashboard/sign_in/second_factor",
                            data={"csrf_token": _csrf(page), "code": "١٢٣٤٥٦"})
    assert arabic.status_code == 401
    forged = dashboard.post("/dashboard/sign_in/second_factor",
                            data={"csrf_token": "ü" * 64, "code": "123456"})
    assert forged.status_code in (303, 403)  # refused (the dashboard's CSRF answer)
    assert dashboard.get("/dashboard/users").status_code == 303  # still not signed in
