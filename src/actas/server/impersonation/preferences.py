"""Changing a user's impersonation preference (``consent``): audited, and a live
impersonation the new preference would refuse ends at once rather than at its next
refresh."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas.server import sessions
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import ActorToken, User
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import consent, policy
from actas.server.impersonation.consent import Preference
from actas.server.instance import Instance


def set_preference(db: Db, instance: Instance, user: User, value: Preference | None, *,
                   origin: RequestOrigin, by: str) -> list[str]:
    """Set (``None``: back to the instance's default) and audit; return the ids of the
    live impersonations it ended."""
    before = consent.preference_of(user, instance.settings)
    user.impersonation_preference = value
    user.updated_at = instance.now_ms()
    db.flush()
    after = consent.preference_of(user, instance.settings)
    ended = _end_refused(db, instance, user, origin=origin) if after != before else []
    instance.record(db, Record(
        type="user.impersonation_preference_changed", user_id=user.id, origin=origin,
        data={"from": before, "to": after, "stored": value, "by": by,
              "ended_sessions": ended}))
    return ended


def _end_refused(db: Db, instance: Instance, user: User, *, origin: RequestOrigin) -> list[str]:
    now = instance.now_ms()
    live = db.scalars(select(SessionRow).where(
        SessionRow.user_id == user.id, SessionRow.status == "active",
        SessionRow.actor_sub.is_not(None)).with_for_update()).all()
    ended = []
    for row in live:
        token = db.get(ActorToken, row.actor_token_id) if row.actor_token_id else None
        if token is None or sessions.effective_status(row, now) != "active":
            continue
        permissions = policy.Requester.backend_api().permissions  # the override, as recorded
        if consent.refusal_of(db, instance.settings, user=user, token=token,
                              permissions=permissions, now_ms=now) is not None:
            sessions.end(db, instance, row, status="revoked", origin=origin, by="preference")
            ended.append(row.id)
    return ended
