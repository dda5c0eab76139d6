"""Operators' passkeys: added from the account page or at enrolment, signing in alone,
completing a password sign-in, and answering the step-up before an impersonation.

A software authenticator (tests/support/passkeys.py) answers as a platform one would,
so that each check can be attacked on its own: a replayed answer, another site's origin,
an expired challenge, a challenge from another browser, another operator's passkey, a
cloned authenticator (its counter going back), a presence without user verification.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from actas.server import Instance, operator_passkeys, operators
from actas.server.clock import FrozenClock
from actas.server.db.schema import OperatorSession
from tests.support.dashboard import PASSWORD, _operator, post_sign_in
from tests.support.dashboard import csrf_in as _csrf
from tests.support.flows import create_user
from tests.support.passkeys import SoftAuthenticator


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"operator_second_factor": "required", "step_up_minutes": 10}


def _authenticator(instance: Instance) -> SoftAuthenticator:
    rp = operator_passkeys.relying_party(instance)
    return SoftAuthenticator(origin=rp.origin, rp_id=rp.id)


def _options(client: TestClient, purpose: str) -> dict[str, Any]:
    answer = client.get("/dashboard/passkeys/options", params={"purpose": purpose})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    options: dict[str, Any] = answer.json()
    return options


def _add_passkey(client: TestClient, key: SoftAuthenticator, csrf_token: str,
                 label: str = "Laptop") -> Any:
    options = _options(client, "register")
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    answer = key.create(options["publicKey"])

    return client.post("/dashboard/account/passkeys", data={
        "csrf_token": csrf_token, "token": options["token"], "credential": json.dumps(answer),
        "label": label})


def _sign_in_form(client: TestClient) -> str:
    return _csrf(client.get("/dashboard/sign_in").text)


def _passkey_sign_in(client: TestClient, key: SoftAuthenticator, **get: Any
                     ) -> tuple[Any, dict[str, str]]:

    csrf_token = _sign_in_form(client)
    options = _options(client, "sign_in")
    assert "allowCredentials" not in options["publicKey"] or \
        options["publicKey"]["allowCredentials"] == []  # any passkey of this site
    form = {"csrf_token": csrf_token, "token": options["token"],
            "credential": json.dumps(key.get(options["publicKey"], **get))}
    return client.post("/dashboard/sign_in/passkey", data=form), form


def _enrolled(dashboard: TestClient, instance: Instance, email: str = "sam@support.test",
              role: str = "support") -> SoftAuthenticator:
    """An operator who signed in with a password and chose a passkey at enrolment."""
    _operator(instance, email, role)
    signed_in = post_sign_in(dashboard, email, PASSWORD)
    assert signed_in.headers["location"].startswith("/dashboard/account/second_factor")
    page = dashboard.get("/dashboard/account/second_factor").text
    assert 'data-passkey="register"' in page  # offered first, before the app
    assert page.index('data-passkey="register"') < page.index("totp-secret")
    key = _authenticator(instance)
    added = _add_passkey(dashboard, key, _csrf(page))
    assert added.status_code == 200, added.text
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", added.text)
    assert len(codes) == 10  # the first factor comes with recovery codes
    return key


def test_a_passkey_at_enrolment_then_signing_in_with_it_alone(
        dashboard: TestClient, backend: TestClient, instance: Instance) -> None:
    key = _enrolled(dashboard, instance)
    assert dashboard.get("/dashboard/users").status_code == 200
    account = dashboard.get("/dashboard/account").text
    assert "Laptop" in account and "10 recovery codes left" in account

    dashboard.cookies.clear()
    signed_in, _form = _passkey_sign_in(dashboard, key)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard/users"
    assert dashboard.get("/dashboard/users").status_code == 200
    with instance.transaction() as db:
        [latest] = [s for s in db.query(OperatorSession).all() if s.ended_at is None][-1:]
        assert latest.second_factor_kind == "passkey" and latest.pending is None
    events = backend.get("/v1/audit_events", params={"type": "operator.signed_in"}).json()
    assert events["data"][0]["data"]["with"] == "passkey"
    enrolled = backend.get("/v1/audit_events", params={
        "type": "operator.second_factor_enrolled"}).json()["data"]
    assert enrolled[0]["data"]["kind"] == "passkey"


def test_an_answer_is_accepted_once_and_only_from_this_site_and_browser(
        dashboard: TestClient, instance: Instance, clock: FrozenClock) -> None:

    key = _enrolled(dashboard, instance)
    dashboard.cookies.clear()
    signed_in, form = _passkey_sign_in(dashboard, key)
    assert signed_in.status_code == 303
    dashboard.cookies.clear()
    csrf_token = _sign_in_form(dashboard)
    replayed = dashboard.post("/dashboard/sign_in/passkey", data={**form,
                                                                  "csrf_token": csrf_token})
    assert replayed.status_code == 401  # bound to the other browser's sign-in cookie

    phished, _ = _passkey_sign_in(dashboard, key, origin="https://actas-login.test")
    assert phished.status_code == 401 and "not accepted" in phished.text

    unverified, _ = _passkey_sign_in(dashboard, key, user_verified=False)
    assert unverified.status_code == 401  # presence alone is not a second factor

    csrf_token = _sign_in_form(dashboard)
    options = _options(dashboard, "sign_in")
    clock.advance(seconds=6 * 60)
    late = dashboard.post("/dashboard/sign_in/passkey", data={
        "csrf_token": csrf_token, "token": options["token"],
        "credential": json.dumps(key.get(options["publicKey"]))})
    assert late.status_code == 401 and "expired" in late.text

    cloned, _ = _passkey_sign_in(dashboard, key, sign_count=1)
    assert cloned.status_code == 401  # its counter went back: a copy of the key

    stranger = _authenticator(instance)
    unknown, _ = _passkey_sign_in(dashboard, stranger)
    assert unknown.status_code == 401 and "not registered" in unknown.text

    same_browser_twice, form = _passkey_sign_in(dashboard, key)
    assert same_browser_twice.status_code == 303
    dashboard.cookies.clear()
    assert dashboard.post("/dashboard/sign_in/passkey", data=form).status_code in (401, 403)
    assert dashboard.get("/dashboard/users").status_code == 303


def test_a_disabled_operator_cannot_sign_in_with_a_passkey(
        dashboard: TestClient, instance: Instance) -> None:
    key = _enrolled(dashboard, instance)
    dashboard.cookies.clear()
    with instance.transaction() as db:
        [sam] = [o for o in operators.list_all(db) if o.email_address == "sam@support.test"]
        sam.disabled = True
    refused, _ = _passkey_sign_in(dashboard, key)
    assert refused.status_code == 401
    assert dashboard.get("/dashboard/users").status_code == 303


def test_a_passkey_completes_a_password_sign_in_and_answers_the_step_up(
        dashboard: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:

    key = _enrolled(dashboard, instance)
    ada = create_user(backend)
    dashboard.cookies.clear()
    started = post_sign_in(dashboard, "sam@support.test", PASSWORD)
    assert started.headers["location"].startswith("/dashboard/sign_in/second_factor")
    page = dashboard.get(started.headers["location"]).text
    assert 'data-passkey="check"' in page
    options = _options(dashboard, "check")
    assert [c["id"] for c in options["publicKey"]["allowCredentials"]] == [
        key.get(options["publicKey"])["id"]]
    options = _options(dashboard, "check")
    done = dashboard.post("/dashboard/sign_in/second_factor", data={
        "csrf_token": _csrf(page), "token": options["token"],
        "credential": json.dumps(key.get(options["publicKey"]))})
    assert done.status_code == 303 and dashboard.get("/dashboard/users").status_code == 200

    clock.advance(seconds=11 * 60)
    token = _csrf(dashboard.get(f"/dashboard/users/{ada['id']}").text)
    stale = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #3"})
    assert stale.headers["location"].startswith("/dashboard/step_up?next=")
    page = dashboard.get(stale.headers["location"]).text
    options = _options(dashboard, "check")
    checked = dashboard.post("/dashboard/step_up", data={
        "csrf_token": _csrf(page), "token": options["token"],
        "credential": json.dumps(key.get(options["publicKey"])),
        "next": f"/dashboard/users/{ada['id']}"})
    assert checked.headers["location"] == f"/dashboard/users/{ada['id']}"
    again = dashboard.post(f"/dashboard/users/{ada['id']}/impersonate",
                           data={"csrf_token": token, "reason": "Ticket #3"})
    assert "/v1/tickets/accept" in again.headers["location"]
    [latest, *_] = backend.get("/v1/audit_events", params={
        "type": "actor_token.created"}).json()["data"]
    assert latest["data"]["second_factor"] == {"kind": "passkey", "at": clock.now_ms()}


def test_another_operators_passkey_does_not_answer_for_you(
        dashboard: TestClient, instance: Instance) -> None:

    mallory_key = _enrolled(dashboard, instance, "mallory@support.test")
    dashboard.cookies.clear()
    _enrolled(dashboard, instance, "sam@support.test")
    dashboard.cookies.clear()
    post_sign_in(dashboard, "sam@support.test", PASSWORD)
    page = dashboard.get("/dashboard/sign_in/second_factor").text
    options = _options(dashboard, "check")
    refused = dashboard.post("/dashboard/sign_in/second_factor", data={
        "csrf_token": _csrf(page), "token": options["token"],
        "credential": json.dumps(mallory_key.get(options["publicKey"]))})
    assert refused.status_code == 401
    assert dashboard.get("/dashboard/users").status_code == 303


def test_the_last_factor_of_a_role_that_needs_one_cannot_be_removed(
        dashboard: TestClient, instance: Instance) -> None:
    _enrolled(dashboard, instance)
    account = dashboard.get("/dashboard/account").text
    passkey_id = re.search(r"/dashboard/account/passkeys/(oppk_[^/]+)/remove", account)
    assert passkey_id, account
    refused = dashboard.post(f"/dashboard/account/passkeys/{passkey_id.group(1)}/remove",
                             data={"csrf_token": _csrf(account)})
    assert refused.status_code == 403
    second = _add_passkey(dashboard, _authenticator(instance), _csrf(account), "Phone")
    assert second.status_code == 303  # not the first factor: no new recovery codes
    removed = dashboard.post(f"/dashboard/account/passkeys/{passkey_id.group(1)}/remove",
                             data={"csrf_token": _csrf(account)})
    assert removed.status_code == 303
    account = dashboard.get("/dashboard/account").text
    assert "Phone" in account and "Laptop" not in account


def test_changing_how_one_signs_in_or_what_can_impersonate_needs_a_fresh_check(
        dashboard: TestClient, backend: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    """Someone at an unlocked browser, the check long past, must not add their own passkey
    (a way in for later, and a step-up now), remove one, replace the authenticator app,
    make an admin tool that impersonates without any factor, or take a token for one."""
    key = _enrolled(dashboard, instance, "olive@owner.test", "owner")
    csrf_token = _csrf(dashboard.get("/dashboard/account").text)
    clock.advance(seconds=11 * 60)
    account = dashboard.get("/dashboard/account").text
    assert 'data-testid="confirm-to-change"' in account
    assert 'data-passkey="register"' not in account
    with instance.transaction() as db:
        checked_at = [s.second_factor_at for s in db.query(OperatorSession).all()
                      if s.ended_at is None][-1]

    intruder = _authenticator(instance)
    options = _options(dashboard, "register")
    added = dashboard.post("/dashboard/account/passkeys", data={
        "csrf_token": csrf_token, "token": options["token"],
        "credential": json.dumps(intruder.create(options["publicKey"]))})
    passkey_id = re.search(r"/dashboard/account/passkeys/(oppk_[^/]+)/remove",
                           dashboard.get("/dashboard/users").text + account)
    attempts = {
        "add a passkey": added,
        "replace the app": dashboard.get("/dashboard/account/second_factor"),
        "create an admin tool": dashboard.post("/dashboard/admin_tools", data={
            "csrf_token": csrf_token, "name": "Backdoor", "full": "yes", "protected": "yes"}),
    }
    for what, answer in attempts.items():
        assert answer.status_code == 303, what
        assert answer.headers["location"].startswith("/dashboard/step_up?next="), what
    assert passkey_id is None  # no remove button is offered either
    with instance.transaction() as db:
        assert len(operator_passkeys.of_operator(
            db, next(o for o in operators.list_all(db) if o.role == "owner").id)) == 1
        assert [s.second_factor_at for s in db.query(OperatorSession).all()
                if s.ended_at is None][-1] == checked_at  # no step-up for free
    assert backend.get("/v1/audit_events", params={
        "type": "machine_client.created"}).json()["data"] == []

    page = dashboard.get("/dashboard/step_up?next=/dashboard/admin_tools").text
    options = _options(dashboard, "check")
    dashboard.post("/dashboard/step_up", data={
        "csrf_token": _csrf(page), "token": options["token"],
        "credential": json.dumps(key.get(options["publicKey"])),
        "next": "/dashboard/admin_tools"})
    made = dashboard.post("/dashboard/admin_tools", data={
        "csrf_token": csrf_token, "name": "Support console"})
    assert made.status_code == 200
    [created] = backend.get("/v1/audit_events", params={
        "type": "machine_client.created"}).json()["data"]
    assert created["actor_sub"] is not None  # the owner who made it, by name in the log


def test_a_passkey_answer_nested_to_exhaustion_is_refused_not_a_crash(
        dashboard: TestClient) -> None:
    csrf_token = _sign_in_form(dashboard)
    answer = dashboard.post("/dashboard/sign_in/passkey", data={
        "csrf_token": csrf_token, "token": "x", "credential": "[" * 5000})
    assert answer.status_code == 401
