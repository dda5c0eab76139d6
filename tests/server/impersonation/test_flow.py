"""Impersonation end to end through the APIs: token, ticket, act claim, limits, ending."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
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


def test_actor_token_has_clerks_shape_and_shows_its_secret_once(backend: TestClient) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], actor={"name": "Alice (support)"})

    assert token["object"] == "actor_token" and token["status"] == "pending"
    assert token["id"].startswith("act_") and token["token"].startswith("tkt_")
    assert token["user_id"] == user["id"]
    assert token["actor"] == {"sub": "op_alice", "name": "Alice (support)"}
    assert token["url"] == f"https://actas.test/v1/tickets/accept?ticket={token['token']}"
    assert token["reason"] == "Support ticket #4242"
    fetched = backend.get(f"/v1/actor_tokens/{token['id']}").json()
    assert fetched["token"] is None and fetched["url"] is None
    assert {**fetched, "token": token["token"], "url": token["url"]} == token


def test_impersonated_token_carries_act_and_verifies_independently(
        backend: TestClient, browser: TestClient, app_client: TestClient) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], actor={"email": "alice@support.test"})

    session_id = redeem(browser, token["token"])
    jwt = mint(browser, session_id)

    jwks = app_client.get("/.well-known/jwks.json").json()["keys"]
    verified = pyjwt.decode(jwt, pyjwt.PyJWK(jwks[0]).key, algorithms=["RS256"],
                            issuer="https://actas.test")
    assert verified["sub"] == user["id"]
    assert verified["act"] == {"sub": "op_alice", "email": "alice@support.test",
                               "sid": token["id"], "iss": "https://actas.test"}
    session = backend.get(f"/v1/sessions/{session_id}").json()
    assert session["actor"] == verified["act"]
    assert backend.get(f"/v1/actor_tokens/{token['id']}").json()["session_id"] == session_id


def test_hard_end_is_never_moved_by_refresh(backend: TestClient, browser: TestClient,
                                           clock: FrozenClock) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"], session_max_duration_in_seconds=900)
    session_id = redeem(browser, token["token"])
    start = clock.now_ms()

    for _ in range(2):  # refreshes inside the inactivity window keep it alive ...
        clock.advance(seconds=400)
        assert claims(mint(browser, session_id))["act"]["sub"] == "op_alice"
    clock.advance(seconds=900 - 800 - 20)
    last = claims(mint(browser, session_id))  # 20 s before the hard end: so is the token's
    assert last["exp"] == (start + 900_000) // 1000
    clock.advance(seconds=20)

    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert refused.json()["errors"][0]["meta"]["status"] == "expired"  # ... but not past 900 s
    session = backend.get(f"/v1/sessions/{session_id}").json()
    assert session["expire_at"] == start + 900_000 and session["status"] == "expired"


def test_impersonation_inactivity_timeout_is_ten_minutes(backend: TestClient,
                                                        browser: TestClient,
                                                        clock: FrozenClock) -> None:
    user = create_user(backend)
    session_id = redeem(browser, create_actor_token(backend, user["id"])["token"])
    clock.advance(seconds=600)
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert refused.json()["errors"][0]["meta"]["status"] == "abandoned"
    events = backend.get("/v1/audit_events", params={"type": "session.abandoned"}).json()
    assert [e["session_id"] for e in events["data"]] == [session_id]


def test_session_duration_is_capped_by_policy(backend: TestClient, instance: Instance) -> None:
    user = create_user(backend)
    too_long = backend.post("/v1/actor_tokens", json={
        "user_id": user["id"], "actor": {"sub": "op_alice"}, "reason": "r",
        "session_max_duration_in_seconds": instance.settings.impersonation_max_duration + 1})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["meta"]["param_name"] == \
        "session_max_duration_in_seconds"
    expires = backend.post("/v1/actor_tokens", json={
        "user_id": user["id"], "actor": {"sub": "op_alice"}, "reason": "r",
        "expires_in_seconds": 0})
    assert expires.status_code == 422


def test_operators_own_session_is_kept_and_stop_returns_to_it(backend: TestClient,
                                                             browser: TestClient) -> None:
    create_user(backend, "alice@support.test")
    customer = create_user(backend, "customer@example.com")
    own = sign_in(browser, "alice@support.test")
    impersonation = redeem(browser, create_actor_token(backend, customer["id"])["token"])

    client = browser.get("/v1/client").json()["response"]
    assert client["last_active_session_id"] == impersonation
    assert {s["id"]: s["impersonation_reason"] for s in client["sessions"]} == {
        own: None, impersonation: "Support ticket #4242"}  # what the banner shows

    stopped = browser.post(f"/v1/client/sessions/{impersonation}/stop_impersonating", json={})

    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["response"]["status"] == "ended"
    assert stopped.json()["client"]["last_active_session_id"] == own
    assert error_code(browser.post(f"/v1/client/sessions/{impersonation}/tokens",
                                   json={})) == "session_not_active"
    assert claims(mint(browser, own))["sub"] != customer["id"]  # own session untouched
    not_impersonating = browser.post(f"/v1/client/sessions/{own}/stop_impersonating", json={})
    assert not_impersonating.status_code == 400
    assert error_code(not_impersonating) == "session_not_impersonated"


def test_sensitive_operations_refuse_an_impersonated_session(backend: TestClient,
                                                            browser: TestClient) -> None:
    user = create_user(backend)
    redeem(browser, create_actor_token(backend, user["id"])["token"])

    attempts = [
        browser.post("/v1/me/change_password",
                     json={"current_password": PASSWORD, "new_password": "taken over!!"}),
        browser.post("/v1/me/change_email",
                     json={"email_address": "attacker@example.com", "password": PASSWORD}),
        browser.request("DELETE", "/v1/me", json={"password": PASSWORD}),
    ]

    for response in attempts:
        assert response.status_code == 403, response.text
        assert error_code(response) == "impersonated_session_forbidden"
    assert backend.get(f"/v1/users/{user['id']}").json()["email_addresses"][0][
        "email_address"] == "ada@example.com"
    refusals = backend.get("/v1/audit_events", params={
        "type": "impersonation.sensitive_action_refused"}).json()["data"]
    assert len(refusals) == 3 and {e["actor_sub"] for e in refusals} == {"op_alice"}


def test_the_user_themselves_may_do_sensitive_operations(backend: TestClient,
                                                        browser: TestClient) -> None:
    create_user(backend)
    sign_in(browser)
    changed = browser.post("/v1/me/change_password",
                           json={"current_password": PASSWORD, "new_password": "a new one!!"})
    assert changed.status_code == 200, changed.text
    wrong = browser.post("/v1/me/change_password",
                         json={"current_password": PASSWORD, "new_password": "again again"})
    assert error_code(wrong) == "form_credentials_invalid"


def test_impersonated_activity_does_not_move_the_users_last_active_at(
        backend: TestClient, browser: TestClient, clock: FrozenClock) -> None:
    user = create_user(backend)
    sign_in(browser)
    seen = backend.get(f"/v1/users/{user['id']}").json()
    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as support:
        clock.advance(seconds=120)
        session_id = redeem(support, create_actor_token(backend, user["id"])["token"])
        mint(support, session_id)
    after = backend.get(f"/v1/users/{user['id']}").json()
    assert after["last_active_at"] == seen["last_active_at"]
    assert after["last_sign_in_at"] == seen["last_sign_in_at"]
    assert backend.get(f"/v1/sessions/{session_id}").json()["last_active_at"] == clock.now_ms()


def test_sessions_filter_by_actor_and_impersonation(backend: TestClient,
                                                   browser: TestClient) -> None:
    user = create_user(backend)
    own = sign_in(browser)
    alice = redeem(browser, create_actor_token(backend, user["id"], sub="op_alice")["token"])
    browser.post(f"/v1/client/sessions/{alice}/stop_impersonating", json={})
    bob = redeem(browser, create_actor_token(backend, user["id"], sub="op_bob")["token"])

    def ids(**params: object) -> list[str]:
        return [s["id"] for s in backend.get("/v1/sessions", params=params).json()]

    assert ids(actor_sub="op_alice") == [alice]
    assert ids(impersonated="true") == [bob, alice]
    assert ids(impersonated="false") == [own]
    assert ids(impersonated="true", status="active") == [bob]
    assert ids(user_id=user["id"], limit=1, before_id=bob) == [alice]


def test_kill_switch_ends_live_impersonations_and_pending_tokens(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    alice = redeem(browser, create_actor_token(backend, user["id"], sub="op_alice")["token"])
    pending_bob = create_actor_token(backend, user["id"], sub="op_bob")
    pending_alice = create_actor_token(backend, user["id"], sub="op_alice")

    only_alice = backend.post("/v1/impersonations/end_all", json={"actor_sub": "op_alice"})

    assert only_alice.json() == {"object": "impersonations_ended", "sessions_revoked": 1,
                                 "actor_tokens_revoked": 1}
    assert backend.get(f"/v1/sessions/{alice}").json()["status"] == "revoked"
    assert error_code(browser.post(f"/v1/client/sessions/{alice}/tokens", json={})) == \
        "session_not_active"
    assert backend.get(f"/v1/actor_tokens/{pending_alice['id']}").json()["status"] == "revoked"
    assert backend.get(f"/v1/actor_tokens/{pending_bob['id']}").json()["status"] == "pending"
    everything = backend.post("/v1/impersonations/end_all", json={})
    assert everything.json()["actor_tokens_revoked"] == 1


def test_only_pending_tokens_can_be_revoked(backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    pending = create_actor_token(backend, user["id"])
    accepted = create_actor_token(backend, user["id"], sub="op_bob")
    redeem(browser, accepted["token"])

    revoked = backend.post(f"/v1/actor_tokens/{pending['id']}/revoke")
    refused = backend.post(f"/v1/actor_tokens/{accepted['id']}/revoke")

    assert revoked.json()["status"] == "revoked"
    assert refused.status_code == 400 and error_code(refused) == "actor_token_not_pending"
    assert refused.json()["errors"][0]["meta"]["status"] == "accepted"
    redeemed = browser.post("/v1/client/sign_ins",
                            json={"strategy": "ticket", "ticket": pending["token"]})
    assert error_code(redeemed) == "ticket_revoked"


def test_list_actor_tokens_filters(backend: TestClient) -> None:
    ada = create_user(backend)
    bob = create_user(backend, "bob@example.com")
    one = create_actor_token(backend, ada["id"], sub="op_alice")
    two = create_actor_token(backend, bob["id"], sub="op_alice")
    three = create_actor_token(backend, bob["id"], sub="op_carol")
    backend.post(f"/v1/actor_tokens/{three['id']}/revoke")

    def ids(**params: object) -> list[str]:
        return [t["id"] for t in backend.get("/v1/actor_tokens", params=params).json()]

    assert ids(actor_sub="op_alice") == [two["id"], one["id"]]
    assert ids(user_id=bob["id"]) == [three["id"], two["id"]]
    assert ids(status="revoked") == [three["id"]]
    assert all(t["token"] is None for t in backend.get("/v1/actor_tokens").json())


def test_accept_link_signs_in_and_redirects_to_the_application(
        backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    token = create_actor_token(backend, user["id"])

    response = browser.get(token["url"].removeprefix("https://actas.test"),
                           follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "http://localhost:3000"
    assert response.headers["cache-control"] == "no-store"
    client = browser.get("/v1/client").json()["response"]
    assert client["sessions"][0]["actor"]["sub"] == "op_alice"
    again = browser.get(token["url"].removeprefix("https://actas.test"), follow_redirects=False)
    assert again.status_code == 400 and "ticket_already_used" in again.text
    assert again.headers["content-type"].startswith("text/html")


def test_user_sees_who_accessed_their_account(backend: TestClient, browser: TestClient,
                                             clock: FrozenClock, instance: Instance) -> None:
    user = create_user(backend)
    with TestClient(browser.app, base_url="https://actas.test",
                    headers={"Origin": "http://localhost:3000"}) as support:
        session_id = redeem(support, create_actor_token(
            backend, user["id"], actor={"name": "Alice"}, reason="Refund question")["token"])
        clock.advance(seconds=90)
        support.post(f"/v1/client/sessions/{session_id}/stop_impersonating", json={})
    sign_in(browser)

    history = browser.get("/v1/me/access_history").json()["response"]

    assert history == [{
        "object": "access", "session_id": session_id,
        "actor": {"sub": "op_alice", "name": "Alice", "sid": history[0]["actor"]["sid"],
                  "iss": "https://actas.test"},
        "reason": "Refund question", "started_at": clock.now_ms() - 90_000,
        "ended_at": clock.now_ms(), "status": "ended", "duration_ms": 90_000,
        "mode": "full", "activity": [], "activity_total": 0,
    }]


def test_a_huge_actor_is_refused_because_it_rides_in_every_token(backend: TestClient) -> None:
    user = create_user(backend)
    response = backend.post("/v1/actor_tokens", json={
        "user_id": user["id"], "actor": {"sub": "op_alice", "bio": "x" * 5000},
        "reason": "r"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["meta"]["param_name"] == "actor"


def _wait_until_a_transaction_waits_for_a_lock(instance: Instance) -> None:
    """Poll PostgreSQL until some backend of this database is blocked on a lock."""
    import time

    from sqlalchemy import text

    deadline = time.monotonic() + 120  # bounds a hang only; the wait is for the condition
    with instance.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'")).scalar()
            connection.rollback()  # a fresh snapshot for the next look
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("End all never waited for the redemption's lock")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_kill_switch_catches_a_redemption_in_flight(backend: TestClient,
                                                   instance: Instance) -> None:
    """A redemption committing while End all runs must not leave a live impersonation."""
    import threading

    from actas.server import clients
    from actas.server.audit import RequestOrigin
    from actas.server.impersonation import redemption

    user = create_user(backend)
    ticket = create_actor_token(backend, user["id"])["token"]
    claimed, release, out = threading.Event(), threading.Event(), {}

    def redeem_and_pause_before_commit() -> None:
        with instance.transaction() as db:
            client, _ = clients.create(db, instance.now_ms())
            out["session"] = redemption.redeem(db, instance, ticket=ticket, client=client,
                                               origin=RequestOrigin()).session.id
            claimed.set()
            release.wait(120)

    redeemer = threading.Thread(target=redeem_and_pause_before_commit)
    redeemer.start()
    assert claimed.wait(120)
    killer = threading.Thread(target=lambda: out.update(
        killed=backend.post("/v1/impersonations/end_all", json={}).json()))
    killer.start()
    _wait_until_a_transaction_waits_for_a_lock(instance)  # End all, on the token's row
    release.set()
    redeemer.join(120)
    killer.join(120)

    assert out["killed"]["sessions_revoked"] == 1
    assert backend.get(f"/v1/sessions/{out['session']}").json()["status"] == "revoked"
    assert error_code(backend.post(f"/v1/sessions/{out['session']}/tokens")) == \
        "session_not_active"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_impersonation_refresh_in_flight_waits_for_a_revocation_and_is_refused(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    """Refreshes read without locks, but an impersonation's token is signed under its
    session's row lock: a revocation still uncommitted when the refresh starts is
    waited for, and once it has answered no token of that session is signed."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import update

    from actas.server.db.schema import Session as SessionRow

    user = create_user(backend)
    session_id = redeem(browser, create_actor_token(backend, user["id"])["token"])
    mint(browser, session_id)

    with instance.engine.connect() as revoker, ThreadPoolExecutor(1) as pool:
        revoker.begin()
        revoker.execute(update(SessionRow).where(SessionRow.id == session_id).values(
            status="revoked", ended_at=instance.now_ms(), updated_at=instance.now_ms()))
        refreshed = pool.submit(browser.post, f"/v1/client/sessions/{session_id}/tokens",
                                json={})
        _wait_until_a_transaction_waits_for_a_lock(instance)
        revoker.commit()
        response = refreshed.result(timeout=120)  # bounds a hang only

    assert response.status_code == 400, response.text
    assert error_code(response) == "session_not_active"
