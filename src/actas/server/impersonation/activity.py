"""What impersonators did in the application: requests reported by its SDK
(``actas.ActivityReporter``), kept with the impersonation they belong to.

Only the method, the route template, the status, when, and whether the SDK
refused it as a read-only write are accepted: a route with a query string is
cut at the ``?``. An entry is kept only for a session that is an
impersonation, at a time within that session's life; the others are counted
as rejected. Entries are deleted after ``ACTAS_IMPERSONATION_ACTIVITY_RETENTION_DAYS``
(by the worker), and with their session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as Db

from actas.server import ids
from actas.server.db.schema import ImpersonationActivity
from actas.server.db.schema import Session as SessionRow
from actas.server.instance import Instance

ACTIVITY = "iact"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_ROUTE = 200
# How far an entry's time may be from its session's life (clocks of two machines).
SKEW_MS = 60_000
# Entries kept per impersonation at most; beyond, new ones are rejected (and counted).
MAX_PER_SESSION = 10_000


@dataclass(frozen=True)
class Reported:
    session_id: str
    method: str
    route: str
    status: int
    occurred_at: int
    refused: bool


def store(db: Db, instance: Instance, entries: Sequence[Reported]) -> tuple[int, int]:
    """Keep the entries that belong to an impersonation; return (accepted, rejected)."""
    now = instance.now_ms()
    wanted = {e.session_id for e in entries}
    sessions = {row.id: row for row in db.scalars(
        select(SessionRow).where(SessionRow.id.in_(wanted), SessionRow.actor_sub.is_not(None)))}
    room = {session_id: MAX_PER_SESSION - count for session_id, count in db.execute(
        select(ImpersonationActivity.session_id, func.count())
        .where(ImpersonationActivity.session_id.in_(list(sessions)))
        .group_by(ImpersonationActivity.session_id))}
    accepted = 0
    for entry in entries:
        session = sessions.get(entry.session_id)
        if session is None or entry.method not in METHODS \
                or room.get(session.id, MAX_PER_SESSION) <= 0:
            continue
        ended = session.ended_at or min(session.expire_at, session.abandon_at)
        if not session.created_at - SKEW_MS <= entry.occurred_at <= min(ended, now) + SKEW_MS:
            continue
        route = entry.route.split("?", 1)[0][:MAX_ROUTE] or "/"
        db.add(ImpersonationActivity(
            id=ids.new_id(ACTIVITY, now), session_id=session.id, occurred_at=entry.occurred_at,
            method=entry.method, route=route, status=entry.status, refused=entry.refused,
            received_at=now))
        accepted += 1
        room[session.id] = room.get(session.id, MAX_PER_SESSION) - 1
    db.flush()
    return accepted, len(entries) - accepted


@dataclass(frozen=True)
class Done:
    """What an impersonator did: the newest entries, in order, and how many there are."""

    entries: tuple[ImpersonationActivity, ...]
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.entries)


def of_sessions(db: Db, session_ids: Iterable[str], *, limit_each: int = 200
                ) -> dict[str, Done]:
    """The activity of each session: its newest ``limit_each`` entries in order (refused
    ones are never pushed out by later reads: they are kept first), and the total."""
    wanted = list(session_ids)
    if not wanted:
        return {}
    totals = dict(db.execute(
        select(ImpersonationActivity.session_id, func.count())
        .where(ImpersonationActivity.session_id.in_(wanted))
        .group_by(ImpersonationActivity.session_id)).all())
    found: dict[str, Done] = {}
    for session_id, total in totals.items():
        newest = db.scalars(
            select(ImpersonationActivity)
            .where(ImpersonationActivity.session_id == session_id)
            .order_by(ImpersonationActivity.refused.desc(),
                      ImpersonationActivity.occurred_at.desc(), ImpersonationActivity.id.desc())
            .limit(limit_each)).all()
        ordered = sorted(newest, key=lambda row: (row.occurred_at, row.id))
        found[session_id] = Done(tuple(ordered), int(total))
    return found


def prune(db: Db, instance: Instance) -> int:
    """Delete entries older than the retention; return how many."""
    days = instance.settings.impersonation_activity_retention_days
    cutoff = instance.now_ms() - days * 86_400_000
    result = db.execute(delete(ImpersonationActivity)
                        .where(ImpersonationActivity.occurred_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
