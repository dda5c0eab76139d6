"""Backend API: actor tokens (Clerk's create and revoke; actas adds list and get)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import actor_tokens
from actas.server.impersonation.policy import Requester
from actas.server.resources import ActorTokenObject, actor_token_object
from actas.server.roles import FULL, Mode

router = APIRouter(tags=["Actor tokens"])


class CreateActorTokenBody(RequestBody):
    user_id: Annotated[str, Field(max_length=40)]
    actor: dict[str, Any] = Field(description="Who impersonates: `sub` is required; every "
                                  "other key is kept and appears in the JWT's `act` claim.")
    expires_in_seconds: int = Field(actor_tokens.DEFAULT_EXPIRES_IN,
                                    description="How long the ticket can be redeemed.")
    session_max_duration_in_seconds: int = Field(
        actor_tokens.DEFAULT_SESSION_MAX_DURATION,
        description="Hard limit of the impersonation session; refresh never extends it.")
    mode: Mode = Field(FULL, description="actas: `read_only` (the impersonator can look but "
                       "not change anything) or `full` (the default, as Clerk's actor tokens "
                       "behave). The Backend API may start either; the dashboard caps it by "
                       "the operator's role. The JWT carries it as `act_mode`.")
    reason: Annotated[str, Field(max_length=1000)] | None = Field(
        None, description="actas: why; required when ACTAS_REQUIRE_REASON is on (default). "
        "When absent, `actor.reason` is used (for Clerk's SDKs, which cannot send this field).")
    override: bool = Field(False, description="actas: impersonate a user whose "
                           "`impersonation_preference` is `never` (or `ask`, with no grant "
                           "covering this actor) anyway. Deliberate, needs a reason, audited, "
                           "and the user is told.")


@router.post("/v1/actor_tokens", response_model=ActorTokenObject,
             summary="Create an actor token (a single-use impersonation ticket)")
def create_actor_token(request: Request, body: CreateActorTokenBody) -> ActorTokenObject:
    instance = instance_of(request)
    # Clerk's SDKs cannot send actas's top-level reason; they can put it in the
    # free-form actor object, where it is taken from when the field is absent.
    reason = body.reason
    if reason is None and isinstance(body.actor.get("reason"), str):
        reason = body.actor["reason"]
    issued = actor_tokens.create(
        instance, requester=Requester.backend_api(), user_id=body.user_id, actor=body.actor,
        reason=reason, origin=request_origin(request), expires_in=body.expires_in_seconds,
        session_max_duration=body.session_max_duration_in_seconds, mode=body.mode,
        override=body.override)
    return actor_token_object(issued.row, token=issued.ticket.reveal(), url=issued.url)


@router.get("/v1/actor_tokens", response_model=list[ActorTokenObject],
            summary="List actor tokens, newest first")
def list_actor_tokens(
    request: Request,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    actor_sub: Annotated[str | None, Query(max_length=256)] = None,
    status: Literal["pending", "accepted", "revoked"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 10,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[ActorTokenObject]:
    instance = instance_of(request)
    q = actor_tokens.ActorTokenQuery(user_id=user_id, actor_sub=actor_sub, status=status,
                                     limit=limit, offset=offset)
    with instance.transaction() as db:
        return [actor_token_object(row) for row in actor_tokens.list_tokens(db, q)]


@router.get("/v1/actor_tokens/{actor_token_id}", response_model=ActorTokenObject,
            summary="Get an actor token (never its ticket)")
def get_actor_token(request: Request, actor_token_id: str) -> ActorTokenObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return actor_token_object(actor_tokens.get(db, actor_token_id))


@router.post("/v1/actor_tokens/{actor_token_id}/revoke", response_model=ActorTokenObject,
             summary="Revoke a pending actor token")
def revoke_actor_token(request: Request, actor_token_id: str) -> ActorTokenObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        row = actor_tokens.revoke(db, instance, actor_token_id, request_origin(request))
        return actor_token_object(row)
