"""Limits on failed sign-ins, counted from the audit log itself.

Every failed attempt is an audit event anyway (who tried, from where), so
the limiter counts those events in a sliding window instead of keeping
counters of its own: one source of truth, shared by every replica. The
count and the new failure are written under a lock on the identifier
(a PostgreSQL advisory lock; SQLite serialises writers already), so
parallel guesses cannot all slip in under the limit.

Three limits apply: per identifier and address (stops one attacker), per
address (stops one attacker trying many accounts), and a higher one per
identifier (stops a distributed attack, at the price that it can lock the
account out for the window).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session as Db

from actas._errors import TooManyRequests
from actas.server.audit import RequestOrigin
from actas.server.db.schema import AuditEvent

WINDOW_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Limits:
    per_identifier_and_address: int
    per_address: int
    per_identifier: int


OPERATOR_SIGN_IN = Limits(per_identifier_and_address=5, per_address=30, per_identifier=20)
USER_SIGN_IN = Limits(per_identifier_and_address=10, per_address=100, per_identifier=50)


def check(db: Db, *, failure_type: str, identifier: str, origin: RequestOrigin,
          now_ms: int, limits: Limits) -> None:
    """Raise ``TooManyRequests`` when a limit is reached; hold the identifier's lock.

    Call it first in the transaction that verifies the password and writes the
    failure (if any), so that check and write are atomic.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                   {"key": f"{failure_type}:{identifier}"})
    since = now_ms - WINDOW_MS
    recent = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.type == failure_type, AuditEvent.occurred_at > since)
    by_identifier = db.scalar(recent.where(AuditEvent.actor_sub == identifier)) or 0
    by_both = by_address = 0
    if origin.ip_address is not None:
        by_address = db.scalar(recent.where(AuditEvent.ip_address == origin.ip_address)) or 0
        by_both = db.scalar(recent.where(AuditEvent.actor_sub == identifier,
                                         AuditEvent.ip_address == origin.ip_address)) or 0
    if (by_both >= limits.per_identifier_and_address or by_address >= limits.per_address
            or by_identifier >= limits.per_identifier):
        raise TooManyRequests(
            "Too many failed sign-ins. Wait 15 minutes and try again.",
            retry_after_seconds=WINDOW_MS // 1000)
