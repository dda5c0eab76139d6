"""``/v1/me``: the signed-in user's own account, through their active session.

The sensitive operations here (password, email, deleting the account)
refuse an impersonated session: an impersonator sees what the user sees but
cannot take the account over. Each refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session as Db

from actas._errors import ImpersonatedSessionForbidden, SignedOut
from actas.server import sessions, users
from actas.server.audit import Record
from actas.server.db.schema import Session as SessionRow
from actas.server.db.schema import User
from actas.server.frontend_api.responses import Envelope, current_client
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin
from actas.server.impersonation import access_history
from actas.server.instance import Instance
from actas.server.resources import DeletedObject, FrontendUserObject, frontend_user_object

router = APIRouter(tags=["Frontend API"])


def _active_session(db: Db, instance: Instance, request: Request) -> tuple[SessionRow, User]:
    client = current_client(db, instance, request)
    session = (db.get(SessionRow, client.last_active_session_id)
               if client and client.last_active_session_id else None)
    if session is None or sessions.effective_status(session, instance.now_ms()) != "active":
        raise SignedOut("This browser has no active session; sign in first.")
    return session, users.get(db, session.user_id)


def _forbid_impersonated(instance: Instance, request: Request, session: SessionRow,
                         action: str) -> None:
    if session.actor is None:
        return
    instance.record_alone(Record(
        type="impersonation.sensitive_action_refused", actor_sub=session.actor_sub,
        user_id=session.user_id, session_id=session.id, actor_token_id=session.actor_token_id,
        origin=request_origin(request), data={"action": action, "actor": session.actor}))
    raise ImpersonatedSessionForbidden(
        f"Can't {action} while impersonating this user.", action=action)


class AccessObject(BaseModel):
    object: Literal["access"] = "access"
    session_id: str
    actor: dict[str, Any]
    reason: str | None
    started_at: int
    ended_at: int | None
    status: str
    duration_ms: int | None


@router.get("/v1/me/access_history", response_model=Envelope[list[AccessObject]],
            summary="Who impersonated me: when, why, for how long")
def get_access_history(request: Request) -> Envelope[list[AccessObject]]:
    instance = instance_of(request)
    with instance.transaction() as db:
        _session, user = _active_session(db, instance, request)
        entries = access_history.of_user(db, user.id, instance.now_ms())
    return Envelope(response=[
        AccessObject(session_id=e.session_id, actor=e.actor, reason=e.reason,
                     started_at=e.started_at, ended_at=e.ended_at, status=e.status,
                     duration_ms=e.ended_at - e.started_at if e.ended_at else None)
        for e in entries], client=None)


def _change_own_account(request: Request, *, action: str, event: str, password: str,
                        change: Callable[[Db, Instance, User], object]) -> FrontendUserObject:
    """The shape of every sensitive change: refuse an impersonated session (audited),
    re-check the user's password, apply ``change``, record ``event``."""
    instance = instance_of(request)
    with instance.transaction() as db:
        session, _user = _active_session(db, instance, request)
    _forbid_impersonated(instance, request, session, action)
    with instance.transaction() as db:
        user = users.get(db, session.user_id)
        instance.passwords.verify(user.password_hash, password)
        change(db, instance, user)
        instance.record(db, Record(type=event, user_id=user.id, session_id=session.id,
                                   origin=request_origin(request)))
        return frontend_user_object(user)


class ChangePasswordBody(RequestBody):
    current_password: Annotated[str, Field(max_length=1024)]
    new_password: Annotated[str, Field(max_length=1024)]


@router.post("/v1/me/change_password", response_model=FrontendUserObject,
             summary="Change my password (refused while impersonated)")
def change_password(request: Request, body: ChangePasswordBody,
                    _origin: str = Depends(trusted_origin)) -> FrontendUserObject:
    return _change_own_account(
        request, action="change the password", event="user.password_changed",
        password=body.current_password,
        change=lambda db, instance, user: users.update_user(
            db, instance, user, {"password": body.new_password}))


class ChangeEmailBody(RequestBody):
    email_address: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)]


@router.post("/v1/me/change_email", response_model=FrontendUserObject,
             summary="Replace my primary email address (refused while impersonated)")
def change_email(request: Request, body: ChangeEmailBody,
                 _origin: str = Depends(trusted_origin)) -> FrontendUserObject:
    return _change_own_account(
        request, action="change the email address", event="user.email_changed",
        password=body.password,
        change=lambda db, instance, user: users.replace_primary_email(
            db, instance, user, body.email_address))


class DeleteAccountBody(RequestBody):
    password: Annotated[str, Field(max_length=1024)]


@router.delete("/v1/me", response_model=DeletedObject,
               summary="Delete my account (needs my password; refused while impersonated)")
def delete_me(request: Request, body: DeleteAccountBody,
              _origin: str = Depends(trusted_origin)) -> DeletedObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        session, _user = _active_session(db, instance, request)
    _forbid_impersonated(instance, request, session, "delete the account")
    with instance.transaction() as db:
        user = users.get(db, session.user_id)
        # Re-authentication: a session alone (a borrowed laptop, a stolen cookie)
        # must not be enough to destroy the account.
        instance.passwords.verify(user.password_hash, body.password)
        users.delete_user(db, instance, user, origin=request_origin(request), by="user",
                          session_id=session.id)
    return DeletedObject(id=session.user_id, object="user")
