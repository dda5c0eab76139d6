"""What an impersonated user sees about it: who acted as them, when, why, how long, and
whether they could change anything (the mode)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas.server import sessions
from actas.server.db.schema import ActorToken, ImpersonationActivity, User
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import activity


@dataclass(frozen=True)
class Access:
    session_id: str
    actor: dict[str, Any]
    reason: str | None
    started_at: int
    ended_at: int | None  # None while it lasts
    status: str
    mode: str  # read_only | full
    # What the impersonator did in the application, as its SDK reported it (the newest
    # entries, refused ones first to be kept) and how many entries there are in all.
    activity: tuple[ImpersonationActivity, ...] = ()
    activity_total: int = 0


def of_user(db: Db, user_id: str, now_ms: int, *, limit: int = 100) -> list[Access]:
    rows = db.execute(
        select(SessionRow, ActorToken.reason)
        .outerjoin(ActorToken, ActorToken.id == SessionRow.actor_token_id)
        .where(SessionRow.user_id == user_id, SessionRow.actor_sub.is_not(None))
        .order_by(SessionRow.id.desc()).limit(limit)
    ).all()
    done = activity.of_sessions(db, [session.id for session, _reason in rows])
    history = []
    for session, reason in rows:
        status = sessions.effective_status(session, now_ms)
        ended_at = session.ended_at
        if ended_at is None and status != "active":
            ended_at = min(session.expire_at, session.abandon_at)
        history.append(Access(session_id=session.id, actor=session.actor or {}, reason=reason,
                              started_at=session.created_at, ended_at=ended_at, status=status,
                              mode=session.impersonation_mode or "read_only",
                              activity=done[session.id].entries if session.id in done else (),
                              activity_total=done[session.id].total if session.id in done else 0))
    return history


NOTICES_MAX = 20


def unseen(db: Db, user: User, now_ms: int) -> list[Access]:
    """Impersonations of the user that started after they last dismissed the notice of
    them (all of them, if they never did), newest first; at most NOTICES_MAX."""
    since = user.impersonations_seen_at or 0
    return [a for a in of_user(db, user.id, now_ms, limit=NOTICES_MAX)
            if a.started_at > since]
