"""Backend API: the impersonation kill switch, and what impersonators did (reported by
the application's SDK)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import activity, ending

router = APIRouter(tags=["Impersonation"])


class EndAllBody(RequestBody):
    actor_sub: Annotated[str, Field(max_length=256)] | None = Field(
        None, description="Only this actor's impersonations; all of them when absent.")


class EndAllResult(BaseModel):
    object: Literal["impersonations_ended"] = "impersonations_ended"
    sessions_revoked: int
    actor_tokens_revoked: int


@router.post("/v1/impersonations/end_all", response_model=EndAllResult,
             summary="Revoke every live impersonation session and pending actor token")
def end_all(request: Request, body: EndAllBody | None = None) -> EndAllResult:
    instance = instance_of(request)
    with instance.transaction() as db:
        result = ending.end_all(db, instance, actor_sub=body.actor_sub if body else None,
                                origin=request_origin(request), by="backend_api")
    return EndAllResult(sessions_revoked=result.sessions_revoked,
                        actor_tokens_revoked=result.actor_tokens_revoked)


class ActivityEntry(RequestBody):
    session_id: Annotated[str, Field(max_length=40)]
    method: Annotated[str, Field(max_length=10)]
    route: Annotated[str, Field(max_length=2000)] = Field(
        description="The route template (`/orders/{id}`), never the raw path; a query "
        "string is cut off.")
    status: Annotated[int, Field(ge=100, le=599)]
    occurred_at: Annotated[int, Field(ge=0, le=2**53)]
    refused: bool = False


class ActivityBody(RequestBody):
    entries: Annotated[list[ActivityEntry], Field(max_length=500)]


class ActivityReceipt(BaseModel):
    object: Literal["impersonation_activity_receipt"] = "impersonation_activity_receipt"
    accepted: int
    rejected: int


@router.post("/v1/impersonation_activity", response_model=ActivityReceipt,
             summary="Record requests impersonators made in the application (the SDK's "
             "ActivityReporter sends them)")
def record_activity(request: Request, body: ActivityBody) -> ActivityReceipt:
    """Entries for sessions that are not impersonations, or outside their session's
    life, are counted as rejected and not kept."""
    instance = instance_of(request)
    with instance.transaction() as db:
        accepted, rejected = activity.store(db, instance, [
            activity.Reported(session_id=e.session_id, method=e.method.upper(), route=e.route,
                              status=e.status, occurred_at=e.occurred_at, refused=e.refused)
            for e in body.entries])
    return ActivityReceipt(accepted=accepted, rejected=rejected)


class ActivityItem(BaseModel):
    object: Literal["impersonation_activity"] = "impersonation_activity"
    session_id: str
    method: str
    route: str
    status: int
    refused: bool
    occurred_at: int
    received_at: int


@router.get("/v1/impersonation_activity", response_model=list[ActivityItem],
            summary="What an impersonator did in the application, in order")
def list_activity(request: Request,
                  session_id: Annotated[str, Query(max_length=40)]) -> list[ActivityItem]:
    instance = instance_of(request)
    with instance.transaction() as db:
        done = activity.of_sessions(db, [session_id], limit_each=activity.MAX_PER_SESSION)
        rows = done[session_id].entries if session_id in done else ()
        return [ActivityItem(session_id=r.session_id, method=r.method, route=r.route,
                             status=r.status, refused=r.refused, occurred_at=r.occurred_at,
                             received_at=r.received_at) for r in rows]
