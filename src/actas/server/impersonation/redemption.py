"""Redeeming an actor token: exactly once, even under concurrent redemption.

The token is consumed by one conditional ``UPDATE … WHERE status='pending'
AND expires_at > now``: the database lets exactly one transaction see a row
count of 1 (on PostgreSQL the losers wait for the winner's row lock and then
find the row no longer pending; on SQLite writers are serialised), so any
number of simultaneous redemptions, on any number of replicas, yield one
session. Everything after the claim happens in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ImpersonationNested,
    ImpersonationRefused,
    ImpersonationTargetBanned,
    ImpersonationTargetNotFound,
    TicketAlreadyUsed,
    TicketExpired,
    TicketInvalid,
    TicketRejected,
    TicketRevoked,
)
from actas.server import credentials, sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ActorToken, Client, User
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation.actor_tokens import TICKET_PREFIX
from actas.server.instance import Instance


def redeem(db: Db, instance: Instance, *, ticket: str, client: Client,
              origin: RequestOrigin) -> SessionRow:
    """Consume ``ticket`` and create the impersonation session on ``client``.

    Raises a ``TicketRejected`` leaf (unknown, expired, revoked, already used)
    or an ``ImpersonationRefused`` leaf (the target was banned or deleted
    since, or the client is already impersonating and nesting is off).
    """
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
        raise TicketInvalid()
    digest = credentials.digest(ticket)
    now = instance.now_ms()
    claimed = db.execute(
        update(ActorToken)
        .where(ActorToken.token_digest == digest, ActorToken.status == "pending",
               ActorToken.expires_at > now)
        .values(status="accepted", accepted_at=now, updated_at=now)
    )
    token = db.scalar(select(ActorToken).where(ActorToken.token_digest == digest))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise _why_not(token)
    assert token is not None
    user = db.get(User, token.user_id)
    if user is None:
        raise ImpersonationTargetNotFound(user_id=token.user_id)
    if user.banned:
        raise ImpersonationTargetBanned(user_id=user.id)
    actor = {**token.actor}
    actor.setdefault("sid", token.id)
    # RFC 8693's act.iss: who vouches for this actor, here the actas instance.
    actor.setdefault("iss", instance.settings.frontend_api_url)
    current = (db.get(SessionRow, client.last_active_session_id)
               if client.last_active_session_id else None)
    if current is not None and current.actor is not None \
            and sessions.effective_status(current, now) == "active":
        if not instance.settings.allow_nested_impersonation:
            raise ImpersonationNested(
                "This browser is already impersonating someone. Stop that first.",
                session_id=current.id)
        actor["act"] = current.actor  # RFC 8693 §4.1: the prior actor, nested
    session = sessions.create(db, instance, user=user, client=client, origin=origin,
                              impersonation=sessions.Impersonation(
                                  actor=actor, actor_token_id=token.id,
                                  max_duration=token.session_max_duration,
                                  reason=token.reason))
    token.session_id = session.id
    instance.record(db, Record(
        type="actor_token.accepted", actor_sub=token.actor_sub, user_id=user.id,
        session_id=session.id, actor_token_id=token.id, reason=token.reason, origin=origin,
        data={"actor": actor}))
    db.flush()
    return session


def _why_not(token: ActorToken | None) -> TicketRejected:
    if token is None:
        return TicketInvalid()
    if token.status == "accepted":
        return TicketAlreadyUsed(actor_token_id=token.id)
    if token.status == "revoked":
        return TicketRevoked(actor_token_id=token.id)
    return TicketExpired(actor_token_id=token.id)


def record_refusal(instance: Instance, *, ticket: str, error: TicketRejected
                   | ImpersonationRefused, origin: RequestOrigin) -> None:
    """Audit a refused redemption, in its own transaction (the refused one rolled back)."""
    with instance.transaction() as db:
        token = None
        if ticket.startswith(TICKET_PREFIX) and len(ticket) <= 128:
            token = db.scalar(select(ActorToken).where(
                ActorToken.token_digest == credentials.digest(ticket)))
        instance.record(db, Record(
            type="actor_token.redemption_refused",
            actor_sub=token.actor_sub if token else None,
            user_id=token.user_id if token else None,
            actor_token_id=token.id if token else None, origin=origin,
            data={"code": error.code}))
