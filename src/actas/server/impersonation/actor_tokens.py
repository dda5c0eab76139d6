"""Actor tokens: single-use, short-lived tickets to sign in as a user on someone's behalf.

The ticket (``tkt_…``) is returned once, at creation; only its SHA-256 is
stored. Creating one goes through the policy, and every outcome, refusals
included, is written to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ActorTokenNotPending,
    FormParamInvalid,
    ImpersonationApprovalRequired,
    ImpersonationRefused,
    ResourceNotFound,
)
from actas.server import credentials, ids
from actas.server.audit import Record, RequestOrigin
from actas.server.credentials import Secret
from actas.server.db.schema import ActorToken
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import approvals, consent, policy
from actas.server.impersonation.policy import Requester
from actas.server.instance import Instance
from actas.server.roles import FULL, MODES, READ_ONLY, Mode

ACTOR_TOKEN = "act"  # noqa: S105  (an id prefix)
TICKET_PREFIX = "tkt_"  # a purpose prefix, not a secret
DEFAULT_EXPIRES_IN = 3600
DEFAULT_SESSION_MAX_DURATION = 1800


@dataclass(frozen=True)
class NewActorToken:
    row: ActorToken
    ticket: Secret
    url: str


def accept_url(instance: Instance, ticket: Secret) -> str:
    query = urlencode({"ticket": ticket.reveal()})
    return f"{instance.settings.frontend_api_url}/v1/tickets/accept?{query}"


def _check_durations(instance: Instance, expires_in: int, session_max_duration: int) -> None:
    settings = instance.settings
    if not 1 <= expires_in <= settings.actor_token_max_expires_in:
        raise FormParamInvalid(
            f"expires_in_seconds must be between 1 and {settings.actor_token_max_expires_in} "
            "(ACTAS_ACTOR_TOKEN_MAX_EXPIRES_IN).",
            code="form_param_value_invalid", param_name="expires_in_seconds")
    if not 1 <= session_max_duration <= settings.impersonation_max_duration:
        raise FormParamInvalid(
            "session_max_duration_in_seconds must be between 1 and "
            f"{settings.impersonation_max_duration} (ACTAS_IMPERSONATION_MAX_DURATION).",
            code="form_param_value_invalid", param_name="session_max_duration_in_seconds")


ACTOR_MAX_BYTES = 2048  # it rides in every session JWT (and so in a cookie)


def check_actor(actor: dict[str, Any]) -> str:
    if len(json.dumps(actor)) > ACTOR_MAX_BYTES:
        raise FormParamInvalid(f"actor must be at most {ACTOR_MAX_BYTES} bytes of JSON: it is "
                               "copied into every session token.",
                               code="form_param_value_invalid", param_name="actor")
    sub = actor.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 256:
        raise FormParamInvalid("actor.sub is required: who is impersonating (a string of at "
                               "most 256 characters).", code="form_param_missing",
                               param_name="actor.sub")
    return sub


def create(instance: Instance, *, requester: Requester, user_id: str, actor: dict[str, Any],
           reason: str | None, origin: RequestOrigin,
           expires_in: int = DEFAULT_EXPIRES_IN,
           session_max_duration: int = DEFAULT_SESSION_MAX_DURATION,
           mode: Mode | None = None, override: bool = False,
           step_up: dict[str, Any] | None = None) -> NewActorToken:
    """Check the policy and the user's say (``consent.require``; ``override`` asks to
    pass a user's "never" or missing grant, for who holds ``impersonate:override``) and
    issue a ticket for an impersonation in ``mode``; a refusal is audited and re-raised.
    Without a mode, an operator's is read-only and the Backend API's full (as Clerk's
    actor tokens are)."""
    if mode is None:
        mode = READ_ONLY if requester.operator is not None else FULL
    if mode not in MODES:
        raise FormParamInvalid(f"mode must be one of {', '.join(MODES)}.",
                               code="form_param_value_invalid", param_name="mode")
    actor_sub = check_actor(actor)
    _check_durations(instance, expires_in, session_max_duration)
    reason = policy.normalize_reason(reason)
    sent_for_approval: tuple[str, list[str]] | None = None
    try:
        with instance.transaction() as db:
            user = policy.check(db, instance.settings, requester=requester, actor=actor,
                                user_id=user_id, reason=reason, mode=mode)
            said = consent.require(db, instance.settings, user=user, actor_sub=actor_sub,
                                   mode=mode, permissions=requester.permissions,
                                   override=override, reason=reason,
                                   now_ms=instance.now_ms())
            if said.grant is not None:  # no longer at a time than the user was asked for
                session_max_duration = min(session_max_duration,
                                           said.grant.session_max_duration)
            approval = None
            if requester.operator is not None:
                why = approvals.required(
                    instance.settings, mode=mode, session_max_duration=session_max_duration,
                    protected=policy.is_protected(db, user, instance.settings),
                    override=said.basis == consent.OVERRIDE)
                if why:
                    overriding = said.basis == consent.OVERRIDE
                    approval = approvals.usable(
                        db, operator_id=requester.operator.id, user_id=user_id, mode=mode,
                        session_max_duration=session_max_duration, now_ms=instance.now_ms(),
                        override=overriding)
                    if approval is None:
                        asked = approvals.ask(
                            db, instance, operator=requester.operator, user_id=user_id,
                            reason=reason, mode=mode, session_max_duration=session_max_duration,
                            why=why, override=overriding, origin=origin)
                        sent_for_approval = (asked.id, why)
            if sent_for_approval is None:
                issued = _issue(db, instance, user_id=user_id, actor=actor, actor_sub=actor_sub,
                                operator_id=requester.operator.id if requester.operator
                                else None, reason=reason, origin=origin,
                                expires_in=expires_in,
                                session_max_duration=session_max_duration, mode=mode,
                                said=said, approval_id=approval.id if approval else None,
                                step_up=step_up)
                if approval is not None:
                    approvals.use(db, instance, approval, actor_token_id=issued.row.id)
                return issued
    except ImpersonationRefused as refusal:
        instance.record_alone(Record(
            type="impersonation.refused", actor_sub=actor_sub, user_id=user_id, reason=reason,
            origin=origin, data={"code": refusal.code, "actor": actor, "mode": mode,
                                 "requested_by": requester.kind, "override": override,
                                 "operator_id": requester.operator.id
                                 if requester.operator else None}))
        raise
    approval_id, why = sent_for_approval
    raise ImpersonationApprovalRequired(approval_id=approval_id, why=why)


def _issue(db: Db, instance: Instance, *, user_id: str, actor: dict[str, Any], actor_sub: str,
           operator_id: str | None, reason: str | None, origin: RequestOrigin, expires_in: int,
           session_max_duration: int, mode: Mode,
           said: consent.Consent, approval_id: str | None = None,
           step_up: dict[str, Any] | None = None) -> NewActorToken:
    now = instance.now_ms()
    ticket = credentials.generate(TICKET_PREFIX)
    token_id = ids.new_id(ACTOR_TOKEN, now)
    row = ActorToken(
        id=token_id, token_digest=credentials.digest(ticket.reveal()), status="pending",
        user_id=user_id, actor=actor, actor_sub=actor_sub, operator_id=operator_id, reason=reason,
        mode=mode, consent=said.basis,
        access_request_id=said.grant.id if said.grant is not None else None,
        approval_id=approval_id,
        expires_at=now + expires_in * 1000, session_max_duration=session_max_duration,
        session_id=None, accepted_at=None, revoked_at=None, created_at=now, updated_at=now,
    )
    db.add(row)
    db.flush()
    instance.record(db, Record(
        type="actor_token.created", actor_sub=actor_sub, user_id=user_id,
        actor_token_id=token_id, reason=reason, origin=origin,
        data={"actor": actor, "mode": mode, "expires_at": row.expires_at,
              "session_max_duration_in_seconds": session_max_duration,
              "consent": said.basis, "access_request_id": row.access_request_id,
              "approval_id": approval_id,
              # The operator's last second-factor check (which factor, when), if any.
              **({"second_factor": step_up} if step_up else {})}))
    return NewActorToken(row=row, ticket=ticket, url=accept_url(instance, ticket))


def get(db: Db, token_id: str, *, for_update: bool = False) -> ActorToken:
    stmt = select(ActorToken).where(ActorToken.id == token_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = db.scalar(stmt)
    if row is None:
        raise ResourceNotFound(f"No actor token has the id {token_id!r}.",
                               param_name="actor_token_id")
    return row


def revoke(db: Db, instance: Instance, token_id: str, origin: RequestOrigin) -> ActorToken:
    row = get(db, token_id, for_update=True)
    if row.status != "pending":
        raise ActorTokenNotPending(
            f"This actor token is {row.status}; only a pending one can be revoked."
            + (" End its session instead (POST /v1/sessions/{id}/revoke)."
               if row.status == "accepted" else ""),
            status=row.status, session_id=row.session_id)
    mark_revoked(db, instance, row, origin=origin, reason=row.reason, data={"actor": row.actor})
    db.flush()
    return row


def mark_revoked(db: Db, instance: Instance, token: ActorToken, *, origin: RequestOrigin,
                 data: dict[str, Any], reason: str | None = None) -> None:
    """Revoke a pending ``token`` (locked by the caller) and write ``actor_token.revoked``
    with ``data`` saying by whom or why."""
    now = instance.now_ms()
    token.status, token.revoked_at, token.updated_at = "revoked", now, now
    instance.record(db, Record(type="actor_token.revoked", actor_sub=token.actor_sub,
                               user_id=token.user_id, actor_token_id=token.id, reason=reason,
                               origin=origin, data=data))


@dataclass(frozen=True)
class ActorTokenQuery:
    user_id: str | None = None
    actor_sub: str | None = None
    status: str | None = None
    limit: int = 10
    offset: int = 0


def list_tokens(db: Db, q: ActorTokenQuery) -> Sequence[ActorToken]:
    clauses: list[ColumnElement[bool]] = []
    if q.user_id is not None:
        clauses.append(ActorToken.user_id == q.user_id)
    if q.actor_sub is not None:
        clauses.append(ActorToken.actor_sub == q.actor_sub)
    if q.status is not None:
        clauses.append(ActorToken.status == q.status)
    return db.scalars(select(ActorToken).where(*clauses).order_by(ActorToken.id.desc())
                      .limit(q.limit).offset(q.offset)).all()


_REASONS = select(ActorToken.id, ActorToken.reason).where(
    ActorToken.id.in_(bindparam("ids", expanding=True)))  # built once


def reasons_of(db: Db, sessions: Iterable[SessionRow]) -> dict[str, str | None]:
    """The reason behind each impersonation session among ``sessions``, by session id."""
    by_token = {s.actor_token_id: s.id for s in sessions if s.actor_token_id}
    if not by_token:
        return {}
    rows = db.execute(_REASONS, {"ids": list(by_token)}).all()
    return {by_token[token_id]: reason for token_id, reason in rows}
