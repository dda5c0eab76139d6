"""Sessions: creation, their lifecycle, and listing.

Statuses: ``active``; ``ended`` (signed out by the user); ``revoked`` (ended
by the Backend API or a ban); ``expired`` (past ``expire_at``, the absolute
lifetime); ``abandoned`` (past ``abandon_at``, i.e. inactive for longer than
the inactivity timeout). Expiry and abandonment happen with the passing of
time, so a stored ``active`` row is reported with its *effective* status and
nothing needs to run on a timer for a session to stop being usable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, ResourceNotFound, SessionNotActive
from actas.server import ids
from actas.server.audit import Record, RequestOrigin
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


@dataclass(frozen=True)
class Impersonation:
    """What makes a new session an impersonation: who acts, by which token, for how long."""

    actor: dict[str, Any]
    actor_token_id: str
    max_duration: int  # seconds, as the actor token asked
    reason: str | None = None
    mode: str = "full"  # read_only | full (actas.server.roles.MODES)


def inactivity_timeout_ms(instance: Instance, row: SessionRow) -> int:
    settings = instance.settings
    seconds = (settings.impersonation_inactivity_timeout if row.actor is not None
               else settings.session_inactivity_timeout)
    return seconds * 1000


def create(db: Db, instance: Instance, *, user: User, client: Client, origin: RequestOrigin,
           impersonation: Impersonation | None = None) -> SessionRow:
    """Create an active session on ``client`` and make it the client's active one.

    An impersonation session ends hard at ``min(max_duration, policy max)``
    after it starts (refresh never moves it), and remembers the client's
    previous session so that stopping returns to it.
    """
    now = instance.now_ms()
    settings = instance.settings
    row = SessionRow(
        id=ids.new_id(ids.SESSION, now),
        user_id=user.id,
        client_id=client.id,
        status="active",
        actor=None,
        actor_sub=None,
        actor_token_id=None,
        impersonation_mode=None,
        return_to_session_id=None,
        last_active_at=now,
        expire_at=now + settings.session_max_lifetime * 1000,
        abandon_at=now + settings.session_inactivity_timeout * 1000,
        ended_at=None,
        created_at=now,
        updated_at=now,
    )
    if impersonation is not None:
        hard_limit = min(impersonation.max_duration, settings.impersonation_max_duration)
        row.actor = impersonation.actor
        row.actor_sub = str(impersonation.actor["sub"])
        row.actor_token_id = impersonation.actor_token_id
        row.impersonation_mode = impersonation.mode
        row.return_to_session_id = client.last_active_session_id
        row.expire_at = now + hard_limit * 1000
        row.abandon_at = now + settings.impersonation_inactivity_timeout * 1000
    else:
        user.last_sign_in_at = now
        user.last_active_at = now
    db.add(row)
    client.last_active_session_id = row.id
    client.updated_at = now
    db.flush()
    instance.record(db, Record(
        type="session.created", actor_sub=row.actor_sub, user_id=user.id, session_id=row.id,
        actor_token_id=row.actor_token_id,
        reason=impersonation.reason if impersonation else None, origin=origin,
        data={"actor": row.actor, "client_id": client.id, "expire_at": row.expire_at,
              **({"mode": row.impersonation_mode} if impersonation else {})}))
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


# Last-active is kept to this resolution (or a tenth of the inactivity timeout, if less):
# a refresh writes only when the stored time is older, not every 50 s.
TOUCH_RESOLUTION_MS = 300_000


def touch_interval_ms(instance: Instance, row: SessionRow) -> int:
    return min(TOUCH_RESOLUTION_MS, inactivity_timeout_ms(instance, row) // 10)


def touch_due(instance: Instance, row: SessionRow, now_ms: int) -> bool:
    """Whether activity at ``now_ms`` must be written: the stored last-active time is
    more than the touch interval old. So a session's inactivity timeout runs out
    between 90% and 100% of it after its last request."""
    return now_ms - row.last_active_at >= touch_interval_ms(instance, row)


def touch(db: Db, instance: Instance, row: SessionRow, now_ms: int) -> None:
    """Record activity: the session's own clock, and the user's when not impersonated.

    One conditional UPDATE, so it needs no lock taken earlier: if the session
    stopped being active since it was read (ended, revoked, lapsed), nothing is
    written and ``SessionNotActive`` says what it is now.
    """
    written = cast(CursorResult[Any], db.execute(
        update(SessionRow)
        .where(SessionRow.id == row.id, SessionRow.status == "active",
               SessionRow.abandon_at > now_ms, SessionRow.expire_at > now_ms)
        .values(last_active_at=now_ms, updated_at=now_ms,
                abandon_at=now_ms + inactivity_timeout_ms(instance, row))
        .execution_options(synchronize_session=False)
    )).rowcount
    if written != 1:
        require_active(get(db, row.id), now_ms)
        raise SessionNotActive("This session is no longer active; sign in again.",
                               session_id=row.id, status="ended")
    if row.actor is None:
        db.execute(update(User).where(User.id == row.user_id).values(last_active_at=now_ms)
                   .execution_options(synchronize_session=False))


def end(db: Db, instance: Instance, row: SessionRow, *, status: Literal["ended", "revoked"],
        origin: RequestOrigin, by: str | None = None) -> SessionRow:
    """End an active session: ``ended`` by its own user, ``revoked`` by anyone else.

    ``by`` names who ended it when that is not the session's user (an
    operator, the Backend API, the kill switch); it goes into the audit event.
    """
    now = instance.now_ms()
    require_active(row, now)
    row.status = status
    row.ended_at = now
    row.updated_at = now
    db.flush()
    instance.record(db, Record(
        type=f"session.{status}", actor_sub=row.actor_sub, user_id=row.user_id,
        session_id=row.id, actor_token_id=row.actor_token_id, origin=origin,
        data={"actor": row.actor, "ended_by": by}))
    return row


def revoke_of_user(db: Db, instance: Instance, user_id: str, *, origin: RequestOrigin,
                   by: str, keep: Callable[[SessionRow], bool] = lambda _row: False
                   ) -> list[SessionRow]:
    """Revoke every active session of ``user_id`` that ``keep`` does not spare (each
    audited, ``by`` naming why); return those revoked."""
    live = list_sessions(db, SessionQuery(user_id=user_id, status="active", limit=1_000_000),
                         instance.now_ms(), for_update=True)
    revoked = [row for row in live if not keep(row)]
    for row in revoked:
        end(db, instance, row, status="revoked", origin=origin, by=by)
    return revoked


def settle_lapsed(instance: Instance, *, session_ids: Sequence[str] = (), limit: int = 500
                  ) -> int:
    """Write down sessions that expired or were abandoned, each with its audit event.

    Effective status is derived everywhere, so this only makes the lapse
    visible in the audit trail (and webhooks); it runs from the background
    worker and whenever a lapsed session is refused a token.
    """
    now = instance.now_ms()
    with instance.transaction() as db:
        stmt = select(SessionRow).where(or_(_status_clause("expired", now),
                                            _status_clause("abandoned", now)),
                                        SessionRow.status == "active")
        if session_ids:
            stmt = stmt.where(SessionRow.id.in_(list(session_ids)))
        rows = db.scalars(stmt.order_by(SessionRow.id).limit(limit).with_for_update()).all()
        for row in rows:
            status = effective_status(row, now)
            row.status = status
            row.ended_at = min(row.expire_at, row.abandon_at)
            row.updated_at = now
            instance.record(db, Record(
                type=f"session.{status}", actor_sub=row.actor_sub, user_id=row.user_id,
                session_id=row.id, actor_token_id=row.actor_token_id,
                data={"actor": row.actor, "ended_at": row.ended_at}))
        return len(rows)


@dataclass(frozen=True)
class SessionQuery:
    user_id: str | None = None
    client_id: str | None = None
    status: Status | None = None
    actor_sub: str | None = None
    impersonated: bool | None = None
    created_after: int | None = None
    created_before: int | None = None
    before_id: str | None = None  # keyset cursor: sessions older than this one
    limit: int = 10
    offset: int = 0


def _status_clause(status: Status, now_ms: int | BindParameter[int]) -> ColumnElement[bool]:
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


# Every sign-in and every answer about a browser's client reads this: built once.
_ACTIVE_OF_CLIENT = (select(SessionRow)
                     .where(SessionRow.client_id == bindparam("client_id"),
                            _status_clause("active", bindparam("now")))
                     .order_by(SessionRow.id.desc()))


def _filters(q: SessionQuery, now_ms: int) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if q.user_id is not None:
        clauses.append(SessionRow.user_id == q.user_id)
    if q.client_id is not None:
        clauses.append(SessionRow.client_id == q.client_id)
    if q.actor_sub is not None:
        clauses.append(SessionRow.actor_sub == q.actor_sub)
    if q.impersonated is not None:
        clauses.append(SessionRow.actor_sub.is_not(None) if q.impersonated
                       else SessionRow.actor_sub.is_(None))
    if q.created_after is not None:
        clauses.append(SessionRow.created_at > q.created_after)
    if q.created_before is not None:
        clauses.append(SessionRow.created_at < q.created_before)
    if q.before_id is not None:
        clauses.append(SessionRow.id < q.before_id)
    if q.status is not None:
        if q.status not in STATUSES:
            raise FormParamInvalid(
                f"status must be one of {', '.join(STATUSES)}.",
                code="form_param_value_invalid", param_name="status",
            )
        clauses.append(_status_clause(q.status, now_ms))
    return clauses


def list_sessions(db: Db, q: SessionQuery, now_ms: int, *, for_update: bool = False
                  ) -> Sequence[SessionRow]:
    # Ids are time-sortable, so id order is creation order (newest first, as Clerk lists).
    stmt = (select(SessionRow).where(*_filters(q, now_ms)).order_by(SessionRow.id.desc())
            .limit(q.limit).offset(q.offset))
    if for_update:
        stmt = stmt.with_for_update()
    return db.scalars(stmt).all()


def count_sessions(db: Db, q: SessionQuery, now_ms: int) -> int:
    return db.scalar(
        select(func.count()).select_from(SessionRow).where(*_filters(q, now_ms))
    ) or 0


def of_client(db: Db, client: Client, now_ms: int) -> Sequence[SessionRow]:
    """The client's sessions that are still active, newest first."""
    return db.scalars(_ACTIVE_OF_CLIENT, {"client_id": client.id, "now": now_ms}).all()
