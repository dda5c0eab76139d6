"""Webhook delivery per endpoint: a bad endpoint never slows another one.

Measured before this design: with one endpoint hanging past the timeout,
delivery to a healthy endpoint went from 0.3 s to 80.5 s after 8 events,
because deliveries went one at a time. Now each endpoint is a lane of its
own, in order within itself, behind a circuit breaker. Nothing here times a
request: the tests hold a bad endpoint in its bad state and show that the
healthy one has everything meanwhile.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from actas.server import Instance, webhooks
from actas.server.clock import FrozenClock
from tests.support.flows import create_user
from tests.support.receivers import BadEndpoint, Receiver, wait_until

REASON = "ticket #42"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhooks_allow_private_networks": True}  # the receivers are on loopback


def _register(backend: TestClient, url: str) -> dict[str, Any]:
    response = backend.post("/v1/webhook_endpoints",
                            json={"url": url, "event_types": ["actor_token.created"]})
    assert response.status_code == 200, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def _events(backend: TestClient, count: int) -> list[str]:
    """``count`` actor_token.created events; their token ids, in order."""
    user_id = create_user(backend)["id"]
    ids = []
    for _ in range(count):
        response = backend.post("/v1/actor_tokens", json={
            "user_id": user_id, "actor": {"sub": "op_alice"}, "reason": REASON})
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def _token_ids(receiver: Receiver) -> list[str]:
    return [r.payload()["data"]["actor_token_id"] for r in receiver.delivered]


@pytest.mark.parametrize("mode", ["hang", "close"])
def test_a_hanging_or_closing_endpoint_does_not_delay_a_healthy_one(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        mode: str) -> None:
    bad = BadEndpoint(mode)
    try:
        _register(backend, bad.url)
        _register(backend, receiver.url)
        tokens = _events(backend, 8)
        dispatcher = webhooks.Dispatcher(instance, http)
        try:
            dispatcher.dispatch()
            wait_until(lambda: len(receiver.delivered) == 8 and bad.requests_seen >= 1,
                       lambda: f"healthy got {len(receiver.delivered)}, bad saw "
                               f"{bad.requests_seen}")
            # All eight reached the healthy endpoint, in order...
            assert _token_ids(receiver) == tokens
            if mode == "hang":
                # ...while the bad one still holds its first request, unanswered: one
                # lane waits on it, nothing else does.
                assert bad.requests_seen == 1
        finally:
            bad.release()
            dispatcher.close()
    finally:
        bad.stop()


def test_a_500ing_endpoint_does_not_delay_a_healthy_one(
        backend: TestClient, instance: Instance, http: httpx.Client) -> None:
    failing, healthy = Receiver().start(), Receiver().start()
    try:
        failing.fail_first = 1_000
        _register(backend, failing.url)
        _register(backend, healthy.url)
        tokens = _events(backend, 8)
        webhooks.deliver_due(instance, http)
        assert _token_ids(healthy) == tokens
        assert len(failing.requests) == 1  # the head failed; the rest wait behind it
    finally:
        failing.stop()
        healthy.stop()


def test_deliveries_to_one_endpoint_keep_their_order_through_a_retry(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        clock: FrozenClock) -> None:
    receiver.fail_first = 1
    endpoint = _register(backend, receiver.url)
    tokens = _events(backend, 3)

    assert webhooks.deliver_due(instance, http) == 0
    assert len(receiver.requests) == 1  # the second and third did not overtake the first
    clock.advance(seconds=5)  # the first retry's backoff
    assert webhooks.deliver_due(instance, http) == 3
    assert _token_ids(receiver) == tokens
    listed = backend.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries").json()
    assert [(d["status"], d["attempts"]) for d in listed] == [("delivered", 1),
                                                             ("delivered", 1),
                                                             ("delivered", 2)]


def test_the_circuit_opens_after_repeated_failures_and_a_trial_closes_it(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        clock: FrozenClock) -> None:
    receiver.fail_first = webhooks.BREAKER_THRESHOLD
    endpoint = _register(backend, receiver.url)
    _events(backend, 1)
    for attempt in range(1, webhooks.BREAKER_THRESHOLD + 1):
        if attempt > 1:
            clock.advance(ms=webhooks.BACKOFF_BASE_MS * 4 ** (attempt - 2))  # due again
        assert webhooks.deliver_due(instance, http) == 0
    state = backend.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    assert state["circuit"] == "open"
    assert state["consecutive_failures"] == webhooks.BREAKER_THRESHOLD

    # Open: even a delivery that is due is not sent.
    [delivery] = backend.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries").json()
    assert delivery["last_error"] == "HTTP 500"
    resent = backend.post(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries/"
                          f"{delivery['id']}/resend")
    assert resent.status_code == 200 and resent.json()["attempts"] == 0
    sent_so_far = len(receiver.requests)
    assert webhooks.deliver_due(instance, http) == 0
    assert len(receiver.requests) == sent_so_far

    # After the cooldown, one trial: it succeeds, and the circuit closes.
    clock.advance(ms=webhooks.BREAKER_COOLDOWN_MS)
    assert webhooks.deliver_due(instance, http) == 1
    state = backend.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    assert (state["circuit"], state["consecutive_failures"]) == ("closed", 0)


def test_a_failed_delivery_is_listed_and_can_be_resent(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        clock: FrozenClock) -> None:
    receiver.fail_first = webhooks.MAX_ATTEMPTS
    endpoint = _register(backend, receiver.url)
    _events(backend, 1)
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        webhooks.deliver_due(instance, http)
        clock.advance(ms=max(webhooks.BACKOFF_BASE_MS * 4 ** (attempt - 1),
                             webhooks.BREAKER_COOLDOWN_MS))
    path = f"/v1/webhook_endpoints/{endpoint['id']}/deliveries"
    [failed] = backend.get(path, params={"status": "failed"}).json()
    assert failed["attempts"] == webhooks.MAX_ATTEMPTS and failed["next_attempt_at"] is None
    assert failed["event_type"] == "actor_token.created"

    backend.post(f"{path}/{failed['id']}/resend")
    assert webhooks.deliver_due(instance, http) == 1
    [delivered] = backend.get(path).json()
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1)
    missing = backend.post(f"{path}/whdl_missing/resend")
    assert missing.status_code == 404


def test_a_lane_whose_lease_lapsed_is_not_freed_or_used_by_its_old_sender(
        backend: TestClient, instance: Instance, receiver: Receiver,
        clock: FrozenClock) -> None:
    """Sender A's send outlives its lease; B takes the lane over; A must not free B's lane
    for a third sender, nor claim another delivery."""
    endpoint = _register(backend, receiver.url)["id"]
    _events(backend, 2)
    owner_a = webhooks._take_lane(instance, endpoint)
    assert owner_a is not None and webhooks._claim_head(instance, endpoint, owner_a)
    clock.advance(ms=webhooks.LEASE_MS + 1)
    owner_b = webhooks._take_lane(instance, endpoint)
    assert owner_b is not None
    webhooks._release_lane(instance, endpoint, owner_a)  # A finishes, late
    assert webhooks._take_lane(instance, endpoint) is None  # still B's
    assert webhooks._claim_head(instance, endpoint, owner_a) is None  # A stops
    webhooks._release_lane(instance, endpoint, owner_b)
    assert webhooks._take_lane(instance, endpoint) is not None


def test_an_endpoint_whose_oldest_delivery_waits_is_not_due(
        backend: TestClient, instance: Instance, http: httpx.Client) -> None:
    """Failing endpoints must not look due every round and take the healthy one's turn."""
    failing, healthy = Receiver().start(), Receiver().start()
    try:
        failing.fail_first = 1_000
        _register(backend, failing.url)
        user_id = create_user(backend)["id"]

        def event() -> None:
            assert backend.post("/v1/actor_tokens", json={
                "user_id": user_id, "actor": {"sub": "op_alice"},
                "reason": REASON}).status_code == 200

        event()
        webhooks.deliver_due(instance, http)  # the head fails: it waits out a backoff
        ready = _register(backend, healthy.url)["id"]
        event()  # a newer delivery for both: due, but behind the waiting head for one
        assert webhooks.due_endpoints(instance) == [ready]
    finally:
        failing.stop()
        healthy.stop()
