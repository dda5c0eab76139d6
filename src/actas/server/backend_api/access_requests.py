"""Backend API: access requests, for users who ask to be asked before anyone
impersonates them (``impersonation_preference: ask``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import access_requests, actor_tokens
from actas.server.impersonation.policy import Requester
from actas.server.resources import AccessRequestObject, access_request_object
from actas.server.roles import READ_ONLY, Mode

router = APIRouter(tags=["Access requests"])


class CreateAccessRequestBody(RequestBody):
    user_id: Annotated[str, Field(max_length=40)]
    actor: dict[str, Any] = Field(description="Who asks, as on an actor token: `sub` is "
                                  "required; `name` is what the user reads.")
    reason: Annotated[str, Field(max_length=1000)] | None = None
    mode: Mode = Field(READ_ONLY, description="The most the grant will allow.")
    session_max_duration_in_seconds: int = Field(
        actor_tokens.DEFAULT_SESSION_MAX_DURATION,
        description="How long an impersonation under the grant may last.")


@router.post("/v1/access_requests", response_model=AccessRequestObject,
             summary="Ask a user for access to their account (preference `ask`)")
def create_access_request(request: Request,
                          body: CreateAccessRequestBody) -> AccessRequestObject:
    instance = instance_of(request)
    row = access_requests.request(
        instance, requester=Requester.backend_api(), user_id=body.user_id, actor=body.actor,
        reason=body.reason, mode=body.mode,
        session_max_duration=body.session_max_duration_in_seconds,
        origin=request_origin(request))
    return access_request_object(row, instance.now_ms())


@router.get("/v1/access_requests", response_model=list[AccessRequestObject],
            summary="A user's access requests and grants, newest first")
def list_access_requests(request: Request,
                         user_id: Annotated[str, Query(max_length=40)],
                         limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         ) -> list[AccessRequestObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        rows = access_requests.of_user(db, user_id, limit=limit)
        return [access_request_object(r, instance.now_ms()) for r in rows]


@router.get("/v1/access_requests/{request_id}", response_model=AccessRequestObject,
            summary="Get an access request")
def get_access_request(request: Request, request_id: str) -> AccessRequestObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return access_request_object(access_requests.get(db, request_id), instance.now_ms())


@router.post("/v1/access_requests/{request_id}/withdraw", response_model=AccessRequestObject,
             summary="Withdraw an access request (a grant it got ends too)")
def withdraw_access_request(request: Request, request_id: str) -> AccessRequestObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        row = access_requests.withdraw(db, instance, request_id=request_id, by="backend_api",
                                       origin=request_origin(request))
        return access_request_object(row, instance.now_ms())
