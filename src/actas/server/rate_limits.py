"""Rate limits: one counter row per (scope, key, window), exact under concurrency.

A ``Budget`` allows ``limit`` charges per key (an address, an account, a
ticket) in each window. ``spend`` charges several budgets at once, or none
of them and raises ``TooManyRequests``. Each counter is one statement, an
upsert that adds one and returns the new count (``INSERT … ON CONFLICT DO
UPDATE … RETURNING``; on PostgreSQL it locks the row until the transaction
ends; SQLite's ``BEGIN IMMEDIATE`` admits one writer at a time): parallel
requests on any number of replicas queue on the row, so a limit of 100 lets
exactly 100 through. Rows
are locked in sorted order, so two requests never wait on each other in a
circle. The counters are shared by every replica, in the database.

Limits on failures (a wrong password, a refused ticket) reserve and refund:
``spend`` before the attempt, in a short transaction of its own, and
``refund`` when it succeeded. An attempt in flight counts, so parallel
attempts cannot slip under the limit, and the slow part (a password hash)
runs outside any transaction; an attempt whose process died stays counted.

Windows are fixed (aligned on multiples of their length), not sliding:
cheap, one row per key and window, at the price that a key may spend its
budget at the end of one window and again at the start of the next.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as Db
from sqlalchemy.sql.dml import ReturningInsert

from actas._errors import TooManyRequests
from actas.server.audit import RequestOrigin
from actas.server.db.schema import RateLimitCounter

WINDOW_MS = 15 * 60 * 1000
# Counters outlive their window by this much: a late refund still finds its row,
# and the worker summarises closed windows (redemption refusals) before pruning.
KEEP_AFTER_WINDOW_MS = 60 * 60 * 1000
_MAX_KEY = 512  # the column; longer keys are stored as their digest


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` charges per key of ``scope`` in each window of ``window_ms``."""

    scope: str
    limit: int
    window_ms: int = WINDOW_MS


@dataclass(frozen=True)
class Charge:
    """What ``spend`` took, in lock order, for ``refund`` to give back."""

    counters: tuple[tuple[str, str, int], ...]  # (scope, stored key, window start)


def spend(db: Db, charges: Sequence[tuple[Budget, str]], *, now_ms: int, what: str) -> Charge:
    """Charge one to each ``(budget, key)``; if any is used up, raise and charge none.

    ``what`` names what is counted, for the error message ("failed sign-ins").
    """
    wanted: dict[tuple[str, str, int], Budget] = {}
    for budget, key in charges:
        wanted[(budget.scope, _stored(key), now_ms - now_ms % budget.window_ms)] = budget
    counters = tuple(sorted(wanted))  # the lock order (PostgreSQL locks each row it adds to)
    # One statement per counter: add one and read the sum back. Over a limit, give the
    # ones back (in case the caller's transaction goes on) and refuse.
    full = []
    for counter in counters:
        budget = wanted[counter]
        if _upsert(db, *counter, expires_at=counter[2] + budget.window_ms, add=1) \
                > budget.limit:
            full.append((counter, budget))
    if full:
        refund(db, Charge(counters))
        wait_ms = max(start + budget.window_ms - now_ms for (_, _, start), budget in full)
        minutes = -(-wait_ms // 60_000)
        raise TooManyRequests(
            f"Too many {what}. Wait {minutes} minute{'s' if minutes != 1 else ''} and try "
            "again.", retry_after_seconds=-(-wait_ms // 1000))
    return Charge(counters)


def refund(db: Db, charge: Charge) -> None:
    """Give back what ``spend`` took (the attempt succeeded, so it was no failure)."""
    for scope, key, start in charge.counters:
        db.connection().execute(_GIVE_BACK, {"b_scope": scope, "b_key": key, "b_start": start})


def count(db: Db, *, scope: str, key: str, now_ms: int, window_ms: int = WINDOW_MS) -> int:
    """Add one to ``key``'s count in the current window, without a limit; return the count."""
    start = now_ms - now_ms % window_ms
    return _upsert(db, scope, _stored(key), start, expires_at=start + window_ms, add=1)


def prune(db: Db, *, now_ms: int) -> int:
    """Delete counters whose window closed long enough ago; return how many."""
    result = db.execute(delete(RateLimitCounter).where(
        RateLimitCounter.expires_at < now_ms - KEEP_AFTER_WINDOW_MS))
    return int(result.rowcount)  # type: ignore[attr-defined]


def address_of(origin: RequestOrigin) -> str:
    """The key of a request's address; requests without one share a single budget."""
    return origin.ip_address or "unknown"


@dataclass(frozen=True)
class SignInLimits:
    """Failed sign-ins allowed per window, counted per account and per address.

    Three limits: per account and address (stops one attacker), per address
    (stops one attacker trying many accounts), and a higher one per account
    (stops a distributed attack, at the price that it can lock the account out
    for the window). The account is the user's id when the identifier names a
    user, so a username and each email address share one budget; the
    identifier itself otherwise.
    """

    name: str
    per_account_and_address: int
    per_address: int
    per_account: int

    def spend(self, db: Db, *, account: str, origin: RequestOrigin, now_ms: int) -> Charge:
        address = address_of(origin)
        return spend(db, [
            (Budget(f"{self.name}:account", self.per_account), account),
            (Budget(f"{self.name}:address", self.per_address), address),
            (Budget(f"{self.name}:account_address", self.per_account_and_address),
             f"{account}|{address}"),
        ], now_ms=now_ms, what="failed sign-ins")


OPERATOR_SIGN_IN = SignInLimits("operator_sign_in", per_account_and_address=5, per_address=30,
                                per_account=20)
USER_SIGN_IN = SignInLimits("user_sign_in", per_account_and_address=10, per_address=100,
                            per_account=50)


def _stored(key: str) -> str:
    if len(key) <= _MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _upsert(db: Db, scope: str, key: str, start: int, *, expires_at: int, add: int) -> int:
    """Add ``add`` to the counter, made if missing, and return its new count."""
    hits: int = db.connection().execute(_add_to(db.get_bind().dialect.name), {
        "scope": scope, "key": key, "window_start": start, "hits": add,
        "expires_at": expires_at}).scalar_one()
    return hits


# The statements every rate-limited request runs, built once (building one costs
# more Python than running it).
_GIVE_BACK = (update(RateLimitCounter)
              .where(RateLimitCounter.scope == bindparam("b_scope"),
                     RateLimitCounter.key == bindparam("b_key"),
                     RateLimitCounter.window_start == bindparam("b_start"),
                     RateLimitCounter.hits > 0)
              .values(hits=RateLimitCounter.hits - 1))


@functools.cache
def _add_to(dialect: str) -> ReturningInsert[Any]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RateLimitCounter)
    return statement.on_conflict_do_update(
        index_elements=["scope", "key", "window_start"],
        set_={"hits": statement.excluded.hits + RateLimitCounter.hits},
    ).returning(RateLimitCounter.hits)
