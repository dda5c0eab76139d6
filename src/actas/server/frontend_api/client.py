"""The current client: read it, mint session tokens, end sessions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session as Db

from actas.server import clients, sessions
from actas.server.db.schema import Client
from actas.server.db.schema import Session as SessionRow
from actas.server.frontend_api import token_route
from actas.server.frontend_api.responses import Envelope, current_client, render_client
from actas.server.http import cookies
from actas.server.http.origins import instance_of, request_origin, trusted_origin
from actas.server.impersonation import ending
from actas.server.instance import Instance
from actas.server.resources import ClientObject, SessionObject, TokenObject, session_object

router = APIRouter(tags=["Frontend API"])


@router.get("/v1/client", response_model=Envelope[ClientObject | None],
            summary="The browser's client and its active sessions")
def get_client(request: Request) -> Envelope[ClientObject | None]:
    instance = instance_of(request)
    with instance.transaction() as db:
        client = current_client(db, instance, request)
        rendered = render_client(db, client, instance.now_ms()) if client else None
        return Envelope(response=rendered, client=rendered)


def _own_session(db: Db, instance: Instance, request: Request,
                 session_id: str) -> tuple[Client, SessionRow]:
    client = current_client(db, instance, request)
    if client is None:
        raise clients.no_client()
    row = db.get(SessionRow, session_id, with_for_update=True)
    if row is None or row.client_id != client.id:
        raise clients.not_its_session(session_id)
    return client, row


@router.post("/v1/client/sessions/{session_id}/tokens", response_model=TokenObject,
             summary="Mint a fresh session token (also set as the __session cookie)")
async def create_token(request: Request, session_id: str,
                       origin: str = Depends(trusted_origin)) -> Response:
    """Served by ``token_route.TokenRoute`` ahead of this router (the hot path); this
    endpoint documents it and answers the same way."""
    return await token_route.respond(request, session_id, origin)


@router.post("/v1/client/sessions/{session_id}/end", response_model=Envelope[SessionObject],
             summary="Sign out of one session")
def end_session(request: Request, response: Response, session_id: str,
                _origin: str = Depends(trusted_origin)) -> Envelope[SessionObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        client, row = _own_session(db, instance, request, session_id)
        sessions.end(db, instance, row, status="ended", origin=request_origin(request))
        now = instance.now_ms()
        remaining = sessions.of_client(db, client, now)
        if client.last_active_session_id == row.id:
            client.last_active_session_id = remaining[0].id if remaining else None
            client.updated_at = now
        result: Envelope[SessionObject] = Envelope(response=session_object(row, now),
                          client=render_client(db, client, now))
    cookies.clear_session(response, instance.settings)
    return result


@router.post("/v1/client/sessions/{session_id}/stop_impersonating",
             response_model=Envelope[SessionObject],
             summary="End this impersonation and return to the session it replaced")
def stop_impersonating(request: Request, response: Response, session_id: str,
                       _origin: str = Depends(trusted_origin)) -> Envelope[SessionObject]:
    instance = instance_of(request)
    with instance.transaction() as db:
        client, row = _own_session(db, instance, request, session_id)
        ending.stop(db, instance, client=client, session=row, origin=request_origin(request))
        now = instance.now_ms()
        result: Envelope[SessionObject] = Envelope(response=session_object(row, now),
                                                   client=render_client(db, client, now))
    cookies.clear_session(response, instance.settings)
    return result
