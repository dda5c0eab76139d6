"""Backend API: webhook endpoints (register, list, delete)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from actas.server import webhooks
from actas.server.db.schema import WebhookEndpoint
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
    created_at: int


def _render(row: WebhookEndpoint, secret: str | None = None) -> EndpointObject:
    return EndpointObject(id=row.id, url=row.url, event_types=list(row.event_types),
                          secret=secret, created_at=row.created_at)


@router.post("/v1/webhook_endpoints", response_model=EndpointObject,
             summary="Register a webhook endpoint (public http(s) URLs only)")
def create_endpoint(request: Request, body: CreateEndpointBody) -> EndpointObject:
    instance = instance_of(request)
    target = webhooks.check_url(instance, body.url)  # resolves the name: before the transaction
    with instance.transaction() as db:
        row, secret = webhooks.create_endpoint(db, instance, target=target,
                                               event_types=body.event_types)
        return _render(row, secret.reveal())


@router.get("/v1/webhook_endpoints", response_model=list[EndpointObject],
            summary="List webhook endpoints")
def list_endpoints(request: Request) -> list[EndpointObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        rows = db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        return [_render(row) for row in rows]


@router.delete("/v1/webhook_endpoints/{endpoint_id}", response_model=DeletedObject,
               summary="Delete a webhook endpoint (its queued deliveries go with it)")
def delete_endpoint(request: Request, endpoint_id: str) -> DeletedObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        db.delete(webhooks.get_endpoint(db, endpoint_id))
    return DeletedObject(id=endpoint_id, object="webhook_endpoint")
