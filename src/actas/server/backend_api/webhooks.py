"""Backend API: webhook endpoints (register, list, get, delete) and their deliveries
(list, re-send)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from actas.server import webhooks
from actas.server.db.schema import WebhookDelivery, WebhookEndpoint
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of
from actas.server.resources import DeletedObject

router = APIRouter(tags=["Webhooks"])


class CreateEndpointBody(RequestBody):
    url: Annotated[str, Field(max_length=2048)]
    event_types: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, description="Event types to receive; all when empty.")


class EndpointObject(BaseModel):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    url: str
    event_types: list[str]
    secret: str | None = Field(None, description="The whsec_ signing secret: only in the "
                               "response that created the endpoint.")
    circuit: Literal["closed", "open"] = Field(
        description="open: after repeated failures nothing is sent until circuit_open_until "
        "(then one trial delivery)")
    consecutive_failures: int
    circuit_open_until: int | None
    created_at: int


def _render(row: WebhookEndpoint, now_ms: int, secret: str | None = None) -> EndpointObject:
    is_open = row.circuit_open_until is not None and row.circuit_open_until > now_ms
    return EndpointObject(id=row.id, url=row.url, event_types=list(row.event_types),
                          secret=secret, circuit="open" if is_open else "closed",
                          consecutive_failures=row.consecutive_failures,
                          circuit_open_until=row.circuit_open_until if is_open else None,
                          created_at=row.created_at)


class DeliveryObject(BaseModel):
    object: Literal["webhook_delivery"] = "webhook_delivery"
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    next_attempt_at: int | None = Field(description="when it is tried next (pending only)")
    created_at: int
    updated_at: int


def _render_delivery(row: WebhookDelivery) -> DeliveryObject:
    return DeliveryObject(id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id,
                          event_type=str(row.payload.get("type", "")),
                          status=row.status,
                          attempts=row.attempts, last_error=row.last_error,
                          next_attempt_at=row.next_attempt_at if row.status == "pending"
                          else None, created_at=row.created_at, updated_at=row.updated_at)


@router.post("/v1/webhook_endpoints", response_model=EndpointObject,
             summary="Register a webhook endpoint (public http(s) URLs only)")
def create_endpoint(request: Request, body: CreateEndpointBody) -> EndpointObject:
    instance = instance_of(request)
    target = webhooks.check_url(instance, body.url)  # resolves the name: before the transaction
    with instance.transaction() as db:
        row, secret = webhooks.create_endpoint(db, instance, target=target,
                                               event_types=body.event_types)
        return _render(row, instance.now_ms(), secret.reveal())


@router.get("/v1/webhook_endpoints", response_model=list[EndpointObject],
            summary="List webhook endpoints")
def list_endpoints(request: Request) -> list[EndpointObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        rows = db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        return [_render(row, instance.now_ms()) for row in rows]


@router.get("/v1/webhook_endpoints/{endpoint_id}", response_model=EndpointObject,
            summary="Get a webhook endpoint, with its circuit breaker's state")
def get_endpoint(request: Request, endpoint_id: str) -> EndpointObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return _render(webhooks.get_endpoint(db, endpoint_id), instance.now_ms())


@router.get("/v1/webhook_endpoints/{endpoint_id}/deliveries",
            response_model=list[DeliveryObject],
            summary="An endpoint's deliveries, newest first: status, attempts, last error")
def list_deliveries(
    request: Request, endpoint_id: str,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_id: Annotated[str | None, Query(max_length=40,
                                           description="keyset cursor: older than this")] = None,
) -> list[DeliveryObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        rows = webhooks.list_deliveries(db, endpoint_id, status=status, limit=limit,
                                        before_id=before_id)
        return [_render_delivery(row) for row in rows]


@router.post("/v1/webhook_endpoints/{endpoint_id}/deliveries/{delivery_id}/resend",
             response_model=DeliveryObject,
             summary="Send a delivery again (attempts start over), e.g. after a fix")
def resend_delivery(request: Request, endpoint_id: str, delivery_id: str) -> DeliveryObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return _render_delivery(webhooks.resend(db, instance, endpoint_id, delivery_id))


@router.delete("/v1/webhook_endpoints/{endpoint_id}", response_model=DeletedObject,
               summary="Delete a webhook endpoint (its queued deliveries go with it)")
def delete_endpoint(request: Request, endpoint_id: str) -> DeletedObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        db.delete(webhooks.get_endpoint(db, endpoint_id))
    return DeletedObject(id=endpoint_id, object="webhook_endpoint")
