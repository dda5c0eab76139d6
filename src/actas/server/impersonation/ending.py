"""Ending impersonations: from the impersonating browser, by the policy, and the kill switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import (
    ImpersonationNotPermitted,
    ImpersonationRefused,
    NotImpersonating,
    SessionNotActive,
)
from actas.server import operators, sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ActorToken, Client
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import actor_tokens, policy
from actas.server.instance import Instance


def stop(db: Db, instance: Instance, *, client: Client, session: SessionRow,
         origin: RequestOrigin) -> SessionRow | None:
    """End the impersonation ``session`` and return to the session it replaced, if alive.

    Returns the session now active on the client (``None`` if there is none).
    Nothing else on the client is signed out.
    """
    if session.actor is None:
        raise NotImpersonating(session_id=session.id)
    sessions.end(db, instance, session, status="ended", origin=origin,
                 by=session.actor_sub)
    now = instance.now_ms()
    back = db.get(SessionRow, session.return_to_session_id) \
        if session.return_to_session_id else None
    if back is None or back.client_id != client.id or \
            sessions.effective_status(back, now) != "active":
        remaining = sessions.of_client(db, client, now)
        back = remaining[0] if remaining else None
    client.last_active_session_id = back.id if back else None
    client.updated_at = now
    db.flush()
    return back


def require_still_allowed(db: Db, instance: Instance, session: SessionRow) -> None:
    """For an impersonation session, re-run the policy (``policy.recheck``); else nothing.

    Called at every token refresh: a session whose operator was disabled, or
    whose user was banned or made protected, mints no further token.
    """
    if session.actor is None:
        return
    token = db.get(ActorToken, session.actor_token_id) if session.actor_token_id else None
    if token is None:
        raise ImpersonationNotPermitted("The ticket behind this impersonation no longer exists.")
    policy.recheck(db, instance.settings, token, now_ms=instance.now_ms())


def end_refused(instance: Instance, *, session_id: str, refusal: ImpersonationRefused,
                origin: RequestOrigin) -> SessionNotActive:
    """End an impersonation the policy no longer allows; return the error to answer with.

    Its own transaction (the refused one rolled back), its own audit event
    (``impersonation.ended_by_policy``, with the refusal's code) besides the
    ``session.revoked`` that every revocation writes.
    """
    with instance.transaction() as db:
        row = sessions.get(db, session_id, for_update=True)
        if sessions.effective_status(row, instance.now_ms()) == "active":
            sessions.end(db, instance, row, status="revoked", origin=origin, by="policy")
            instance.record(db, Record(
                type="impersonation.ended_by_policy", actor_sub=row.actor_sub,
                user_id=row.user_id, session_id=row.id, actor_token_id=row.actor_token_id,
                origin=origin, data={"code": refusal.code, "message": refusal.message,
                                     "actor": row.actor}))
    return SessionNotActive(f"This impersonation was ended: {refusal.message}",
                            session_id=session_id, status="revoked", cause=refusal.code)


@dataclass(frozen=True)
class KillSwitchResult:
    sessions_revoked: int
    actor_tokens_revoked: int


def end_all(db: Db, instance: Instance, *, actor_sub: str | None, origin: RequestOrigin,
            by: str, event: str = "impersonation.end_all",
            client_id: str | None = None) -> KillSwitchResult:
    """Revoke every live impersonation session and pending actor token (of one actor, if
    given; or started through one admin tool, ``client_id``). Audited as ``event`` with
    whoever pressed it (``by``) as the event's actor and the actor whose impersonations
    ended in ``data.actor_sub``; the kill switch is audited even when it found nothing,
    other uses (an operator disabled or demoted, a tool revoked) only when they ended
    something."""
    now = instance.now_ms()
    # Tokens first, sessions second: a redemption in flight holds its token's row
    # lock, so this waits for it to commit, and the sessions query that follows
    # (a later statement) then sees the session it created. The other order lets
    # a session created meanwhile escape the kill switch.
    # With an actor given, every link of a nested chain counts, not just the
    # outermost one that is indexed: live impersonations are few, so they are
    # all read and matched here.
    pending = select(ActorToken).where(ActorToken.status == "pending")

    def ours(actor: dict[str, Any] | None) -> bool:
        return (actor_sub is None or actor_sub in policy.chain_subs(actor)) and \
            (client_id is None or client_id in policy.chain_values(actor, "client_id"))

    tokens = [t for t in db.scalars(pending.with_for_update()).all() if ours(t.actor)]
    query = sessions.SessionQuery(status="active", impersonated=True, limit=1_000_000)
    live = [s for s in sessions.list_sessions(db, query, now, for_update=True)
            if ours(s.actor)]
    for row in live:
        sessions.end(db, instance, row, status="revoked", origin=origin, by=by)
    for token in tokens:
        actor_tokens.mark_revoked(db, instance, token, origin=origin, data={"revoked_by": by})
    if event == "impersonation.end_all" or live or tokens:
        instance.record(db, Record(
            type=event, actor_sub=by if by.startswith(f"{operators.OPERATOR}_") else None,
            origin=origin, data={"by": by, "actor_sub": actor_sub,
                                 **({"client_id": client_id} if client_id else {}),
                                 "sessions_revoked": len(live),
                                 "actor_tokens_revoked": len(tokens)}))
    db.flush()
    return KillSwitchResult(len(live), len(tokens))
