"""Webhooks: audit events delivered to registered endpoints, signed per Standard Webhooks.

Delivery goes through an outbox: an event's deliveries are written in the
same transaction as the event, and a worker sends them later, with retries
and exponential backoff. A slow or failing endpoint therefore never blocks
or fails the request that caused the event, and nothing is lost if the
process stops between the two.

Each endpoint is its own lane: endpoints are served concurrently, and one
endpoint's deliveries go out one at a time, oldest first, a failed one
holding back those behind it (order within an endpoint). The lane is a
lease in the endpoint's row, so this holds across replicas. After
``BREAKER_THRESHOLD`` consecutive failures an endpoint's circuit opens for
``BREAKER_COOLDOWN_MS``: nothing is sent to it, and nothing waits on it.

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
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session as Db
from sqlalchemy.orm import aliased

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
# An endpoint's lane, and a claimed delivery, are taken over after this long
# (a crashed sender); a live sender renews the lease before each delivery.
LEASE_MS = 60_000
# The circuit breaker: after this many consecutive failures an endpoint gets
# nothing for the cooldown, then one trial delivery closes or re-opens it.
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN_MS = 5 * 60_000


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


# Built once, and only the two columns used: read through the ORM, every audited
# transaction paid for loading endpoint objects (most installs have none).
_LISTENING = select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.disabled.is_(False))


def enqueue(db: Db, instance: Instance, events: Sequence[AuditEvent]) -> None:
    """Queue ``events`` for every endpoint that wants them, in the caller's transaction
    (the one that chains them into the audit log)."""
    if not events:
        return
    endpoints = db.connection().execute(_LISTENING).all()
    if not endpoints:
        return
    now = instance.now_ms()
    for event in events:
        for endpoint_id, event_types in endpoints:
            if event_types and event.type not in event_types:
                continue
            db.add(WebhookDelivery(
                id=ids.new_id(DELIVERY, now), endpoint_id=endpoint_id, event_id=event.id,
                payload=event_payload(event), status="pending", attempts=0,
                next_attempt_at=now, last_error=None, created_at=now, updated_at=now,
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


def due_endpoints(instance: Instance, *, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Endpoints whose oldest pending delivery is due (the one a lane sends first), whose
    lane is free and whose circuit is not open, longest-waiting first; ``exclude`` those
    this process is sending to already.

    Every process asks every second, so it is a plain read (no write lock: the lane's
    lease, taken next, is what decides) of a statement built once."""
    with instance.reading() as connection:
        rows = connection.execute(_DUE_ENDPOINTS, {"now": instance.now_ms()}).all()
    return [endpoint_id for endpoint_id, _waiting_since in sorted(rows, key=lambda r: r[1])
            if endpoint_id not in exclude]


def deliver_endpoint(instance: Instance, client: httpx.Client, endpoint_id: str, *,
                     limit: int = 50) -> int:
    """Send one endpoint's due deliveries, oldest first, stopping at the first failure
    (the rest wait behind it: order holds within an endpoint). Return how many succeeded.

    Takes the endpoint's lane first (a lease in its row with this sender's nonce, so
    one sender on any replica), and does nothing if another sender holds it or its
    circuit is open. A sender whose lease was taken over stops at its next delivery.
    """
    owner = _take_lane(instance, endpoint_id)
    if owner is None:
        return 0
    delivered = 0
    try:
        for _ in range(limit):
            item = _claim_head(instance, endpoint_id, owner)
            if item is None:
                break
            error = _send(instance, client, item)
            _settle(instance, endpoint_id, item, error)
            if error is not None:
                break
            delivered += 1
    finally:
        _release_lane(instance, endpoint_id, owner)
    return delivered


def deliver_due(instance: Instance, client: httpx.Client, *, limit: int = 50,
                max_workers: int = 8) -> int:
    """Send every due delivery, endpoints in parallel, and wait; return how many succeeded.

    The serving process uses ``Dispatcher`` instead, which does not wait for a
    slow endpoint; this is the same work for a caller that wants it done now.
    """
    endpoints = due_endpoints(instance)
    if len(endpoints) <= 1:
        return sum(deliver_endpoint(instance, client, e, limit=limit) for e in endpoints)
    with ThreadPoolExecutor(max_workers=min(max_workers, len(endpoints)),
                            thread_name_prefix="actas-webhook") as pool:
        return sum(pool.map(lambda e: deliver_endpoint(instance, client, e, limit=limit),
                            endpoints))


class Dispatcher:
    """Keeps one lane per endpoint busy, in a thread pool, without ever waiting on one.

    Each round of the worker calls ``dispatch``: endpoints with due deliveries
    that this process is not already sending to get a lane. An endpoint that
    hangs holds its own lane (and one thread) until the timeout; every other
    endpoint keeps being served.
    """

    def __init__(self, instance: Instance, client: httpx.Client, *, max_workers: int = 8
                 ) -> None:
        self._instance, self._client = instance, client
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="actas-webhook")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._max_workers = max_workers

    def dispatch(self) -> int:
        """Start a lane for each due endpoint not already being served; return how many."""
        with self._lock:
            busy = frozenset(self._busy)
        free = self._max_workers - len(busy)
        started = 0
        for endpoint_id in due_endpoints(self._instance, exclude=busy)[:max(free, 0)]:
            with self._lock:
                self._busy.add(endpoint_id)
            self._pool.submit(self._lane, endpoint_id)
            started += 1
        return started

    def _lane(self, endpoint_id: str) -> None:
        try:
            deliver_endpoint(self._instance, self._client, endpoint_id)
        except Exception:  # a lane's failure must not stop the dispatcher
            log.exception("webhook lane of %s failed", endpoint_id)
        finally:
            with self._lock:
                self._busy.discard(endpoint_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lane_free(now: int | BindParameter[int]) -> tuple[ColumnElement[bool], ...]:
    """An endpoint a sender may take now: enabled, no live lease, circuit not open."""
    return (WebhookEndpoint.disabled.is_(False),
            or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until <= now),
            or_(WebhookEndpoint.circuit_open_until.is_(None),
                WebhookEndpoint.circuit_open_until <= now))


_OLDER = aliased(WebhookDelivery)
_DUE_ENDPOINTS = (
    select(WebhookDelivery.endpoint_id, func.min(WebhookDelivery.next_attempt_at))
    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .where(WebhookDelivery.status == "pending",
           WebhookDelivery.next_attempt_at <= bindparam("now"),
           *_lane_free(bindparam("now")),
           ~exists().where(  # nothing older waits behind a retry: it is the head
               _OLDER.endpoint_id == WebhookDelivery.endpoint_id,
               _OLDER.status == "pending",
               or_(_OLDER.created_at < WebhookDelivery.created_at,
                   and_(_OLDER.created_at == WebhookDelivery.created_at,
                        _OLDER.id < WebhookDelivery.id))))
    .group_by(WebhookDelivery.endpoint_id))


def _take_lane(instance: Instance, endpoint_id: str) -> str | None:
    """This sender's nonce if it got the lane, else ``None``."""
    now = instance.now_ms()
    owner = secrets.token_hex(8)
    with instance.transaction() as db:
        taken = db.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, *_lane_free(now))
            .values(lease_until=now + LEASE_MS, lease_owner=owner))
        return owner if taken.rowcount else None  # type: ignore[attr-defined]


def _release_lane(instance: Instance, endpoint_id: str, owner: str) -> None:
    with instance.transaction() as db:
        db.execute(update(WebhookEndpoint)  # only our own lease: another may hold it now
                   .where(WebhookEndpoint.id == endpoint_id,
                          WebhookEndpoint.lease_owner == owner)
                   .values(lease_until=None, lease_owner=None))


def _claim_head(instance: Instance, endpoint_id: str, owner: str) -> _Claimed | None:
    """The endpoint's oldest pending delivery if it is due, renewing this sender's lease;
    ``None`` if there is none, or the lease was taken over (a send outlived it)."""
    now = instance.now_ms()
    with instance.transaction() as db:
        endpoint = db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.lease_owner != owner or endpoint.disabled:
            return None
        head = db.scalar(select(WebhookDelivery)
                         .where(WebhookDelivery.endpoint_id == endpoint_id,
                                WebhookDelivery.status == "pending")
                         .order_by(WebhookDelivery.created_at, WebhookDelivery.id).limit(1))
        if head is None or head.next_attempt_at > now:
            return None
        endpoint.lease_until = now + LEASE_MS
        head.attempts += 1
        head.next_attempt_at = now + LEASE_MS  # a crashed sender's delivery is retried
        head.updated_at = now
        secret = _sealer(instance).open(endpoint.secret_ciphertext, bound_to=endpoint.id)
        return _Claimed(head.id, head.event_id, endpoint.url, secret.decode(),
                        json.dumps(head.payload, separators=(",", ":")).encode(), head.attempts)


def _send(instance: Instance, client: httpx.Client, item: _Claimed) -> str | None:
    """POST one delivery; ``None`` on a 2xx answer, else what went wrong."""
    timestamp = instance.now_ms() // 1000
    headers = {
        "content-type": "application/json",
        "webhook-id": item.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(item.secret, item.event_id, timestamp, item.body),
    }
    try:
        # Checked again now: the name may resolve elsewhere than at registration.
        target = check_url(instance, item.url)
        # Only the status line and headers are read: a receiver that trickles its body
        # cannot hold the lane (the timeout bounds each read, not the whole answer).
        with client.stream("POST", target.url, content=item.body,
                           headers={**headers, **target.headers},
                           extensions=target.extensions, timeout=TIMEOUT_SECONDS) as response:
            status = response.status_code
    except WebhookUrlNotAllowed as refused:
        return f"not sent: {refused.message}"[:500]
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if not 200 <= status < 300:
        return f"HTTP {status}"
    return None


def _settle(instance: Instance, endpoint_id: str, item: _Claimed, error: str | None) -> None:
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
        endpoint = db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            return
        if error is None:
            endpoint.consecutive_failures, endpoint.circuit_open_until = 0, None
        else:
            endpoint.consecutive_failures += 1
            if endpoint.consecutive_failures >= BREAKER_THRESHOLD:
                # Open (or, after a failed trial, re-open) the circuit: nothing is sent
                # until the cooldown ends, then one delivery tries it again.
                endpoint.circuit_open_until = now + BREAKER_COOLDOWN_MS
                log.warning("webhook endpoint %s: circuit open for %d s after %d failures",
                            endpoint_id, BREAKER_COOLDOWN_MS // 1000,
                            endpoint.consecutive_failures)


def list_deliveries(db: Db, endpoint_id: str, *, status: str | None = None, limit: int = 50,
                    before_id: str | None = None) -> Sequence[WebhookDelivery]:
    """An endpoint's deliveries, newest first (keyset paging on the id)."""
    get_endpoint(db, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return db.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def resend(db: Db, instance: Instance, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    """Queue a delivery again from scratch (attempts reset), whatever its status."""
    delivery = db.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise ResourceNotFound(f"Endpoint {endpoint_id!r} has no delivery {delivery_id!r}.",
                               param_name="delivery_id")
    now = instance.now_ms()
    delivery.status, delivery.attempts, delivery.last_error = "pending", 0, None
    delivery.next_attempt_at, delivery.updated_at = now, now
    db.flush()
    return delivery
