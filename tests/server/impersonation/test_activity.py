"""What impersonators did in the application: ``POST /v1/impersonation_activity`` keeps the
entries of impersonations only, cut to the route template, and the user, the
dashboard and the Backend API show them; old entries are pruned."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.clock import FrozenClock
from actas.server.impersonation import activity
from tests.support.flows import create_actor_token, create_user, redeem, sign_in


def _entry(session_id: str, clock: FrozenClock, **changes: Any) -> dict[str, Any]:
    return {"session_id": session_id, "method": "GET", "route": "/orders/{order_id}",
            "status": 200, "occurred_at": clock.now_ms(), "refused": False, **changes}


def test_entries_of_impersonations_are_kept_and_others_rejected(
        backend: TestClient, browser: TestClient, clock: FrozenClock) -> None:
    user = create_user(backend)
    own = sign_in(browser)
    impersonation = redeem(browser, create_actor_token(backend, user["id"],
                                                       mode="read_only")["token"])
    receipt = backend.post("/v1/impersonation_activity", json={"entries": [
        _entry(impersonation, clock),
        _entry(impersonation, clock, method="post", route="/address?zip=SW1", status=403,
               refused=True),
        _entry(own, clock),  # the user's own session: not an impersonation
        _entry("sess_nope", clock),
        _entry(impersonation, clock, occurred_at=clock.now_ms() - 86_400_000),  # before it
        _entry(impersonation, clock, method="BREW"),
    ]})
    assert receipt.status_code == 200
    assert receipt.json() == {"object": "impersonation_activity_receipt", "accepted": 2,
                              "rejected": 4}

    listed = backend.get("/v1/impersonation_activity",
                         params={"session_id": impersonation}).json()
    assert [(a["method"], a["route"], a["status"], a["refused"]) for a in listed] == [
        ("GET", "/orders/{order_id}", 200, False), ("POST", "/address", 403, True)]


def test_a_batch_is_bounded_and_needs_the_secret_key(backend: TestClient,
                                                     instance: Instance,
                                                     clock: FrozenClock) -> None:
    too_many = backend.post("/v1/impersonation_activity", json={
        "entries": [_entry("sess_x", clock)] * 501})
    assert too_many.status_code == 422
    with TestClient(backend.app, base_url="https://actas.test") as anonymous:
        refused = anonymous.post("/v1/impersonation_activity", json={"entries": []})
    assert refused.status_code == 401


def test_the_user_sees_what_was_done_in_their_access_history(
        backend: TestClient, browser: TestClient, clock: FrozenClock) -> None:
    user = create_user(backend)
    impersonation = redeem(browser, create_actor_token(backend, user["id"],
                                                       mode="read_only")["token"])
    backend.post("/v1/impersonation_activity", json={"entries": [
        _entry(impersonation, clock, route="/orders"),
        _entry(impersonation, clock, method="POST", route="/address", status=403,
               refused=True)]})
    browser.post(f"/v1/client/sessions/{impersonation}/stop_impersonating", json={})
    browser.cookies.clear()
    sign_in(browser)

    [entry] = browser.get("/v1/me/access_history").json()["response"]

    assert entry["mode"] == "read_only" and entry["activity_total"] == 2
    assert [(a["method"], a["route"], a["refused"]) for a in entry["activity"]] == [
        ("GET", "/orders", False), ("POST", "/address", True)]


def test_entries_older_than_the_retention_are_pruned(
        backend: TestClient, browser: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    user = create_user(backend)
    impersonation = redeem(browser, create_actor_token(backend, user["id"])["token"])
    backend.post("/v1/impersonation_activity", json={"entries": [_entry(impersonation, clock)]})
    with instance.transaction() as db:
        assert activity.prune(db, instance) == 0
    clock.advance(seconds=instance.settings.impersonation_activity_retention_days * 86_400 + 1)
    with instance.transaction() as db:
        assert activity.prune(db, instance) == 1
    assert backend.get("/v1/impersonation_activity",
                       params={"session_id": impersonation}).json() == []


def test_a_flood_of_reads_pushes_out_no_refusal_and_the_total_is_told(
        backend: TestClient, browser: TestClient, instance: Instance,
        clock: FrozenClock) -> None:
    user = create_user(backend)
    impersonation = redeem(browser, create_actor_token(backend, user["id"],
                                                       mode="read_only")["token"])
    backend.post("/v1/impersonation_activity", json={"entries": [
        _entry(impersonation, clock, method="POST", route="/address", status=403,
               refused=True)]})
    clock.advance(seconds=1)
    backend.post("/v1/impersonation_activity", json={"entries": [
        _entry(impersonation, clock, route=f"/page/{n}") for n in range(5)]})
    with instance.transaction() as db:
        done = activity.of_sessions(db, [impersonation], limit_each=3)[impersonation]
    assert done.total == 6 and done.truncated
    assert [(a.route, a.refused) for a in done.entries] == [
        ("/address", True), ("/page/3", False), ("/page/4", False)]
