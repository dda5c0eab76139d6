"""The current client: read it, mint session tokens, end sessions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, ImpersonatedSessionForbidden
from actas.server import clients, ids, internal_tokens, sessions
from actas.server.audit import Record
from actas.server.db.schema import Client, MachineClient, Operator
from actas.server.db.schema import Session as SessionRow
from actas.server.frontend_api import token_route
from actas.server.frontend_api.responses import Envelope, current_client, render_client
from actas.server.http import cookies
from actas.server.http.bodies import RequestBody
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
    """Served by ``token_route.serve`` ahead of the whole app (the hot path); this
    endpoint documents it and answers the same way."""
    return await token_route.respond(request, session_id, origin)


MAY_ACT_LIFETIME_S = 300


class MayActBody(RequestBody):
    actor: str = Field(min_length=1, max_length=64,
                       description="the operator (op_…) or admin tool (mc_…) the user "
                       "authorises to act for them")


@router.post("/v1/client/sessions/{session_id}/tokens/may_act", response_model=TokenObject,
             summary="A token whose may_act (RFC 8693 §4.4) names who may act for the user")
def create_may_act_token(request: Request, session_id: str, body: MayActBody,
                         _origin: str = Depends(trusted_origin)) -> TokenObject:
    """The user, signed in here, names an operator or an admin tool that may act for them:
    the token is what that admin tool then exchanges at ``POST /oauth/token``
    (``subject_token_type=urn:ietf:params:oauth:token-type:jwt``), once, within five
    minutes, while this session lives. Not a session token: only actas reads it
    (``internal_tokens``), so no application can take it for the user. The impersonation
    policy, consent and approvals still apply to the exchange. Never from an
    impersonated session."""
    instance = instance_of(request)
    now = instance.now_ms()
    with instance.transaction() as db:
        _client, row = _own_session(db, instance, request, session_id)
        sessions.require_active(row, now)
        if row.actor is not None:
            raise ImpersonatedSessionForbidden(
                "An impersonator cannot authorise anyone to act for the user.")
        actor = body.actor.strip()
        operator = db.get(Operator, actor) if actor.startswith("op_") else None
        tool = db.get(MachineClient, actor) if actor.startswith("mc_") else None
        if (operator is None or operator.disabled) and (tool is None or tool.revoked_at):
            raise FormParamInvalid("actor names no operator or admin tool of this instance.",
                                   param_name="actor")
        token = internal_tokens.sign(instance, internal_tokens.MAY_ACT, {
            "sub": row.user_id, "sid": row.id, "may_act": {"sub": actor},
            "iat": now // 1000, "exp": now // 1000 + MAY_ACT_LIFETIME_S,
            "jti": ids.new_id(ids.TOKEN, now)})
        instance.record(db, Record(type="session.may_act_issued", user_id=row.user_id,
                                   session_id=row.id, origin=request_origin(request),
                                   data={"may_act": {"sub": actor}}))
    return TokenObject(jwt=token)


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
