"""Impersonation modes: ``read_only`` or ``full``, chosen with the actor token, capped by the
operator's role, carried in the token as ``act_mode``, and enforced by the Frontend API.

The attacks: a support operator asking for a full impersonation; an admin's full
one living on after they were made support; a read-only impersonator changing the
user's profile, or signing another account into the watched browser; a nested
impersonation used to shed read-only.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from actas._errors import ImpersonationModeNotPermitted
from actas.server import Instance, operators
from actas.server.audit import RequestOrigin
from actas.server.db.schema import AuditEvent, Operator
from actas.server.impersonation import actor_tokens
from actas.server.impersonation.policy import Requester
from tests.support.flows import (
    PASSWORD,
    claims,
    create_actor_token,
    create_user,
    error_code,
    mint,
    redeem,
    sign_in,
)

CLI = RequestOrigin(user_agent="test")


def _operator(instance: Instance, role: str) -> Operator:
    with instance.transaction() as db:
        return operators.create(db, instance, email=f"{role}@support.test", role=role,
                                password="long enough")


def _ticket(instance: Instance, operator: Operator, user_id: str, mode: Any = None) -> str:
    issued = actor_tokens.create(instance, requester=Requester.of_operator(operator),
                                 user_id=user_id, actor={"sub": operator.id}, reason="r",
                                 origin=CLI, mode=mode)
    return issued.ticket.reveal()


def _types(instance: Instance) -> list[str]:
    with instance.transaction() as db:
        return list(db.scalars(select(AuditEvent.type).order_by(AuditEvent.seq)))


def test_the_mode_is_on_the_token_the_session_and_the_jwt(backend: TestClient,
                                                          browser: TestClient) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], mode="read_only")
    assert token["mode"] == "read_only"
    session_id = redeem(browser, token["token"])

    jwt_claims = claims(mint(browser, session_id))
    session = backend.get(f"/v1/sessions/{session_id}").json()

    assert jwt_claims["act"]["sub"] == "op_alice" and "mode" not in jwt_claims["act"]
    assert jwt_claims["act_mode"] == "read_only"
    assert session["impersonation_mode"] == "read_only"
    assert backend.get(f"/v1/actor_tokens/{token['id']}").json()["mode"] == "read_only"


def test_the_backend_api_defaults_to_full_as_clerks_actor_tokens_do(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"])
    assert token["mode"] == "full"
    assert claims(mint(browser, redeem(browser, token["token"])))["act_mode"] == "full"


def test_an_unknown_mode_is_a_clear_422(backend: TestClient) -> None:
    user = create_user(backend)
    response = backend.post("/v1/actor_tokens", json={
        "user_id": user["id"], "actor": {"sub": "op_alice"}, "reason": "r", "mode": "admin"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["meta"]["param_name"] == "mode"


@pytest.mark.parametrize("role, full_allowed", [("owner", True), ("admin", True),
                                                ("support", False)])
def test_full_impersonation_is_capped_by_role(backend: TestClient, instance: Instance,
                                              role: str, full_allowed: bool) -> None:
    user = create_user(backend)
    operator = _operator(instance, role)
    _ticket(instance, operator, user["id"], mode="read_only")  # every such role may
    if full_allowed:
        _ticket(instance, operator, user["id"], mode="full")
    else:
        with pytest.raises(ImpersonationModeNotPermitted):
            _ticket(instance, operator, user["id"], mode="full")
        [refused] = backend.get("/v1/audit_events",
                                params={"type": "impersonation.refused"}).json()["data"]
        assert refused["data"]["code"] == "impersonation_mode_not_permitted"
        assert refused["data"]["mode"] == "full"


def test_an_operator_without_a_mode_gets_read_only(backend: TestClient,
                                                   instance: Instance) -> None:
    user = create_user(backend)
    operator = _operator(instance, "owner")
    issued = actor_tokens.create(instance, requester=Requester.of_operator(operator),
                                 user_id=user["id"], actor={"sub": operator.id}, reason="r",
                                 origin=CLI)
    assert issued.row.mode == "read_only"


class TestConfiguredCaps:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"full_impersonation_roles": "owner"}

    def test_only_the_configured_roles_may_start_full(self, backend: TestClient,
                                                      instance: Instance) -> None:
        user = create_user(backend)
        with pytest.raises(ImpersonationModeNotPermitted):
            _ticket(instance, _operator(instance, "admin"), user["id"], mode="full")
        _ticket(instance, _operator(instance, "owner"), user["id"], mode="full")


def test_a_full_impersonation_ends_once_its_operator_may_only_read(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    user = create_user(backend)
    admin = _operator(instance, "admin")
    session_id = redeem(browser, _ticket(instance, admin, user["id"], mode="full"))
    pending = _ticket(instance, admin, user["id"], mode="full")
    mint(browser, session_id)
    with instance.transaction() as db:
        operators.set_role(db, instance, operators.get(db, admin.id), "support", by="owner",
                           origin=CLI)

    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert error_code(refused) == "session_not_active"
    [ended] = backend.get("/v1/audit_events",
                          params={"type": "impersonation.ended_by_policy"}).json()["data"]
    assert ended["data"]["code"] == "impersonation_mode_not_permitted"
    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as other:
        late = other.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": pending})
    assert error_code(late) == "impersonation_mode_not_permitted"


def test_a_read_only_impersonator_cannot_change_the_profile(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    user = create_user(backend, first_name="Ada")
    redeem(browser, create_actor_token(backend, user["id"], mode="read_only")["token"])

    refused = browser.patch("/v1/me", json={"first_name": "Mallory",
                                            "unsafe_metadata": {"x": 1}})

    assert refused.status_code == 403 and error_code(refused) == "impersonation_read_only"
    after = backend.get(f"/v1/users/{user['id']}").json()
    assert after["first_name"] == "Ada" and after["unsafe_metadata"] == {}
    [event] = backend.get("/v1/audit_events", params={
        "type": "impersonation.read_only_refused"}).json()["data"]
    assert event["actor_sub"] == "op_alice" and event["data"]["action"] == "update the profile"


def test_a_full_impersonator_may_change_the_profile_and_is_named_for_it(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend, first_name="Ada")
    redeem(browser, create_actor_token(backend, user["id"], mode="full")["token"])

    changed = browser.patch("/v1/me", json={"first_name": "Ada L."})

    assert changed.status_code == 200 and changed.json()["first_name"] == "Ada L."
    [event] = backend.get("/v1/audit_events", params={"type": "user.updated"}).json()["data"]
    assert event["actor_sub"] == "op_alice" and event["data"]["fields"] == ["first_name"]


def test_the_user_may_change_their_own_profile(backend: TestClient,
                                               browser: TestClient) -> None:
    create_user(backend, first_name="Ada")
    sign_in(browser)
    changed = browser.patch("/v1/me", json={"last_name": "Lovelace"})
    assert changed.status_code == 200 and changed.json()["last_name"] == "Lovelace"


def test_no_other_account_is_signed_into_a_browser_watching_read_only(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    create_user(backend, "eve@example.com")
    session_id = redeem(browser, create_actor_token(backend, user["id"],
                                                    mode="read_only")["token"])

    sign_in_refused = browser.post("/v1/client/sign_ins", json={
        "identifier": "eve@example.com", "password": PASSWORD})
    sign_up_refused = browser.post("/v1/client/sign_ups", json={
        "email_address": "new@example.com", "password": PASSWORD})

    assert error_code(sign_in_refused) == "impersonation_read_only"
    assert error_code(sign_up_refused) == "impersonation_read_only"
    mint(browser, session_id)  # the impersonation itself goes on
    stopped = browser.post(f"/v1/client/sessions/{session_id}/stop_impersonating", json={})
    assert stopped.status_code == 200
    sign_in(browser, "eve@example.com")  # and once stopped, the browser is free again


class TestNested:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"allow_nested_impersonation": True}

    def test_nesting_inside_a_read_only_impersonation_stays_read_only(
            self, backend: TestClient, browser: TestClient) -> None:
        first, second = create_user(backend), create_user(backend, "bob@example.com")
        redeem(browser, create_actor_token(backend, first["id"], mode="read_only")["token"])
        nested = redeem(browser, create_actor_token(backend, second["id"], sub="op_bob",
                                                    mode="full")["token"])
        assert claims(mint(browser, nested))["act_mode"] == "read_only"
        assert backend.get(f"/v1/sessions/{nested}").json()["impersonation_mode"] == "read_only"


def test_a_demoted_operator_cannot_go_on_changing_the_profile_without_refreshing(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    user = create_user(backend, first_name="Ada")
    admin = _operator(instance, "admin")
    session_id = redeem(browser, _ticket(instance, admin, user["id"], mode="full"))
    with instance.transaction() as db:
        operators.set_role(db, instance, operators.get(db, admin.id), "support", by="owner",
                           origin=CLI)

    refused = browser.patch("/v1/me", json={"first_name": "Mallory"})

    assert error_code(refused) == "session_not_active"
    assert backend.get(f"/v1/users/{user['id']}").json()["first_name"] == "Ada"
    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "revoked"


def test_an_actor_named_only_by_an_operator_id_is_shown_by_name(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    user = create_user(backend)
    with instance.transaction() as db:
        sam = operators.create(db, instance, email="sam@support.test", role="support",
                               password="long enough", name="Sam Support")
        sam_id = sam.id
    session_id = redeem(browser, create_actor_token(backend, user["id"], sub=sam_id)["token"])
    act = claims(mint(browser, session_id))["act"]
    assert (act["sub"], act["name"], act["email"]) == (sam_id, "Sam Support", "sam@support.test")

    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as other:
        named = redeem(other, create_actor_token(backend, user["id"], sub=sam_id,
                                                 actor={"name": "S."})["token"])
        assert claims(mint(other, named))["act"]["name"] == "S."  # the caller's name is kept
