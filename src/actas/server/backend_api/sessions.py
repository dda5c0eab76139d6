"""Backend API: sessions (list, get, revoke, mint a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from actas._errors import ImpersonationRefused
from actas.server import session_tokens, sessions, users
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import ending
from actas.server.resources import SessionObject, TokenObject, session_object
from actas.server.sessions import Status

router = APIRouter(tags=["Sessions"])


class SessionPage(BaseModel):
    data: list[SessionObject]
    total_count: int


@router.get("/v1/sessions", response_model=list[SessionObject] | SessionPage,
            summary="List sessions")
def list_sessions(
    request: Request,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    client_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Status | None = None,
    actor_sub: Annotated[str | None, Query(max_length=256,
                                           description="actas: sessions of this actor")] = None,
    impersonated: Annotated[bool | None, Query(description="actas: only (or no) "
                                               "impersonation sessions")] = None,
    created_after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    created_before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    before_id: Annotated[str | None, Query(max_length=40, description="actas: keyset "
                                           "cursor, the last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 10,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    paginated: bool = False,
) -> list[SessionObject] | SessionPage:
    instance = instance_of(request)
    q = sessions.SessionQuery(user_id=user_id, client_id=client_id, status=status,
                              actor_sub=actor_sub, impersonated=impersonated,
                              created_after=created_after, created_before=created_before,
                              before_id=before_id, limit=limit, offset=offset)
    now = instance.now_ms()
    with instance.transaction() as db:
        data = [session_object(s, now) for s in sessions.list_sessions(db, q, now)]
        if paginated:
            return SessionPage(data=data, total_count=sessions.count_sessions(db, q, now))
        return data


@router.get("/v1/sessions/{session_id}", response_model=SessionObject, summary="Get a session")
def get_session(request: Request, session_id: str) -> SessionObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        return session_object(sessions.get(db, session_id), instance.now_ms())


@router.post("/v1/sessions/{session_id}/revoke", response_model=SessionObject,
             summary="Revoke a session; no new token is minted for it afterwards")
def revoke_session(request: Request, session_id: str) -> SessionObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        row = sessions.end(db, instance, sessions.get(db, session_id, for_update=True),
                           status="revoked", origin=request_origin(request), by="backend_api")
        return session_object(row, instance.now_ms())


@router.post("/v1/sessions/{session_id}/tokens", response_model=TokenObject,
             summary="Mint a session token for an active session")
def create_session_token(request: Request, session_id: str) -> TokenObject:
    instance = instance_of(request)
    try:
        # Signed under the session's row lock, like an impersonation's refresh: a
        # revocation that has answered is never followed by a token (not a hot path).
        with instance.transaction() as db:
            row = sessions.get(db, session_id, for_update=True)
            sessions.require_active(row, instance.now_ms())
            users.require_not_banned(users.get(db, row.user_id))
            ending.require_still_allowed(db, instance, row)
            signer = instance.keys.current_signer(db, instance.now_ms())
            return TokenObject(jwt=session_tokens.mint(instance, row, signer, azp=None).jwt)
    except ImpersonationRefused as refusal:
        raise ending.end_refused(instance, session_id=session_id, refusal=refusal,
                                 origin=request_origin(request)) from refusal
