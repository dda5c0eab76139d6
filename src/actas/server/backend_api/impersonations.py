"""Backend API: the impersonation kill switch."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import ending

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
