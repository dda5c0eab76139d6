"""``/v1/me``: the signed-in user's own account, through their active session.

The sensitive operations here (password, email, deleting the account)
refuse an impersonated session: an impersonator sees what the user sees but
cannot take the account over. Other changes (``PATCH /v1/me``: the profile
and unsafe metadata) are open to a full impersonation and refused to a
read-only one (``impersonation_read_only``). Each refusal is audited, and a
change made by an impersonator names them in the audit log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ImpersonatedSessionForbidden,
    ImpersonationRefused,
    InvalidCredentials,
    SignedOut,
)
from actas.server import rate_limits, sessions, users
from actas.server.audit import Record
from actas.server.db.schema import Session as SessionRow
from actas.server.db.schema import User
from actas.server.frontend_api import read_only
from actas.server.frontend_api.responses import Envelope, current_client
from actas.server.http.bodies import RequestBody
from actas.server.http.origins import instance_of, request_origin, trusted_origin
from actas.server.impersonation import access_history, ending
from actas.server.instance import Instance
from actas.server.resources import DeletedObject, FrontendUserObject, frontend_user_object

router = APIRouter(tags=["Frontend API"])


def active_session(db: Db, instance: Instance, request: Request) -> tuple[SessionRow, User]:
    client = current_client(db, instance, request)
    session = (db.get(SessionRow, client.last_active_session_id)
               if client and client.last_active_session_id else None)
    if session is None or sessions.effective_status(session, instance.now_ms()) != "active":
        raise SignedOut("This browser has no active session; sign in first.")
    return session, users.get(db, session.user_id)


def forbid_impersonated(instance: Instance, request: Request, session: SessionRow,
                         action: str) -> None:
    if session.actor is None:
        return
    instance.record_alone(Record(
        type="impersonation.sensitive_action_refused", actor_sub=session.actor_sub,
        user_id=session.user_id, session_id=session.id, actor_token_id=session.actor_token_id,
        origin=request_origin(request), data={"action": action, "actor": session.actor}))
    raise ImpersonatedSessionForbidden(
        f"Can't {action} while impersonating this user.", action=action)


@contextlib.contextmanager
def own_account(instance: Instance, request: Request, action: str
                ) -> Iterator[tuple[Db, SessionRow, User]]:
    """One transaction on the signed-in user's own account, refused (and audited) when
    this browser's active session is an impersonation. The check and the change read
    the active session once, in the same transaction: a browser cannot switch its
    active session between them (ending another session, say) to act for the user."""
    with instance.transaction() as db:
        session, user = active_session(db, instance, request)
        if session.actor is None:
            yield db, session, user
            return
        refused = session
    forbid_impersonated(instance, request, refused, action)


class UpdateMeBody(RequestBody):
    first_name: Annotated[str, Field(max_length=256)] | None = None
    last_name: Annotated[str, Field(max_length=256)] | None = None
    unsafe_metadata: dict[str, Any] | None = None


@router.patch("/v1/me", response_model=FrontendUserObject,
              summary="Update my profile (names, unsafe metadata); refused while a read-only "
              "impersonation")
def update_me(request: Request, body: UpdateMeBody,
              _origin: str = Depends(trusted_origin)) -> FrontendUserObject:
    instance = instance_of(request)
    with instance.transaction() as db:
        session, _user = active_session(db, instance, request)
    read_only.require_writable(instance, request, session, "update the profile")
    changes = body.model_dump(exclude_unset=True)
    try:
        with instance.transaction() as db:
            # Locked and checked again: a session ended, or the user banned, meanwhile;
            # for an impersonation, the policy too (its operator may have lost the right
            # to a full one), as at every token refresh.
            current = sessions.get(db, session.id, for_update=True)
            sessions.require_active(current, instance.now_ms())
            ending.require_still_allowed(db, instance, current)
            user = users.require_not_banned(users.get(db, session.user_id))
            users.update_user(db, instance, user, changes)
            instance.record(db, Record(
                type="user.updated", actor_sub=current.actor_sub, user_id=user.id,
                session_id=current.id, actor_token_id=current.actor_token_id,
                origin=request_origin(request),
                data={"fields": sorted(changes), "via": "frontend_api",
                      **({"actor": current.actor} if current.actor else {})}))
            return frontend_user_object(user)
    except ImpersonationRefused as refusal:
        raise ending.end_refused(instance, session_id=session.id, refusal=refusal,
                                 origin=request_origin(request)) from refusal


class ActivityObject(BaseModel):
    method: str
    route: str  # the route template, never the raw path
    status: int
    refused: bool  # refused by the application's SDK: a write in a read-only impersonation
    occurred_at: int


class AccessObject(BaseModel):
    object: Literal["access"] = "access"
    session_id: str
    actor: dict[str, Any]
    reason: str | None
    started_at: int
    ended_at: int | None
    status: str
    duration_ms: int | None
    mode: str  # read_only | full: whether the impersonator could change anything
    activity: list[ActivityObject]  # what they did in the application, if it reports it
    activity_total: int  # entries in all (activity holds the newest, refused ones kept)


@router.get("/v1/me/access_history", response_model=Envelope[list[AccessObject]],
            summary="Who impersonated me: when, why, for how long")
def get_access_history(request: Request) -> Envelope[list[AccessObject]]:
    instance = instance_of(request)
    with instance.transaction() as db:
        _session, user = active_session(db, instance, request)
        entries = access_history.of_user(db, user.id, instance.now_ms())
    return Envelope(response=[_access_object(e) for e in entries], client=None)


def _access_object(e: access_history.Access) -> AccessObject:
    return AccessObject(
        session_id=e.session_id, actor=e.actor, reason=e.reason, started_at=e.started_at,
        ended_at=e.ended_at, status=e.status,
        duration_ms=e.ended_at - e.started_at if e.ended_at else None, mode=e.mode,
        activity=[ActivityObject(method=a.method, route=a.route, status=a.status,
                                 refused=a.refused, occurred_at=a.occurred_at)
                  for a in e.activity], activity_total=e.activity_total)


@router.get("/v1/me/impersonation_notices", response_model=Envelope[list[AccessObject]],
            summary="Impersonations of my account I have not been shown yet (none to an "
            "impersonator)")
def get_impersonation_notices(request: Request) -> Envelope[list[AccessObject]]:
    instance = instance_of(request)
    with instance.transaction() as db:
        session, user = active_session(db, instance, request)
        if session.actor is not None:  # news for the user, not for whoever acts as them
            return Envelope(response=[], client=None)
        entries = access_history.unseen(db, user, instance.now_ms())
    return Envelope(response=[_access_object(e) for e in entries], client=None)


class SeenObject(BaseModel):
    object: Literal["impersonation_notices_seen"] = "impersonation_notices_seen"
    seen_at: int


@router.post("/v1/me/impersonation_notices/seen", response_model=Envelope[SeenObject],
             summary="I have seen the notice of impersonations of my account (not while "
             "impersonated)")
def see_impersonation_notices(request: Request,
                              _origin: str = Depends(trusted_origin)) -> Envelope[SeenObject]:
    instance = instance_of(request)
    with own_account(instance, request, "dismiss the impersonation notice") as (_db, _s, user):
        user.impersonations_seen_at = instance.now_ms()
        return Envelope(response=SeenObject(seen_at=user.impersonations_seen_at), client=None)


REAUTHENTICATION_FAILED = "user.reauthentication_failed"


def _reauthenticate(request: Request, *, action: str, password: str
                    ) -> tuple[Instance, SessionRow, str | None]:
    """Refuse an impersonated session (audited), then check the user's own password.

    The password is checked outside any transaction (argon2 must not hold the
    database's write lock), and a wrong one counts against the account's
    sign-in budget and is audited: a stolen cookie is no unlimited password
    oracle. Returns the session and the password hash that was checked.
    """
    instance = instance_of(request)
    origin = request_origin(request)
    with instance.transaction() as db:
        session, user = active_session(db, instance, request)
    forbid_impersonated(instance, request, session, action)
    with instance.transaction() as db:
        charge = rate_limits.USER_SIGN_IN.spend(db, account=user.id, origin=origin,
                                                now_ms=instance.now_ms())
    try:
        instance.passwords.verify(user.password_hash, password)
    except InvalidCredentials:
        instance.record_alone(Record(type=REAUTHENTICATION_FAILED, user_id=user.id,
                                     session_id=session.id, origin=origin,
                                     data={"action": action}))
        raise
    with instance.transaction() as db:
        rate_limits.refund(db, charge)
    return instance, session, user.password_hash


def _current_user(db: Db, instance: Instance, session: SessionRow, checked_hash: str | None
                  ) -> User:
    """The user again, after the password check ran outside any transaction: the session
    must still be active, the user not banned, the password the one that was checked."""
    sessions.require_active(sessions.get(db, session.id, for_update=True), instance.now_ms())
    user = users.require_not_banned(users.get(db, session.user_id))
    if user.password_hash != checked_hash:
        raise InvalidCredentials()  # the password changed while it was being checked
    return user


class ChangePasswordBody(RequestBody):
    current_password: Annotated[str, Field(max_length=1024)]
    new_password: Annotated[str, Field(max_length=1024)]


@router.post("/v1/me/change_password", response_model=FrontendUserObject,
             summary="Change my password (ends my other sessions; refused while impersonated)")
def change_password(request: Request, body: ChangePasswordBody,
                    _origin: str = Depends(trusted_origin)) -> FrontendUserObject:
    users.check_password(body.new_password)
    instance, session, checked = _reauthenticate(request, action="change the password",
                                                 password=body.current_password)
    new_hash = instance.passwords.hash(body.new_password)  # outside the transaction too
    origin = request_origin(request)
    with instance.transaction() as db:
        user = _current_user(db, instance, session, checked)
        user.password_hash, user.updated_at = new_hash, instance.now_ms()
        # Whoever else holds a session (a stolen cookie, a forgotten laptop) is out.
        ended = sessions.revoke_of_user(
            db, instance, user.id, origin=origin, by="password_change",
            keep=lambda row: row.id == session.id or row.actor is not None)
        instance.record(db, Record(type="user.password_changed", user_id=user.id,
                                   session_id=session.id, origin=origin,
                                   data={"other_sessions_ended": len(ended)}))
        return frontend_user_object(user)


class ChangeEmailBody(RequestBody):
    email_address: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)]


@router.post("/v1/me/change_email", response_model=FrontendUserObject,
             summary="Replace my primary email address (refused while impersonated)")
def change_email(request: Request, body: ChangeEmailBody,
                 _origin: str = Depends(trusted_origin)) -> FrontendUserObject:
    instance, session, checked = _reauthenticate(request, action="change the email address",
                                                 password=body.password)
    with instance.transaction() as db:
        user = _current_user(db, instance, session, checked)
        users.replace_primary_email(db, instance, user, body.email_address)
        instance.record(db, Record(type="user.email_changed", user_id=user.id,
                                   session_id=session.id, origin=request_origin(request)))
        return frontend_user_object(user)


class DeleteAccountBody(RequestBody):
    password: Annotated[str, Field(max_length=1024)]


@router.delete("/v1/me", response_model=DeletedObject,
               summary="Delete my account (needs my password; refused while impersonated)")
def delete_me(request: Request, body: DeleteAccountBody,
              _origin: str = Depends(trusted_origin)) -> DeletedObject:
    # Re-authentication: a session alone (a borrowed laptop, a stolen cookie)
    # must not be enough to destroy the account.
    instance, session, checked = _reauthenticate(request, action="delete the account",
                                                 password=body.password)
    with instance.transaction() as db:
        user = _current_user(db, instance, session, checked)
        users.delete_user(db, instance, user, origin=request_origin(request), by="user",
                          session_id=session.id)
    return DeletedObject(id=session.user_id, object="user")
