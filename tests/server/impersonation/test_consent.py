"""The user's say: a preference (allowed, ask, never), access requests the user grants,
denies or lets lapse, grants they revoke, and access they offer unasked.

The attacks: impersonating a user who asks to be asked, without their grant; using
someone else's grant, or a read-only grant for a full impersonation; outliving a grant;
an impersonation carrying on after the user revoked their grant or tightened their
preference; an impersonator answering a request for the user; a user answering
another user's request; support overriding a "never".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance, create_app, operators
from actas.server.audit import RequestOrigin
from actas.server.clock import FrozenClock
from actas.server.db.schema import AccessRequest
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import actor_tokens
from actas.server.impersonation.policy import Requester
from tests.conftest import APP_ORIGIN
from tests.support.flows import (
    create_actor_token,
    create_user,
    error_code,
    mint,
    redeem,
    sign_in,
)
from tests.support.receivers import wait_until

HOUR = 3600


@pytest.fixture
def operator_browser(instance: Instance) -> Iterator[TestClient]:
    """The support engineer's browser, where tickets are redeemed."""
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as client:
        yield client


def _ada(backend: TestClient, preference: str | None) -> dict[str, Any]:
    return create_user(backend, impersonation_preference=preference)


def _ask(backend: TestClient, user_id: str, sub: str = "op_alice",
         **fields: Any) -> dict[str, Any]:
    response = backend.post("/v1/access_requests", json={
        "user_id": user_id, "actor": {"sub": sub, "name": sub.title()},
        "reason": "Ticket #9: the invoice is empty", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _token(backend: TestClient, user_id: str, sub: str = "op_alice", **fields: Any) -> Any:
    return backend.post("/v1/actor_tokens", json={
        "user_id": user_id, "actor": {"sub": sub}, "reason": "Ticket #9", **fields})


def _access(browser: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = browser.get("/v1/me/access").json()["response"]
    return body


def _types(backend: TestClient) -> list[str]:
    events = backend.get("/v1/audit_events", params={"limit": 500}).json()["data"]
    return [e["type"] for e in events]


def test_allowed_is_the_default_and_needs_nobody_asked(backend: TestClient,
                                                       browser: TestClient) -> None:
    user = create_user(backend)
    assert user["impersonation_preference"] is None
    assert _token(backend, user["id"]).json()["consent"] == "not_needed"
    sign_in(browser)
    assert _access(browser)["impersonation_preference"] == "allowed"
    asked = backend.post("/v1/access_requests", json={
        "user_id": user["id"], "actor": {"sub": "op_alice"}, "reason": "r"})
    assert error_code(asked) == "access_request_not_needed"


def test_ask_needs_the_users_grant_for_that_actor_and_mode(
        backend: TestClient, browser: TestClient, operator_browser: TestClient,
        clock: FrozenClock) -> None:
    ada = _ada(backend, "ask")
    refused = _token(backend, ada["id"])
    assert refused.status_code == 403
    assert error_code(refused) == "impersonation_consent_required"

    asked = _ask(backend, ada["id"], mode="read_only")
    assert asked["status"] == "pending" and asked["requested_by"]["name"] == "Op_Alice"
    assert _ask(backend, ada["id"])["id"] == asked["id"]  # asking again: the same request

    sign_in(browser)
    waiting = _access(browser)
    assert waiting["impersonation_preference"] == "ask"
    assert [r["id"] for r in waiting["requests"]] == [asked["id"]]
    granted = browser.post(f"/v1/me/access_requests/{asked['id']}/grant",
                           json={"duration_in_seconds": HOUR}).json()["response"]
    assert granted["status"] == "granted"
    assert granted["granted_until"] == clock.now_ms() + HOUR * 1000

    # Not for someone else, and not for more than the grant allows.
    assert error_code(_token(backend, ada["id"], sub="op_bob")) == \
        "impersonation_consent_required"
    assert error_code(_token(backend, ada["id"], mode="full")) == \
        "impersonation_consent_required"
    token = _token(backend, ada["id"], mode="read_only",
                   session_max_duration_in_seconds=4 * HOUR)
    assert token.status_code == 200, token.text
    assert token.json()["consent"] == "granted"
    assert token.json()["access_request_id"] == asked["id"]

    # The impersonation never outlives the grant, whatever the ticket asked.
    clock.advance(seconds=HOUR / 2)
    session_id = redeem(operator_browser, token.json()["token"])
    session = backend.get(f"/v1/sessions/{session_id}").json()
    assert session["expire_at"] <= granted["granted_until"]

    clock.advance(seconds=HOUR / 2 + 1)  # the grant is over: no new ticket under it
    assert backend.get(f"/v1/access_requests/{asked['id']}").json()["status"] == "expired"
    assert error_code(_token(backend, ada["id"])) == "impersonation_consent_required"


def test_a_denied_or_lapsed_request_cannot_be_used(backend: TestClient, browser: TestClient,
                                                   clock: FrozenClock,
                                                   instance: Instance) -> None:
    ada = _ada(backend, "ask")
    denied = _ask(backend, ada["id"])
    sign_in(browser)
    assert browser.post(f"/v1/me/access_requests/{denied['id']}/deny", json={}).json()[
        "response"]["status"] == "denied"
    assert error_code(_token(backend, ada["id"])) == "impersonation_consent_required"
    late = browser.post(f"/v1/me/access_requests/{denied['id']}/grant", json={})
    assert error_code(late) == "access_request_not_pending"
    assert late.json()["errors"][0]["meta"]["status"] == "denied"

    lapsing = _ask(backend, ada["id"])
    clock.advance(seconds=instance.settings.access_request_expires_in)
    assert backend.get(f"/v1/access_requests/{lapsing['id']}").json()["status"] == "lapsed"
    sign_in(browser)  # three days on, the user's own session idled out
    assert error_code(browser.post(f"/v1/me/access_requests/{lapsing['id']}/grant",
                                   json={})) == "access_request_not_pending"
    assert {"access_request.created", "access_request.denied"} <= set(_types(backend))


def test_revoking_a_grant_ends_the_impersonation_under_it_at_once(
        backend: TestClient, browser: TestClient, operator_browser: TestClient) -> None:
    ada = _ada(backend, "ask")
    asked = _ask(backend, ada["id"])
    sign_in(browser)
    browser.post(f"/v1/me/access_requests/{asked['id']}/grant", json={})
    token = _token(backend, ada["id"], mode="read_only")  # the Backend API's default is full
    session_id = redeem(operator_browser, token.json()["token"])
    mint(operator_browser, session_id)

    revoked = browser.post(f"/v1/me/access_requests/{asked['id']}/revoke", json={})
    assert revoked.json()["response"]["status"] == "revoked"
    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "revoked"
    refused = operator_browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert error_code(refused) == "session_not_active"
    [event] = [e for e in backend.get("/v1/audit_events", params={
        "type": "access_request.revoked"}).json()["data"]]
    assert event["data"]["ended_sessions"] == [session_id]
    assert backend.get("/v1/audit_events/verify").json()["ok"] is True


def test_a_refresh_and_a_grant_revocation_never_wait_on_each_other_in_a_circle(
        backend: TestClient, browser: TestClient, operator_browser: TestClient,
        engine: Engine, database_url: str) -> None:
    """Revoking a grant locks the grant, then the sessions under it. A refresh of an
    impersonation under that grant re-checks the policy (a share lock on the grant)
    before it locks its session: the same order, so a revocation arriving mid-refresh
    waits its turn instead of deadlocking (PostgreSQL aborts one of two such
    transactions, and the revocation could be the one that fails)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: no row locks to order")
    ada = _ada(backend, "ask")
    asked = _ask(backend, ada["id"])
    sign_in(browser)
    browser.post(f"/v1/me/access_requests/{asked['id']}/grant", json={})
    session_id = redeem(operator_browser, _token(backend, ada["id"], mode="read_only")
                        .json()["token"])
    mint(operator_browser, session_id)

    answered: dict[str, Any] = {}

    def refresh() -> None:
        answered["refresh"] = operator_browser.post(
            f"/v1/client/sessions/{session_id}/tokens", json={})

    with engine.connect() as revoker:
        revoker.begin()
        revoker.execute(select(AccessRequest).where(AccessRequest.id == asked["id"])
                        .with_for_update())  # the revocation's first lock
        refreshing = threading.Thread(target=refresh)
        refreshing.start()
        wait_until(lambda: _waiting_for_locks(engine) == 1, timeout=60)
        revoker.execute(text("SET LOCAL lock_timeout = '30s'"))
        # Its second lock: free, since the waiting refresh holds no lock on the session.
        revoker.execute(select(SessionRow).where(SessionRow.id == session_id)
                        .with_for_update())
        revoker.rollback()
    refreshing.join(60)
    assert answered["refresh"].status_code == 200, answered["refresh"].text


def _waiting_for_locks(engine: Engine) -> int:
    with engine.connect() as connection:
        waiting: int = connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one()
        return waiting


def test_access_offered_unasked_lets_any_operator_in_read_only(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    ada = _ada(backend, "ask")
    sign_in(browser)
    offered = browser.post("/v1/me/access_grants", json={
        "duration_in_seconds": 48 * HOUR, "note": "Please fix my invoices"})
    assert offered.status_code == 200, offered.text
    assert offered.json()["response"]["requested_by"] is None
    assert _token(backend, ada["id"], sub="op_anyone",
                  mode="read_only").json()["consent"] == "granted"
    assert error_code(_token(backend, ada["id"], mode="full")) == \
        "impersonation_consent_required"
    longest = instance.settings.access_grant_max_duration
    too_long = browser.post("/v1/me/access_grants", json={"duration_in_seconds": longest + 1})
    assert error_code(too_long) == "form_param_value_invalid"


def test_never_refuses_everyone_but_an_owners_override_with_a_reason(
        backend: TestClient, instance: Instance) -> None:
    ada = _ada(backend, "never")
    refused = _token(backend, ada["id"])
    assert refused.status_code == 403 and error_code(refused) == "impersonation_forbidden_by_user"
    asked = backend.post("/v1/access_requests", json={
        "user_id": ada["id"], "actor": {"sub": "op_alice"}, "reason": "r"})
    assert error_code(asked) == "impersonation_forbidden_by_user"

    with instance.transaction() as db:
        support = operators.create(db, instance, email="s@support.test", role="support",
                                   password="long enough")
        owner = operators.create(db, instance, email="o@support.test", role="owner",
                                 password="long enough")
    origin = RequestOrigin(user_agent="test")

    def ticket(operator: Any, reason: str | None) -> str:
        issued = actor_tokens.create(instance, requester=Requester.of_operator(operator),
                                     user_id=ada["id"], actor={"sub": operator.id},
                                     reason=reason, origin=origin, override=True)
        return issued.row.consent

    from actas._errors import ImpersonationForbiddenByUser, ImpersonationReasonRequired

    with pytest.raises(ImpersonationForbiddenByUser):
        ticket(support, "Ticket #9")  # support holds no override
    with pytest.raises(ImpersonationReasonRequired):
        ticket(owner, None)
    assert ticket(owner, "Fraud report #77: the account is sending spam") == "override"
    refusals = [e for e in backend.get("/v1/audit_events", params={
        "type": "impersonation.refused"}).json()["data"]]
    assert {e["data"]["code"] for e in refusals} >= {"impersonation_forbidden_by_user"}


def test_a_stricter_preference_ends_a_live_impersonation_at_once(
        backend: TestClient, browser: TestClient, operator_browser: TestClient) -> None:
    create_user(backend)
    sign_in(browser)
    ada_id = _access_user_id(browser)
    session_id = redeem(operator_browser, create_actor_token(backend, ada_id)["token"])

    changed = browser.patch("/v1/me/access", json={"impersonation_preference": "never"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["response"]["impersonation_preference"] == "never"
    assert backend.get(f"/v1/sessions/{session_id}").json()["status"] == "revoked"
    [event] = backend.get("/v1/audit_events", params={
        "type": "user.impersonation_preference_changed"}).json()["data"]
    assert event["data"]["from"] == "allowed" and event["data"]["to"] == "never"
    assert event["data"]["ended_sessions"] == [session_id]

    # Back to the default; the Backend API sets it too.
    browser.patch("/v1/me/access", json={"impersonation_preference": None})
    assert _access(browser)["impersonation_preference"] == "allowed"
    updated = backend.patch(f"/v1/users/{ada_id}", json={"impersonation_preference": "ask"})
    assert updated.json()["impersonation_preference"] == "ask"


def _access_user_id(browser: TestClient) -> str:
    client = browser.get("/v1/client").json()["response"]
    user_id: str = client["sessions"][0]["user"]["id"]
    return user_id


def test_an_impersonator_cannot_answer_for_the_user(
        backend: TestClient, operator_browser: TestClient, browser: TestClient) -> None:
    ada = _ada(backend, "ask")
    asked = _ask(backend, ada["id"])
    # Support with a full grant from an earlier ticket... here: an owner's override.
    token = _token(backend, ada["id"], override=True)
    redeem(operator_browser, token.json()["token"])
    for method, path, body in (
            ("POST", f"/v1/me/access_requests/{asked['id']}/grant", {}),
            ("POST", f"/v1/me/access_requests/{asked['id']}/deny", {}),
            ("PATCH", "/v1/me/access", {"impersonation_preference": "allowed"}),
            ("POST", "/v1/me/access_grants", {})):
        answer = operator_browser.request(method, path, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert error_code(answer) == "impersonated_session_forbidden"
    assert backend.get(f"/v1/access_requests/{asked['id']}").json()["status"] == "pending"

    # And another user cannot answer it either.
    create_user(backend, "grace@example.com")
    sign_in(browser, "grace@example.com")
    other = browser.post(f"/v1/me/access_requests/{asked['id']}/grant", json={})
    assert other.status_code == 404


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_switching_sessions_mid_request_does_not_let_an_impersonator_answer(
        backend: TestClient, operator_browser: TestClient, browser: TestClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a review found: an operator in a full impersonation signs in to their own
    account in the same browser, then ends that session while a change to "their"
    preference is under way, hoping the check sees their own session and the change lands
    on the impersonated user. Check and change now read the active session once."""
    import threading

    from actas.server.frontend_api import me

    victim = create_user(backend, "vic@example.com", impersonation_preference="ask")
    create_user(backend, "eve@example.com")  # the operator's own account in the app
    asked = _ask(backend, victim["id"], sub="agent_eve", mode="full")
    sign_in(browser, "vic@example.com")
    browser.post(f"/v1/me/access_requests/{asked['id']}/grant", json={})
    token = _token(backend, victim["id"], sub="agent_eve", mode="full")
    redeem(operator_browser, token.json()["token"])
    own = sign_in(operator_browser, "eve@example.com")

    real = me.active_session
    switched = threading.Event()

    def then_switch(db: Any, instance: Any, request: Any) -> Any:
        found = real(db, instance, request)
        if not switched.is_set():  # a concurrent request ends the operator's own session
            switched.set()
            ender = threading.Thread(target=lambda: operator_browser.post(
                f"/v1/client/sessions/{own}/end", json={}))
            ender.start()
            ender.join()
        return found

    monkeypatch.setattr(me, "active_session", then_switch)
    operator_browser.patch("/v1/me/access", json={"impersonation_preference": "allowed"})
    assert switched.is_set()
    assert backend.get(f"/v1/users/{victim['id']}").json()["impersonation_preference"] == "ask"


def test_a_grant_limits_each_impersonation_to_what_the_user_was_asked(
        backend: TestClient, browser: TestClient) -> None:
    ada = _ada(backend, "ask")
    asked = _ask(backend, ada["id"], session_max_duration_in_seconds=900)
    sign_in(browser)
    browser.post(f"/v1/me/access_requests/{asked['id']}/grant", json={})
    token = _token(backend, ada["id"], mode="read_only", session_max_duration_in_seconds=14400)
    assert token.json()["session_max_duration_in_seconds"] == 900


def test_an_access_request_names_a_real_actor(backend: TestClient) -> None:
    ada = _ada(backend, "ask")
    for actor in ({}, {"sub": 7}, {"sub": "op_1", "name": "x" * 5000}):
        response = backend.post("/v1/access_requests", json={
            "user_id": ada["id"], "actor": actor, "reason": "r"})
        assert response.status_code == 422, actor
