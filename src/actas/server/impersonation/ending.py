"""Ending impersonations: from the impersonating browser, and the kill switch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import NotImpersonating
from actas.server import sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ActorToken, Client
from actas.server.db.schema import Session as SessionRow
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


@dataclass(frozen=True)
class KillSwitchResult:
    sessions_revoked: int
    actor_tokens_revoked: int


def end_all(db: Db, instance: Instance, *, actor_sub: str | None, origin: RequestOrigin,
            by: str) -> KillSwitchResult:
    """Revoke every live impersonation session and pending actor token (of one actor, if given)."""
    now = instance.now_ms()
    # Tokens first, sessions second: a redemption in flight holds its token's row
    # lock, so this waits for it to commit, and the sessions query that follows
    # (a later statement) then sees the session it created. The other order lets
    # a session created meanwhile escape the kill switch.
    pending = select(ActorToken).where(ActorToken.status == "pending")
    if actor_sub is not None:
        pending = pending.where(ActorToken.actor_sub == actor_sub)
    tokens = db.scalars(pending.with_for_update()).all()
    query = sessions.SessionQuery(status="active", impersonated=True, actor_sub=actor_sub,
                                  limit=1_000_000)
    live = sessions.list_sessions(db, query, now, for_update=True)
    for row in live:
        sessions.end(db, instance, row, status="revoked", origin=origin, by=by)
    for token in tokens:
        token.status, token.revoked_at, token.updated_at = "revoked", now, now
        instance.record(db, Record(type="actor_token.revoked", actor_sub=token.actor_sub,
                                   user_id=token.user_id, actor_token_id=token.id,
                                   origin=origin, data={"revoked_by": by}))
    instance.record(db, Record(type="impersonation.end_all", actor_sub=actor_sub, origin=origin,
                               data={"by": by, "sessions_revoked": len(live),
                                     "actor_tokens_revoked": len(tokens)}))
    db.flush()
    return KillSwitchResult(len(live), len(tokens))
