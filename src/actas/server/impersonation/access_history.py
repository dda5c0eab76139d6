"""What an impersonated user sees about it: who acted as them, when, why, how long."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas.server import sessions
from actas.server.db.schema import ActorToken
from actas.server.db.schema import Session as SessionRow


@dataclass(frozen=True)
class Access:
    session_id: str
    actor: dict[str, Any]
    reason: str | None
    started_at: int
    ended_at: int | None  # None while it lasts
    status: str


def of_user(db: Db, user_id: str, now_ms: int, *, limit: int = 100) -> list[Access]:
    rows = db.execute(
        select(SessionRow, ActorToken.reason)
        .outerjoin(ActorToken, ActorToken.id == SessionRow.actor_token_id)
        .where(SessionRow.user_id == user_id, SessionRow.actor_sub.is_not(None))
        .order_by(SessionRow.id.desc()).limit(limit)
    ).all()
    history = []
    for session, reason in rows:
        status = sessions.effective_status(session, now_ms)
        ended_at = session.ended_at
        if ended_at is None and status != "active":
            ended_at = min(session.expire_at, session.abandon_at)
        history.append(Access(session_id=session.id, actor=session.actor or {}, reason=reason,
                              started_at=session.created_at, ended_at=ended_at, status=status))
    return history
