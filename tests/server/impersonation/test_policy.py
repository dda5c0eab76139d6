"""The impersonation policy: each refusal has its own code and is in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from actas import ImpersonationNotPermitted, ImpersonationTargetProtected
from actas.server import Instance, operators
from actas.server.audit import RequestOrigin
from actas.server.impersonation import actor_tokens
from actas.server.impersonation.policy import Requester
from tests.support.flows import create_actor_token, create_user, error_code, redeem


def _refused(backend: TestClient, body: dict[str, Any], code: str) -> None:
    response = backend.post("/v1/actor_tokens", json={"actor": {"sub": "op_alice"},
                                                      "reason": "ticket #1", **body})
    assert response.status_code == 403, response.text
    assert error_code(response) == code
    events = backend.get("/v1/audit_events", params={"type": "impersonation.refused"}).json()
    assert events["data"][0]["data"]["code"] == code
    assert events["data"][0]["user_id"] == body.get("user_id")
    assert backend.get("/v1/actor_tokens").json() == []  # nothing issued


def test_self_impersonation(backend: TestClient) -> None:
    user = create_user(backend)
    _refused(backend, {"user_id": user["id"], "actor": {"sub": user["id"]}},
             "impersonation_self")


def test_banned_user(backend: TestClient) -> None:
    user = create_user(backend)
    backend.post(f"/v1/users/{user['id']}/ban")
    _refused(backend, {"user_id": user["id"]}, "impersonation_target_banned")


def test_deleted_user(backend: TestClient) -> None:
    user = create_user(backend)
    backend.delete(f"/v1/users/{user['id']}")
    _refused(backend, {"user_id": user["id"]}, "impersonation_target_not_found")


def test_missing_reason(backend: TestClient) -> None:
    user = create_user(backend)
    _refused(backend, {"user_id": user["id"], "reason": "   "},
             "impersonation_reason_required")


def test_nested_actor(backend: TestClient) -> None:
    user = create_user(backend)
    _refused(backend, {"user_id": user["id"],
                       "actor": {"sub": "op_alice", "act": {"sub": "op_mallory"}}},
             "impersonation_nested")


@pytest.mark.parametrize("marking", [
    {"protected": True},
    {"public_metadata": {"role": "admin"}},
    {"private_metadata": {"role": "admin"}},
])
def test_protected_users_need_impersonate_protected(backend: TestClient, instance: Instance,
                                                    marking: dict[str, Any]) -> None:
    admin = create_user(backend, "admin@example.com", **marking)
    with instance.transaction() as db:
        support = operators.create(db, instance, email="s@support.test", role="support",
                                   password="support password")
        owner = operators.create(db, instance, email="o@support.test", role="owner",
                                 password="owner password")

    with pytest.raises(ImpersonationTargetProtected):
        actor_tokens.create(instance, requester=Requester.of_operator(support),
                            user_id=admin["id"], actor={"sub": support.id}, reason="r",
                            origin=RequestOrigin())
    issued = actor_tokens.create(instance, requester=Requester.of_operator(owner),
                                 user_id=admin["id"], actor={"sub": owner.id}, reason="r",
                                 origin=RequestOrigin())
    assert issued.row.status == "pending"
    refusal = backend.get("/v1/audit_events",
                          params={"type": "impersonation.refused"}).json()["data"][0]
    assert refusal["data"]["code"] == "impersonation_target_protected"
    assert refusal["data"]["operator_id"] == support.id


def test_unsafe_metadata_cannot_make_a_user_protected(backend: TestClient) -> None:
    # unsafe_metadata is writable by the user; it must not change who may impersonate them.
    user = create_user(backend, unsafe_metadata={"role": "admin"})
    create_actor_token(backend, user["id"])


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("admin", True),
                                                ("support", True), ("viewer", False)])
def test_roles(backend: TestClient, instance: Instance, role: str, allowed: bool) -> None:
    user = create_user(backend)
    with instance.transaction() as db:
        operator = operators.create(db, instance, email=f"{role}@support.test", role=role,
                                    password="long enough")

    def attempt() -> None:
        actor_tokens.create(instance, requester=Requester.of_operator(operator),
                            user_id=user["id"], actor={"sub": operator.id}, reason="r",
                            origin=RequestOrigin())

    if allowed:
        attempt()
    else:
        with pytest.raises(ImpersonationNotPermitted):
            attempt()


def test_operator_cannot_impersonate_their_own_user_account(backend: TestClient,
                                                            instance: Instance) -> None:
    user = create_user(backend, "alice@support.test")
    with instance.transaction() as db:
        alice = operators.create(db, instance, email="Alice@Support.test", role="owner",
                                 password="long enough")
    with pytest.raises(Exception, match="impersonate yourself"):
        actor_tokens.create(instance, requester=Requester.of_operator(alice),
                            user_id=user["id"], actor={"sub": alice.id}, reason="r",
                            origin=RequestOrigin())


def test_redeeming_while_already_impersonating_is_refused(backend: TestClient,
                                                          browser: TestClient) -> None:
    first = create_user(backend, "first@example.com")
    second = create_user(backend, "second@example.com")
    redeem(browser, create_actor_token(backend, first["id"])["token"])
    ticket = create_actor_token(backend, second["id"])["token"]

    nested = browser.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": ticket})

    assert nested.status_code == 403 and error_code(nested) == "impersonation_nested"
    refused = backend.get("/v1/audit_events",
                          params={"type": "actor_token.redemption_refused"}).json()["data"]
    assert refused[0]["data"]["code"] == "impersonation_nested"
    # The refusal consumed nothing: the ticket still works from a fresh browser.
    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as other:
        redeem(other, ticket)


def test_ban_after_issue_blocks_redemption(backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    ticket = create_actor_token(backend, user["id"])["token"]
    backend.post(f"/v1/users/{user['id']}/ban")
    response = browser.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": ticket})
    assert error_code(response) == "impersonation_target_banned"


class TestWithNestingAllowed:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"allow_nested_impersonation": True, "require_reason": False}

    def test_nested_session_carries_the_act_chain(self, backend: TestClient,
                                                  browser: TestClient) -> None:
        first = create_user(backend, "first@example.com")
        second = create_user(backend, "second@example.com")
        redeem(browser, create_actor_token(backend, first["id"], sub="op_alice",
                                           reason=None)["token"])
        nested = redeem(browser, create_actor_token(backend, second["id"], sub="op_bob",
                                                    reason=None)["token"])
        actor = backend.get(f"/v1/sessions/{nested}").json()["actor"]
        assert actor["sub"] == "op_bob" and actor["act"]["sub"] == "op_alice"


def test_an_operators_own_app_account_is_protected(backend: TestClient,
                                                   instance: Instance) -> None:
    account = create_user(backend, "olive@corp.example")
    with instance.transaction() as db:
        operators.create(db, instance, email="Olive@corp.example", role="owner",
                         password="long enough")
        support = operators.create(db, instance, email="sam@corp.example", role="support",
                                   password="long enough")
    with pytest.raises(ImpersonationTargetProtected):
        actor_tokens.create(instance, requester=Requester.of_operator(support),
                            user_id=account["id"], actor={"sub": support.id}, reason="r",
                            origin=RequestOrigin())
