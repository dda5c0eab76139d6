"""Webhooks: audit events delivered to registered endpoints, signed per Standard Webhooks.

Delivery goes through an outbox: an event's deliveries are written in the
same transaction as the event, and a worker sends them later, with retries
and exponential backoff. A slow or failing endpoint therefore never blocks
or fails the request that caused the event, and nothing is lost if the
process stops between the two.

Endpoints must be public http(s) URLs, checked when registered and again
before each delivery, which then goes to the checked address
(``actas.server.webhook_urls``); a refused delivery is retried like a failed
one, in case the name points somewhere public again, and never sent.

Signature (https://www.standardwebhooks.com/): headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`` keyed with the endpoint's ``whsec_`` secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session as Db

from actas._errors import ResourceNotFound, WebhookUrlNotAllowed
from actas.server import ids, webhook_urls
from actas.server.credentials import Secret
from actas.server.db.schema import AuditEvent, WebhookDelivery, WebhookEndpoint
from actas.server.sealing import Sealer

if TYPE_CHECKING:
    from actas.server.instance import Instance

log = logging.getLogger("actas.webhooks")

ENDPOINT = "whep"
DELIVERY = "whdl"
SECRET_PREFIX = "whsec_"  # noqa: S105  (the Standard Webhooks prefix, not a secret)
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10.0
# Retry n waits BACKOFF_BASE * 4**(n-1) seconds: 5 s, 20 s, 80 s, ~5 min, ~21 min, ...
BACKOFF_BASE_MS = 5_000
# A claimed delivery is retried by any worker after this long (a crashed sender).
LEASE_MS = 60_000


def _sealer(instance: Instance) -> Sealer:
    return Sealer(instance.settings.instance_secret, "webhook-secrets")


def check_url(instance: Instance, url: str) -> webhook_urls.Target:
    """Raise ``WebhookUrlNotAllowed`` unless ``url`` may receive webhooks.

    Resolves the host name: call it outside a database transaction.
    """
    return webhook_urls.check(
        url, allow_private=instance.settings.webhooks_allow_private_networks,
        resolve=instance.resolve)


def create_endpoint(db: Db, instance: Instance, *, target: webhook_urls.Target,
                    event_types: Sequence[str]) -> tuple[WebhookEndpoint, Secret]:
    """Register an endpoint for a URL that ``check_url`` accepted."""
    now = instance.now_ms()
    secret = Secret(SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode())
    endpoint_id = ids.new_id(ENDPOINT, now)
    row = WebhookEndpoint(
        id=endpoint_id, url=target.checked_url, event_types=list(event_types),
        secret_ciphertext=_sealer(instance).seal(secret.reveal().encode(), bound_to=endpoint_id),
        disabled=False, created_at=now, updated_at=now,
    )
    db.add(row)
    db.flush()
    return row, secret


def get_endpoint(db: Db, endpoint_id: str) -> WebhookEndpoint:
    row = db.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise ResourceNotFound(f"No webhook endpoint has the id {endpoint_id!r}.",
                               param_name="endpoint_id")
    return row


def event_payload(event: AuditEvent) -> dict[str, Any]:
    occurred = dt.datetime.fromtimestamp(event.occurred_at / 1000, dt.UTC)
    return {
        "type": event.type,
        # The Standard Webhooks payload carries an RFC 3339 timestamp; the
        # millisecond value stays in data.occurred_at.
        "timestamp": occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "id": event.id, "object": "audit_event", "seq": event.seq, "type": event.type,
            "occurred_at": event.occurred_at, "actor_sub": event.actor_sub,
            "user_id": event.user_id, "session_id": event.session_id,
            "actor_token_id": event.actor_token_id, "reason": event.reason,
            "ip_address": event.ip_address, "user_agent": event.user_agent, **event.data,
        },
    }


def enqueue(db: Db, instance: Instance, event: AuditEvent) -> None:
    """Queue ``event`` for every endpoint that wants it, in the caller's transaction."""
    endpoints = db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.disabled.is_(False)))
    now = instance.now_ms()
    for endpoint in endpoints:
        if endpoint.event_types and event.type not in endpoint.event_types:
            continue
        db.add(WebhookDelivery(
            id=ids.new_id(DELIVERY, now), endpoint_id=endpoint.id, event_id=event.id,
            payload=event_payload(event), status="pending", attempts=0, next_attempt_at=now,
            last_error=None, created_at=now, updated_at=now,
        ))
    db.flush()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class _Claimed:
    delivery_id: str
    event_id: str
    url: str
    secret: str
    body: bytes
    attempt: int


def _claim(instance: Instance, limit: int) -> list[_Claimed]:
    now = instance.now_ms()
    claimed: list[_Claimed] = []
    with instance.transaction() as db:
        stmt = (select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at).limit(limit))
        if db.get_bind().dialect.name == "postgresql":
            # Replicas share the outbox; each takes rows the others have not locked.
            stmt = stmt.with_for_update(skip_locked=True)
        sealer = _sealer(instance)
        for delivery in db.scalars(stmt):
            endpoint = db.get(WebhookEndpoint, delivery.endpoint_id)
            if endpoint is None or endpoint.disabled:
                delivery.status = "failed"
                delivery.last_error = "endpoint removed or disabled"
                continue
            delivery.attempts += 1
            delivery.next_attempt_at = now + LEASE_MS
            delivery.updated_at = now
            secret = sealer.open(endpoint.secret_ciphertext, bound_to=endpoint.id).decode()
            claimed.append(_Claimed(delivery.id, delivery.event_id, endpoint.url, secret,
                                    json.dumps(delivery.payload, separators=(",", ":")).encode(),
                                    delivery.attempts))
    return claimed


def deliver_due(instance: Instance, client: httpx.Client, *, limit: int = 50) -> int:
    """Send every delivery that is due; return how many succeeded."""
    delivered = 0
    for item in _claim(instance, limit):
        timestamp = instance.now_ms() // 1000
        headers = {
            "content-type": "application/json",
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(item.secret, item.event_id, timestamp, item.body),
        }
        error: str | None = None
        try:
            # Checked again now: the name may resolve elsewhere than at registration.
            target = check_url(instance, item.url)
            response = client.post(target.url, content=item.body,
                                   headers={**headers, **target.headers},
                                   extensions=target.extensions, timeout=TIMEOUT_SECONDS)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except WebhookUrlNotAllowed as refused:
            error = f"not sent: {refused.message}"[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        _settle(instance, item, error)
        delivered += error is None
    return delivered


def _settle(instance: Instance, item: _Claimed, error: str | None) -> None:
    now = instance.now_ms()
    if error is None:
        values: dict[str, Any] = {"status": "delivered", "last_error": None}
    elif item.attempt >= MAX_ATTEMPTS:
        log.warning("webhook %s gave up after %d attempts: %s", item.delivery_id, item.attempt,
                    error)
        values = {"status": "failed", "last_error": error}
    else:
        values = {"last_error": error,
                  "next_attempt_at": now + BACKOFF_BASE_MS * 4 ** (item.attempt - 1)}
    with instance.transaction() as db:
        db.execute(update(WebhookDelivery).where(WebhookDelivery.id == item.delivery_id)
                   .values(updated_at=now, **values))
