"""Failed ticket redemptions are rate-limited, and audited without flooding the log.

The finding: 2,000 anonymous ``GET /v1/tickets/accept`` wrote 2,000 audit rows
(and a webhook delivery per endpoint for each). Now each address and each
ticket has a budget of failures per window, after which the answer is 429;
and the first refusal of a kind in a window is recorded in full, the repeats
summarised in one event once the window has closed.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance, create_app, rate_limits
from actas.server.clock import FrozenClock
from actas.server.db.schema import AuditEvent, WebhookDelivery
from actas.server.impersonation import redemption
from tests.conftest import APP_ORIGIN
from tests.support.flows import create_actor_token, create_user, error_code, redeem

PER_ADDRESS = 5
PER_TICKET = 3
_HTML_CODE = re.compile(r"<code>([a-z_]+)</code>")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The endpoint below is only queued for, never delivered to.
    return {"ticket_failures_per_address": PER_ADDRESS, "ticket_failures_per_ticket": PER_TICKET,
            "webhooks_allow_private_networks": True}


def bogus() -> str:
    return "tkt_" + secrets.token_urlsafe(32)


def accept(client: TestClient, ticket: str) -> tuple[int, str | None]:
    response = client.get("/v1/tickets/accept", params={"ticket": ticket},
                          follow_redirects=False)
    found = _HTML_CODE.search(response.text)
    return response.status_code, found.group(1) if found else None


def rows(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def audited(backend: TestClient, type: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = backend.get(
        "/v1/audit_events", params={"type": type, "limit": 500}).json()["data"]
    return events


def test_bogus_redemptions_are_limited_and_write_a_bounded_audit(
        backend: TestClient, browser: TestClient, instance: Instance, engine: Engine,
        clock: FrozenClock) -> None:
    assert backend.post("/v1/webhook_endpoints",
                        json={"url": "http://127.0.0.1:9/hooks"}).status_code == 200
    clock.advance(ms=rate_limits.WINDOW_MS - clock.now_ms() % rate_limits.WINDOW_MS)
    events_before = rows(engine, AuditEvent.__table__)

    outcomes = Counter(accept(browser, bogus()) for _ in range(60))
    posted = browser.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": bogus()})

    assert outcomes == {(400, "ticket_invalid"): PER_ADDRESS,
                        (429, "too_many_requests"): 60 - PER_ADDRESS}
    assert posted.status_code == 429 and error_code(posted) == "too_many_requests"
    refused = audited(backend, redemption.REFUSED)
    assert sorted(e["data"]["code"] for e in refused) == ["ticket_invalid", "too_many_requests"]
    assert rows(engine, AuditEvent.__table__) - events_before == 2
    assert rows(engine, WebhookDelivery.__table__) == 2  # one per event, not per request

    # When the window has closed, the worker summarises the repeats: nothing is lost.
    assert redemption.summarise_refusals(instance) == 0  # not before
    clock.advance(ms=rate_limits.WINDOW_MS)
    assert redemption.summarise_refusals(instance) == 2
    assert redemption.summarise_refusals(instance) == 0  # once
    summaries = audited(backend, redemption.REFUSED_REPEATEDLY)
    assert sorted((e["data"]["code"], e["data"]["count"], e["ip_address"])
                  for e in summaries) == [("ticket_invalid", PER_ADDRESS - 1, "testclient"),
                                          ("too_many_requests", 60 - PER_ADDRESS, "testclient")]
    assert all(e["data"]["window_end"] - e["data"]["window_start"] == rate_limits.WINDOW_MS
               for e in summaries)
    assert backend.get("/v1/audit_events/verify").json()["ok"]

    # A new window, a new budget.
    assert accept(browser, bogus()) == (400, "ticket_invalid")


def test_one_ticket_is_limited_from_any_number_of_addresses(
        backend: TestClient, browser: TestClient, instance: Instance) -> None:
    ticket = create_actor_token(backend, create_user(backend)["id"])["token"]
    redeem(browser, ticket)
    app = create_app(instance)

    def replay_from(address: str) -> tuple[int, str | None]:
        with TestClient(app, base_url="https://actas.test", headers={"Origin": APP_ORIGIN},
                        client=(address, 50000)) as client:
            return accept(client, ticket)

    outcomes = [replay_from(f"203.0.113.{n}") for n in range(PER_TICKET + 2)]

    assert outcomes == [(400, "ticket_already_used")] * PER_TICKET + \
        [(429, "too_many_requests")] * 2
    # A ticket's replays from each address are recorded (the first of each kind).
    refused = audited(backend, redemption.REFUSED)
    assert Counter(e["data"]["code"] for e in refused) == {
        "ticket_already_used": PER_TICKET, "too_many_requests": 2}


def test_successful_redemptions_do_not_use_the_budget(backend: TestClient,
                                                      instance: Instance) -> None:
    user_id = create_user(backend)["id"]
    app = create_app(instance)
    for _ in range(PER_ADDRESS + 2):
        ticket = create_actor_token(backend, user_id)["token"]
        with TestClient(app, base_url="https://actas.test",
                        headers={"Origin": APP_ORIGIN}) as fresh_browser:
            redeem(fresh_browser, ticket)
