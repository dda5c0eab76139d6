"""Access requests and grants: how a user who asks to be asked says yes.

An operator (or the Backend API on an actor's behalf) *requests* access to a
user whose preference is ``ask``: who, why, for how long, in which mode. The
user *grants* it for a window ("support may sign in as me during the next 24
hours"), *denies* it, or lets it *lapse*. A user may also *offer* access
unasked, to any operator. Granting issues no ticket: the operator then starts
the impersonation within the grant, as usual, and the grant's end caps it. The
user may *revoke* a grant at any time, which ends a live impersonation under
it at once. Every step is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import (
    AccessRequestNotNeeded,
    AccessRequestNotPending,
    FormParamInvalid,
    ImpersonationForbiddenByUser,
    ResourceNotFound,
)
from actas.server import ids, sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import AccessRequest, ActorToken, User
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import actor_tokens, consent, policy
from actas.server.impersonation.policy import Requester
from actas.server.instance import Instance
from actas.server.roles import MODES, READ_ONLY

ACCESS_REQUEST = "areq"
HOUR = 3600


def _check_seconds(instance: Instance, seconds: int, param: str) -> None:
    most = instance.settings.access_grant_max_duration
    if not 60 <= seconds <= most:
        raise FormParamInvalid(
            f"{param} must be between 60 and {most} seconds (ACTAS_ACCESS_GRANT_MAX_DURATION).",
            code="form_param_value_invalid", param_name=param)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise FormParamInvalid(f"mode must be one of {', '.join(MODES)}.",
                               code="form_param_value_invalid", param_name="mode")


def request(instance: Instance, *, requester: Requester, user_id: str, actor: dict[str, Any],
            reason: str | None, mode: str, session_max_duration: int,
            origin: RequestOrigin) -> AccessRequest:
    """Ask ``user_id`` for access. The same checks as impersonating (role, mode, reason,
    target) apply first; only a user whose preference is ``ask`` can be asked. Asking
    again while a request of the same actor waits returns that one."""
    _check_mode(mode)
    reason = policy.normalize_reason(reason)
    actor_sub = actor_tokens.check_actor(actor)  # a sub, and small: the user reads it
    with instance.transaction() as db:
        user = policy.check(db, instance.settings, requester=requester, actor=actor,
                            user_id=user_id, reason=reason, mode=mode)  # type: ignore[arg-type]
        preference = consent.preference_of(user, instance.settings)
        if preference == consent.ALLOWED:
            raise AccessRequestNotNeeded(preference=preference, user_id=user_id)
        if preference == consent.NEVER:
            raise ImpersonationForbiddenByUser(user_id=user_id, preference=preference)
        now = instance.now_ms()
        waiting = next((r for r in of_user(db, user_id)
                        if r.requested_by_sub == actor_sub
                        and consent.grant_status(r, now) == "pending"), None)
        if waiting is not None:
            return waiting
        seconds = min(session_max_duration, instance.settings.impersonation_max_duration)
        row = AccessRequest(
            id=ids.new_id(ACCESS_REQUEST, now), user_id=user_id, status="pending",
            requested_by_sub=actor_sub, requested_by=actor, reason=reason, mode=mode,
            session_max_duration=max(60, seconds),
            expires_at=now + instance.settings.access_request_expires_in * 1000,
            granted_until=None, decided_at=None, created_at=now, updated_at=now)
        db.add(row)
        db.flush()
        instance.record(db, Record(
            type="access_request.created", actor_sub=actor_sub, user_id=user_id,
            reason=reason, origin=origin,
            data={"access_request_id": row.id, "actor": actor, "mode": mode,
                  "expires_at": row.expires_at}))
        return row


def get(db: Db, request_id: str, *, user_id: str | None = None,
        for_update: bool = False) -> AccessRequest:
    stmt = select(AccessRequest).where(AccessRequest.id == request_id)
    if user_id is not None:  # a user sees only their own
        stmt = stmt.where(AccessRequest.user_id == user_id)
    row = db.scalar(stmt.with_for_update() if for_update else stmt)
    if row is None:
        raise ResourceNotFound("No such access request.", access_request_id=request_id)
    return row


def of_user(db: Db, user_id: str, *, limit: int = 50) -> Sequence[AccessRequest]:
    """A user's requests and grants, newest first."""
    return db.scalars(select(AccessRequest).where(AccessRequest.user_id == user_id)
                      .order_by(AccessRequest.id.desc()).limit(limit)).all()


def _require_pending(row: AccessRequest, now: int) -> None:
    status = consent.grant_status(row, now)
    if status != "pending":
        raise AccessRequestNotPending(status=status, access_request_id=row.id)


def grant(db: Db, instance: Instance, *, user: User, request_id: str, seconds: int,
          origin: RequestOrigin) -> AccessRequest:
    """The user says yes, for ``seconds`` from now."""
    _check_seconds(instance, seconds, "duration_in_seconds")
    row = get(db, request_id, user_id=user.id, for_update=True)
    now = instance.now_ms()
    _require_pending(row, now)
    row.status, row.granted_until, row.decided_at, row.updated_at = (
        "granted", now + seconds * 1000, now, now)
    db.flush()
    instance.record(db, Record(
        type="access_request.granted", user_id=user.id, reason=row.reason, origin=origin,
        data={"access_request_id": row.id, "requested_by": row.requested_by_sub,
              "mode": row.mode, "granted_until": row.granted_until}))
    return row


def deny(db: Db, instance: Instance, *, user: User, request_id: str,
         origin: RequestOrigin) -> AccessRequest:
    row = get(db, request_id, user_id=user.id, for_update=True)
    now = instance.now_ms()
    _require_pending(row, now)
    row.status, row.decided_at, row.updated_at = "denied", now, now
    db.flush()
    instance.record(db, Record(
        type="access_request.denied", user_id=user.id, reason=row.reason, origin=origin,
        data={"access_request_id": row.id, "requested_by": row.requested_by_sub}))
    return row


def offer(db: Db, instance: Instance, *, user: User, seconds: int, mode: str = READ_ONLY,
          note: str | None = None, origin: RequestOrigin) -> AccessRequest:
    """Access given unasked ("support may look at my account for 48 h"): a grant any
    operator may use, in ``mode`` at most."""
    _check_seconds(instance, seconds, "duration_in_seconds")
    _check_mode(mode)
    now = instance.now_ms()
    row = AccessRequest(
        id=ids.new_id(ACCESS_REQUEST, now), user_id=user.id, status="granted",
        requested_by_sub=None, requested_by=None, reason=policy.normalize_reason(note),
        mode=mode, session_max_duration=min(seconds, instance.settings.impersonation_max_duration),
        expires_at=now, granted_until=now + seconds * 1000, decided_at=now, created_at=now,
        updated_at=now)
    db.add(row)
    db.flush()
    instance.record(db, Record(
        type="access_request.granted", user_id=user.id, reason=row.reason, origin=origin,
        data={"access_request_id": row.id, "requested_by": None, "unasked": True,
              "mode": mode, "granted_until": row.granted_until}))
    return row


def revoke(db: Db, instance: Instance, *, user: User, request_id: str,
           origin: RequestOrigin) -> AccessRequest:
    """The user takes a grant back: it covers nothing more, and every live impersonation
    under it ends now (each audited)."""
    row = get(db, request_id, user_id=user.id, for_update=True)
    now = instance.now_ms()
    status = consent.grant_status(row, now)
    if status != "granted":
        raise AccessRequestNotPending(
            "Only a grant still in force can be revoked.", status=status,
            access_request_id=row.id)
    row.status, row.updated_at = "revoked", now
    db.flush()
    ended = end_impersonations_under(db, instance, row, origin=origin)
    instance.record(db, Record(
        type="access_request.revoked", user_id=user.id, origin=origin,
        data={"access_request_id": row.id, "requested_by": row.requested_by_sub,
              "ended_sessions": ended}))
    return row


def withdraw(db: Db, instance: Instance, *, request_id: str, by: str,
             origin: RequestOrigin) -> AccessRequest:
    """The asking side takes a request back, answered or not; a grant it got ends too."""
    row = get(db, request_id, for_update=True)
    now = instance.now_ms()
    status = consent.grant_status(row, now)
    if status not in ("pending", "granted"):
        raise AccessRequestNotPending(status=status, access_request_id=row.id)
    row.status, row.updated_at = "withdrawn", now
    db.flush()
    ended = end_impersonations_under(db, instance, row, origin=origin)
    instance.record(db, Record(
        type="access_request.withdrawn", actor_sub=by, user_id=row.user_id, origin=origin,
        data={"access_request_id": row.id, "ended_sessions": ended}))
    return row


def end_impersonations_under(db: Db, instance: Instance, grant: AccessRequest, *,
                             origin: RequestOrigin) -> list[str]:
    now = instance.now_ms()
    live = db.scalars(
        select(SessionRow).join(ActorToken, ActorToken.id == SessionRow.actor_token_id)
        .where(ActorToken.access_request_id == grant.id, SessionRow.status == "active")
        .with_for_update(of=SessionRow)).all()
    ended = []
    for row in live:
        if sessions.effective_status(row, now) == "active":
            sessions.end(db, instance, row, status="revoked", origin=origin,
                         by="consent_revoked")
            ended.append(row.id)
    return ended
