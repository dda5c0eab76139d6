"""Sessions: creation, their lifecycle, and listing.

Statuses: ``active``; ``ended`` (signed out by the user); ``revoked`` (ended
by the Backend API or a ban); ``expired`` (past ``expire_at``, the absolute
lifetime); ``abandoned`` (past ``abandon_at``, i.e. inactive for longer than
the inactivity timeout). Expiry and abandonment happen with the passing of
time, so a stored ``active`` row is reported with its *effective* status and
nothing needs to run on a timer for a session to stop being usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, ResourceNotFound, SessionNotActive
from actas.server import ids
from actas.server.db.schema import Client, User
from actas.server.db.schema import Session as SessionRow
from actas.server.instance import Instance

Status = Literal["active", "ended", "revoked", "expired", "abandoned"]
STATUSES: tuple[Status, ...] = ("active", "ended", "revoked", "expired", "abandoned")


def effective_status(row: SessionRow, now_ms: int) -> Status:
    if row.status != "active":
        return row.status  # type: ignore[return-value]
    # Whichever limit was reached first decides, and the verdict never changes
    # afterwards: an abandoned session stays abandoned past its expire_at.
    if row.abandon_at < row.expire_at:
        return "abandoned" if now_ms >= row.abandon_at else "active"
    return "expired" if now_ms >= row.expire_at else "active"


def create(db: Db, instance: Instance, *, user: User, client: Client,
           actor: dict[str, Any] | None = None) -> SessionRow:
    now = instance.now_ms()
    settings = instance.settings
    row = SessionRow(
        id=ids.new_id(ids.SESSION, now),
        user_id=user.id,
        client_id=client.id,
        status="active",
        actor=actor,
        last_active_at=now,
        expire_at=now + settings.session_max_lifetime * 1000,
        abandon_at=now + settings.session_inactivity_timeout * 1000,
        ended_at=None,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    client.last_active_session_id = row.id
    client.updated_at = now
    if actor is None:
        user.last_sign_in_at = now
        user.last_active_at = now
    db.flush()
    return row


def get(db: Db, session_id: str, *, for_update: bool = False) -> SessionRow:
    stmt = select(SessionRow).where(SessionRow.id == session_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = db.scalar(stmt)
    if row is None:
        raise ResourceNotFound(f"No session has the id {session_id!r}.", param_name="session_id")
    return row


def require_active(row: SessionRow, now_ms: int) -> None:
    """Raise ``SessionNotActive`` unless the session is active right now.

    A lapsed session is not rewritten here: its effective status is derived
    wherever it is read, so a refused request changes nothing.
    """
    status = effective_status(row, now_ms)
    if status != "active":
        raise SessionNotActive(
            f"This session is {status}; sign in again.", session_id=row.id, status=status
        )


def touch(db: Db, instance: Instance, row: SessionRow, user: User) -> None:
    """Record activity: the session's own clock always, the user's only when not impersonated."""
    now = instance.now_ms()
    row.last_active_at = now
    row.abandon_at = now + instance.settings.session_inactivity_timeout * 1000
    row.updated_at = now
    if row.actor is None:
        user.last_active_at = now
    db.flush()


def end(db: Db, instance: Instance, row: SessionRow, *, status: Literal["ended", "revoked"]
        ) -> SessionRow:
    now = instance.now_ms()
    require_active(row, now)
    row.status = status
    row.ended_at = now
    row.updated_at = now
    db.flush()
    return row


@dataclass(frozen=True)
class SessionQuery:
    user_id: str | None = None
    client_id: str | None = None
    status: Status | None = None
    limit: int = 10
    offset: int = 0


def _status_clause(status: Status, now_ms: int) -> ColumnElement[bool]:
    # The SQL twin of effective_status().
    lapsed_expired = and_(SessionRow.status == "active", SessionRow.expire_at <= now_ms,
                          SessionRow.expire_at <= SessionRow.abandon_at)
    lapsed_abandoned = and_(SessionRow.status == "active", SessionRow.abandon_at <= now_ms,
                            SessionRow.abandon_at < SessionRow.expire_at)
    if status == "active":
        return and_(SessionRow.status == "active", SessionRow.expire_at > now_ms,
                    SessionRow.abandon_at > now_ms)
    if status == "expired":
        return or_(SessionRow.status == "expired", lapsed_expired)
    if status == "abandoned":
        return or_(SessionRow.status == "abandoned", lapsed_abandoned)
    return SessionRow.status == status


def _filters(q: SessionQuery, now_ms: int) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if q.user_id is not None:
        clauses.append(SessionRow.user_id == q.user_id)
    if q.client_id is not None:
        clauses.append(SessionRow.client_id == q.client_id)
    if q.status is not None:
        if q.status not in STATUSES:
            raise FormParamInvalid(
                f"status must be one of {', '.join(STATUSES)}.",
                code="form_param_value_invalid", param_name="status",
            )
        clauses.append(_status_clause(q.status, now_ms))
    return clauses


def list_sessions(db: Db, q: SessionQuery, now_ms: int) -> Sequence[SessionRow]:
    # Ids are time-sortable, so id order is creation order (newest first, as Clerk lists).
    return db.scalars(
        select(SessionRow).where(*_filters(q, now_ms)).order_by(SessionRow.id.desc())
        .limit(q.limit).offset(q.offset)
    ).all()


def count_sessions(db: Db, q: SessionQuery, now_ms: int) -> int:
    return db.scalar(
        select(func.count()).select_from(SessionRow).where(*_filters(q, now_ms))
    ) or 0


def of_client(db: Db, client: Client, now_ms: int) -> Sequence[SessionRow]:
    """The client's sessions that are still active, newest first."""
    return db.scalars(
        select(SessionRow)
        .where(SessionRow.client_id == client.id, _status_clause("active", now_ms))
        .order_by(SessionRow.id.desc())
    ).all()
