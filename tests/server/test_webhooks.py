"""Webhooks: audit events delivered over real HTTP, signed per Standard Webhooks.

A real HTTP receiver runs in a thread on 127.0.0.1; deliveries go through
``webhooks.deliver_due`` / ``worker.run_once`` with a real ``httpx.Client``,
and, at the end, through the worker loop of a real ``actas serve`` process.
Time moves only through the ``clock`` fixture, except where the server process
is involved. The receiver is on loopback, which actas refuses by default: these
tests allow private networks (the refusal is tested in test_webhook_urls.py).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.testclient import TestClient

from actas.server import Instance, webhooks, worker
from actas.server.clock import FrozenClock
from actas.server.db.schema import WebhookDelivery, WebhookEndpoint
from tests.support.flows import create_user
from tests.support.processes import ActasServer, actas_env, free_port
from tests.support.receivers import Received, Receiver

DELIVERIES = WebhookDelivery.__table__
REASON = "ticket #42"
DEADLINE = 120.0  # seconds the serving process gets to deliver (bounds a hang only)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhooks_allow_private_networks": True}


# -- steps --------------------------------------------------------------------------------


def register(backend: TestClient, url: str, event_types: list[str] | None = None
             ) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if event_types is not None:
        body["event_types"] = event_types
    response = backend.post("/v1/webhook_endpoints", json=body)
    assert response.status_code == 200, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def impersonate(backend: TestClient, user_id: str) -> dict[str, Any]:
    response = backend.post("/v1/actor_tokens", json={
        "user_id": user_id, "actor": {"sub": "op_alice"}, "reason": REASON})
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


def redeem(browser: TestClient, token: dict[str, Any]) -> str:
    response = browser.post("/v1/client/sign_ins",
                            json={"strategy": "ticket", "ticket": token["token"]})
    assert response.status_code == 200, response.text
    session_id: str = response.json()["response"]["created_session_id"]
    return session_id


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(DELIVERIES).order_by(DELIVERIES.c.created_at,
                                                              DELIVERIES.c.id))
        return [dict(row._mapping) for row in rows]


def the_delivery(engine: Engine) -> dict[str, Any]:
    rows = deliveries(engine)
    assert len(rows) == 1, rows
    return rows[0]


def verified(secret: str, received: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


# -- registering --------------------------------------------------------------------------


def test_the_signing_secret_is_shown_once_and_not_stored_in_the_clear(
        backend: TestClient, engine: Engine, receiver: Receiver) -> None:
    endpoint = register(backend, receiver.url, ["actor_token.created"])

    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["url"] == receiver.url
    assert endpoint["event_types"] == ["actor_token.created"]
    listed = backend.get("/v1/webhook_endpoints").json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert listed[0]["secret"] is None
    assert endpoint["secret"] not in backend.get("/v1/webhook_endpoints").text
    with engine.connect() as connection:
        stored = connection.execute(select(WebhookEndpoint.__table__)).one()
    key = endpoint["secret"].removeprefix("whsec_")
    assert key.encode() not in bytes(stored.secret_ciphertext)
    assert key not in repr(dict(stored._mapping))


def test_only_http_urls_can_be_registered(backend: TestClient) -> None:
    for url in ("ftp://example.com/hooks", "not a url", "file:///etc/passwd"):
        response = backend.post("/v1/webhook_endpoints", json={"url": url})
        assert response.status_code == 422, (url, response.text)


# -- delivering ---------------------------------------------------------------------------


def test_events_are_delivered_signed_per_standard_webhooks(
        backend: TestClient, browser: TestClient, instance: Instance, receiver: Receiver,
        http: httpx.Client, engine: Engine) -> None:
    endpoint = register(backend, receiver.url)
    ada = create_user(backend)
    token = impersonate(backend, ada["id"])
    session_id = redeem(browser, token)
    assert receiver.requests == []  # nothing is sent from inside the requests

    sent = webhooks.deliver_due(instance, http)

    assert sent == 3
    assert receiver.types() == ["actor_token.created", "session.created",
                                "actor_token.accepted"]
    audit = {e["id"]: e for e in backend.get("/v1/audit_events").json()["data"]}
    for received in receiver.delivered:
        assert received.path == "/hooks"
        assert received.headers["content-type"] == "application/json"
        payload = verified(endpoint["secret"], received)
        event = audit[received.headers["webhook-id"]]
        assert payload["type"] == event["type"]
        assert payload["data"]["id"] == event["id"]
        assert payload["data"]["object"] == "audit_event"
        assert payload["data"]["actor_sub"] == "op_alice"
        assert payload["data"]["user_id"] == ada["id"]
        assert payload["data"]["reason"] == REASON
        assert payload["data"]["actor"]["sub"] == "op_alice"
        assert int(received.headers["webhook-timestamp"]) == instance.now_ms() // 1000
    created, session, accepted = (r.payload()["data"] for r in receiver.delivered)
    assert created["actor_token_id"] == token["id"]
    assert session["session_id"] == accepted["session_id"] == session_id
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries(engine))

    assert webhooks.deliver_due(instance, http) == 0  # delivered once, not again
    assert len(receiver.requests) == 3


def test_a_tampered_body_or_another_secret_fails_verification(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client
        ) -> None:
    endpoint = register(backend, receiver.url)
    impersonate(backend, create_user(backend)["id"])
    webhooks.deliver_due(instance, http)
    [received] = receiver.delivered
    verified(endpoint["secret"], received)

    tampered = received.body.replace(b"op_alice", b"op_mallo")
    assert tampered != received.body
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(tampered, received.headers)
    other = register(backend, receiver.url)["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(
            received.body, {**received.headers, "webhook-id": "evt_someone_else"})


def test_the_worker_round_delivers(backend: TestClient, instance: Instance,
                                   receiver: Receiver, http: httpx.Client) -> None:
    endpoint = register(backend, receiver.url)
    impersonate(backend, create_user(backend)["id"])

    worker.run_once(instance, http)

    [received] = receiver.delivered
    assert verified(endpoint["secret"], received)["type"] == "actor_token.created"


def test_each_endpoint_gets_only_the_event_types_it_asked_for(
        backend: TestClient, browser: TestClient, instance: Instance, receiver: Receiver,
        http: httpx.Client) -> None:
    everything = register(backend, receiver.url.replace("/hooks", "/all"))
    sessions_only = register(backend, receiver.url.replace("/hooks", "/sessions"),
                             ["session.created", "session.revoked"])
    ada = create_user(backend)
    session_id = redeem(browser, impersonate(backend, ada["id"]))
    assert backend.post(f"/v1/sessions/{session_id}/revoke").status_code == 200

    webhooks.deliver_due(instance, http)

    by_path: dict[str, list[str]] = {}
    for received in receiver.delivered:
        by_path.setdefault(received.path, []).append(received.payload()["type"])
    assert by_path["/sessions"] == ["session.created", "session.revoked"]
    assert by_path["/all"] == ["actor_token.created", "session.created",
                               "actor_token.accepted", "session.revoked"]
    for received in receiver.delivered:
        secret = (everything if received.path == "/all" else sessions_only)["secret"]
        verified(secret, received)


def test_a_failed_delivery_is_retried_with_backoff_and_delivered_once(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        engine: Engine, clock: FrozenClock) -> None:
    receiver.fail_first = 2
    register(backend, receiver.url, ["actor_token.created"])
    impersonate(backend, create_user(backend)["id"])
    created_at = clock.now_ms()

    assert webhooks.deliver_due(instance, http) == 0
    first = the_delivery(engine)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert first["last_error"] == "HTTP 500"
    assert first["next_attempt_at"] == created_at + 5_000

    # Not due yet: nothing is sent.
    clock.advance(ms=4_999)
    assert webhooks.deliver_due(instance, http) == 0
    assert len(receiver.requests) == 1

    clock.advance(ms=1)
    assert webhooks.deliver_due(instance, http) == 0
    second = the_delivery(engine)
    assert second["status"] == "pending" and second["attempts"] == 2
    assert second["next_attempt_at"] == clock.now_ms() + 20_000
    clock.advance(seconds=19)
    assert webhooks.deliver_due(instance, http) == 0
    assert len(receiver.requests) == 2

    clock.advance(seconds=1)
    assert webhooks.deliver_due(instance, http) == 1
    done = the_delivery(engine)
    assert done["status"] == "delivered" and done["attempts"] == 3
    assert done["last_error"] is None

    clock.advance(seconds=3600)
    assert webhooks.deliver_due(instance, http) == 0
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len(receiver.delivered) == 1
    # Every attempt is the same message: receivers deduplicate on webhook-id.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_a_delivery_gives_up_after_max_attempts(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        engine: Engine, clock: FrozenClock) -> None:
    receiver.fail_first = 1_000
    register(backend, receiver.url, ["actor_token.created"])
    impersonate(backend, create_user(backend)["id"])

    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        assert webhooks.deliver_due(instance, http) == 0
        row = the_delivery(engine)
        assert row["attempts"] == attempt
        assert row["status"] == ("failed" if attempt == webhooks.MAX_ATTEMPTS else "pending")
        clock.advance(seconds=24 * 3600)

    failed = the_delivery(engine)
    assert failed["status"] == "failed" and failed["last_error"] == "HTTP 500"
    for _ in range(3):
        clock.advance(seconds=7 * 24 * 3600)
        webhooks.deliver_due(instance, http)
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_an_unreachable_endpoint_does_not_fail_the_request_and_the_delivery_waits(
        backend: TestClient, browser: TestClient, instance: Instance, engine: Engine,
        http: httpx.Client, clock: FrozenClock) -> None:
    register(backend, f"http://127.0.0.1:{free_port()}/hooks", ["actor_token.created"])
    ada = create_user(backend)

    response = backend.post("/v1/actor_tokens", json={
        "user_id": ada["id"], "actor": {"sub": "op_alice"}, "reason": REASON})

    assert response.status_code == 200, response.text
    pending = the_delivery(engine)
    assert pending["status"] == "pending" and pending["attempts"] == 0
    redeem(browser, response.json())  # the impersonation itself goes on

    assert webhooks.deliver_due(instance, http) == 0
    after = the_delivery(engine)
    assert after["status"] == "pending" and after["attempts"] == 1
    assert after["last_error"].startswith("ConnectError")
    assert after["next_attempt_at"] == clock.now_ms() + 5_000


def test_a_failing_endpoint_does_not_fail_the_request(
        backend: TestClient, engine: Engine, receiver: Receiver) -> None:
    receiver.fail_first = 1_000
    register(backend, receiver.url)

    response = backend.post("/v1/actor_tokens", json={
        "user_id": create_user(backend)["id"], "actor": {"sub": "op_alice"}, "reason": REASON})

    assert response.status_code == 200, response.text
    assert receiver.requests == []
    assert the_delivery(engine)["status"] == "pending"


def test_an_endpoint_that_never_answers_does_not_slow_the_request(
        backend: TestClient, engine: Engine) -> None:
    """A listener that never accepts: an inline delivery would wait out its timeout."""
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        register(backend, f"http://127.0.0.1:{black_hole.getsockname()[1]}/hooks")
        user_id = create_user(backend)["id"]

        response = backend.post("/v1/actor_tokens", json={
            "user_id": user_id, "actor": {"sub": "op_alice"}, "reason": REASON})

        # Nobody even tried to connect: the request answered without touching the
        # endpoint, so no endpoint can ever slow it down (no stopwatch needed).
        black_hole.setblocking(False)
        with pytest.raises(BlockingIOError):
            black_hole.accept()

    assert response.status_code == 200, response.text
    assert the_delivery(engine)["status"] == "pending"


def test_concurrent_workers_deliver_each_event_exactly_once(
        backend: TestClient, instance: Instance, receiver: Receiver, engine: Engine) -> None:
    """Replicas share the outbox: a claimed delivery is not sent by another worker too."""
    register(backend, receiver.url)
    user_id = create_user(backend)["id"]
    for _ in range(24):
        impersonate(backend, user_id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with httpx.Client(trust_env=False) as client:
                while webhooks.deliver_due(instance, client, limit=3):
                    pass
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)

    assert errors == []
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 24
    assert {(d["status"], d["attempts"]) for d in deliveries(engine)} == {("delivered", 1)}


def test_deleting_an_endpoint_drops_its_queued_deliveries(
        backend: TestClient, instance: Instance, receiver: Receiver, http: httpx.Client,
        engine: Engine) -> None:
    endpoint = register(backend, receiver.url)
    impersonate(backend, create_user(backend)["id"])
    assert len(deliveries(engine)) == 1

    response = backend.delete(f"/v1/webhook_endpoints/{endpoint['id']}")

    assert response.status_code == 200, response.text
    assert backend.get("/v1/webhook_endpoints").json() == []
    webhooks.deliver_due(instance, http)
    assert receiver.requests == []
    assert [d for d in deliveries(engine) if d["status"] == "pending"] == []


# -- the worker in a real server ----------------------------------------------------------


SERVE_SECRET_KEY = "sk_test_" + "w" * 40


def test_a_serving_process_delivers_in_the_background(
        tmp_path: Path, database_url: str, engine: Engine, receiver: Receiver) -> None:
    env = actas_env(ACTAS_SECRET_KEY=SERVE_SECRET_KEY,
                    ACTAS_INSTANCE_SECRET="serve-instance-secret-" + "v" * 32,
                    ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true")
    with ActasServer(["--data-dir", "data", "--database-url", database_url], cwd=tmp_path,
                     env=env) as server, httpx.Client(
            base_url=server.url, timeout=10, trust_env=False,
            headers={"Authorization": f"Bearer {SERVE_SECRET_KEY}"}) as client:
        hook = client.post("/v1/webhook_endpoints", json={"url": receiver.url})
        assert hook.status_code == 200, f"{hook.text}\n{server.output()}"
        user = client.post("/v1/users", json={"email_address": ["ada@example.com"]})
        assert user.status_code == 200, f"{user.text}\n{server.output()}"
        token = client.post("/v1/actor_tokens", json={
            "user_id": user.json()["id"], "actor": {"sub": "op_alice"}, "reason": REASON})
        assert token.status_code == 200, f"{token.text}\n{server.output()}"

        receiver.wait_for(lambda got: any(r.payload()["type"] == "actor_token.created"
                                          for r in got), DEADLINE, server.output)

    [received] = receiver.delivered
    payload = verified(hook.json()["secret"], received)
    assert payload["data"]["actor_token_id"] == token.json()["id"]
    assert payload["data"]["ip_address"] == "127.0.0.1"
