"""Refreshing a browser's session token: the request every signed-in browser makes
about every 50 s, so the one an actas install spends its CPU on.

It is shaped for that:
- it reads (``Instance.reading``): no write lock, so refreshes never queue
  behind one another or behind a sign-in;
- the client, the session and the user's ban flag come from one statement,
  built once, read without the ORM;
- the signing key comes from the key ring's cached schedule
  (``KeyRing.current_signer``), and the signature is made after the read;
- it writes only when the session's last-active time is older than its touch
  interval (``sessions.touch_due``, five minutes at most), in a transaction of
  one conditional UPDATE (two for a user's own session); an impersonation is
  re-checked against the policy, then signed under its session's row lock, in
  one transaction (``write_and_mint``).

``check`` and ``mint`` only read and compute, so the HTTP layer runs them on
the event loop itself (``frontend_api.token_route``): on SQLite directly; on
PostgreSQL the one statement (``OWN_SESSION_SQL``) goes through psycopg's async
API (``db.loop_reads``) and ``check_read`` does the rest, so that no worker
thread is involved. A write (with an impersonation's policy), or a read that
needs more (a refusal's details, a key schedule to re-read), goes to a worker
thread: no ORM work runs on the event loop.

Every check the old path made is still made on every refresh: the session is
active, belongs to the browser's client, its user is not banned, and an
impersonation is still allowed by the policy (``ending.require_still_allowed``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import bindparam, event, inspect, select
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as Db
from sqlalchemy.pool import QueuePool

from actas._errors import UserBanned
from actas.server import clients, credentials, session_tokens, sessions
from actas.server.db.schema import Client, User
from actas.server.db.schema import Session as SessionRow
from actas.server.impersonation import ending
from actas.server.instance import Instance
from actas.server.session_tokens import SessionToken
from actas.server.signing_keys import Signer

# The session (as much of its row as a refresh needs) and its user's ban flag, if the
# session belongs to the client whose cookie digest is given. Built once.
_COLUMNS = ("id", "user_id", "client_id", "status", "actor", "actor_sub", "actor_token_id",
            "impersonation_mode", "last_active_at", "expire_at", "abandon_at")
_OWN_SESSION = (
    select(*[getattr(SessionRow, name) for name in _COLUMNS], User.banned)
    .join(Client, Client.id == SessionRow.client_id)
    .join(User, User.id == SessionRow.user_id)
    .where(SessionRow.id == bindparam("session_id"),
           Client.token_digest == bindparam("digest"))
)
_SESSION_CLASS = inspect(SessionRow).class_manager
# The same, as psycopg runs it on the event loop (``db.loop_reads``), compiled once.
OWN_SESSION_SQL = str(_OWN_SESSION.compile(
    dialect=postgresql_psycopg.dialect()))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Checked:
    """A session that may have a token now, and what minting it needs."""

    session: SessionRow
    signer: Signer
    now_ms: int
    touch_due: bool

    @property
    def needs_write(self) -> bool:
        """Last-active is due, or the session is an impersonation (see ``write_and_mint``)."""
        return self.touch_due or self.session.actor is not None


def read_on_sqlite(instance: Instance, params: dict[str, str]) -> tuple[Any, ...] | None:
    """``_OWN_SESSION``'s row on SQLite, read through the driver's own connection.

    Through SQLAlchemy's ``Connection.execute`` this one statement cost more
    CPU than the rest of a refresh but the signature (~12% of a refresh in a
    profile: the execution context, the compiled-cache lookup, the result
    object); ``sqlite3`` runs it for a fraction. It is the same statement,
    compiled once for the engine's dialect, in the driver's autocommit mode:
    one statement, one snapshot, no lock. Values go through the column types'
    own result processors (the JSON ``actor``, the boolean ``banned``), so the
    row is what ``Connection.execute`` would have given. A driver error is
    raised as SQLAlchemy would raise it (``OperationalError`` answers 503), and
    the connection that raised is closed rather than used again. A driver other
    than ``sqlite3`` takes SQLAlchemy's way."""
    engine = instance.engine
    if engine.dialect.driver != "pysqlite":  # SQLAlchemy's name for the sqlite3 module
        with instance.reading() as connection:
            found = connection.execute(_OWN_SESSION, params).one_or_none()
        return None if found is None else tuple(found)
    return _DriverRead.of(engine).fetch(engine, params)


class _DriverRead:
    """``_OWN_SESSION`` compiled for one engine, and a connection kept to run it.

    The refresh reads on the event loop, one at a time per process, so one
    connection serves it: taken from the engine's pool once (its pragmas set)
    and detached from it, it skips the pool's checkout, reset and checkin, ~5%
    of a refresh's CPU in a profile. A second thread reading meanwhile (never
    the event loop's own) takes a pooled connection as before. Out of a
    transaction, the kept connection holds no snapshot that would stop a WAL
    checkpoint.

    Only a file database's pool (a ``QueuePool``) lends one for keeps: an
    in-memory database lives in its pool's one connection per thread (or one in
    all), which must stay where the rest of the process finds it. The kept
    connection is closed when the engine is disposed (``Engine.dispose``, a
    test's teardown), forgotten unclosed in a forked child (it is the parent's),
    and a fresh one taken at the next read."""

    def __init__(self, dialect: Dialect) -> None:
        statement = _OWN_SESSION.compile(dialect=dialect)
        self.sql = str(statement)
        self.names = list(statement.positiontup or ())
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in _OWN_SESSION.selected_columns]
        self._lock = threading.Lock()
        self._kept: sqlite3.Connection | None = None

    @classmethod
    def of(cls, engine: Engine) -> _DriverRead:
        read = _DRIVER_READS.get(engine.dialect)
        if read is None:
            read = _DRIVER_READS[engine.dialect] = cls(engine.dialect)
            # A bound method would keep the reader alive as long as the engine: weakly.
            reference = weakref.ref(read)

            def disposed(_engine: Engine) -> None:
                reader = reference()
                if reader is not None:
                    reader.close()

            event.listen(engine, "engine_disposed", disposed)
        return read

    def close(self) -> None:
        """Close the kept connection (the engine was disposed); one is taken again."""
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()

    def fetch(self, engine: Engine, params: dict[str, str]) -> tuple[Any, ...] | None:
        values = [params[name] for name in self.names]
        if isinstance(engine.pool, QueuePool) and self._lock.acquire(blocking=False):
            try:
                row = self._on_kept(engine, values)
            finally:
                self._lock.release()
        else:
            pooled = engine.raw_connection()
            try:
                row = pooled.driver_connection.execute(  # type: ignore[union-attr]
                    self.sql, values).fetchone()
            except sqlite3.Error as error:
                pooled.invalidate(error)
                raise DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
            finally:
                pooled.close()
        if row is None:
            return None
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(self.processors, row, strict=True))

    def _on_kept(self, engine: Engine, values: list[str]) -> Any:
        if self._kept is None:
            pooled = engine.raw_connection()
            kept: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
            pooled.detach()
            self._kept = kept
        try:
            return self._kept.execute(self.sql, values).fetchone()
        except sqlite3.Error as error:
            self._kept.close()  # for good: a fresh one is taken next time
            self._kept = None
            raise DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error


# Per dialect (one per engine), dropped with it: a process may make many (tests do).
_DRIVER_READS: weakref.WeakKeyDictionary[Dialect, _DriverRead] = weakref.WeakKeyDictionary()


def _forget_the_parents_connections() -> None:
    """In a forked child: the kept connections are the parent's (forgotten, not closed:
    closing would end the parent's too), and a lock a parent's thread held at the
    fork would never be released here."""
    for reader in list(_DRIVER_READS.values()):
        reader._lock = threading.Lock()
        reader._kept = None


os.register_at_fork(after_in_child=_forget_the_parents_connections)


def read_params(client_cookie: str | None, session_id: str) -> dict[str, str] | None:
    """The parameters of the refresh's read, or ``None`` for a cookie that cannot be
    a client's or an id no session can have (nothing to read: ``check`` refuses)."""
    if not (clients.well_formed(client_cookie) and session_id.isascii()
            and session_id.isprintable()):
        return None
    return {"session_id": session_id, "digest": credentials.digest(client_cookie)}


def check(instance: Instance, connection: Connection, *, client_cookie: str | None,
          session_id: str) -> Checked:
    """Every check of a refresh but an impersonation's policy (``write_and_mint``
    re-checks it), reading only, through ``connection`` (``Instance.reading``).
    Raises ``SignedOut``, ``ResourceNotFound``, ``SessionNotActive`` or
    ``UserBanned``."""
    now = instance.now_ms()
    params = read_params(client_cookie, session_id)
    found = None if params is None else connection.execute(_OWN_SESSION, params).one_or_none()
    if found is None:
        with Db(bind=connection) as db:
            _refuse(db, client_cookie, session_id)
    row = _session(found, now)
    signer = instance.keys.current_signer(connection, now)
    return Checked(row, signer, now, sessions.touch_due(instance, row, now))


def check_read(instance: Instance, found: Sequence[Any]) -> Checked | None:
    """``check`` for a row already read (``OWN_SESSION_SQL`` on the event loop), as far
    as it needs nothing more from the database: ``None`` when the rest does (a key
    schedule to re-read), and the caller runs ``check``. Raises
    ``SessionNotActive`` or ``UserBanned`` like ``check``."""
    now = instance.now_ms()
    row = _session(found, now)
    signer = instance.keys.cached_signer(now)
    if signer is None:
        return None
    return Checked(row, signer, now, sessions.touch_due(instance, row, now))


def _session(found: Sequence[Any], now_ms: int) -> SessionRow:
    """The session of a row of ``_OWN_SESSION``, if it may have a token now.

    A transient ``SessionRow`` that is only read (never added to an ORM session),
    built as SQLAlchemy's loader builds a loaded row: a new instance with its values
    put in its ``__dict__``. The mapped constructor sets each attribute through its
    change events, which cost 37 µs against 3.7 µs here (timeit), several percent of
    a refresh's CPU."""
    row: SessionRow = _SESSION_CLASS.new_instance()
    row.__dict__.update(zip(_COLUMNS, found[:-1], strict=True))
    sessions.require_active(row, now_ms)
    if found[-1]:
        raise UserBanned("This account is banned.")
    return row


def write_and_mint(instance: Instance, checked: Checked, *, azp: str | None
                   ) -> SessionToken:
    """The refresh's write, when ``checked.needs_write``: last-active when due, in one
    conditional UPDATE that refuses a session ended since the check.

    An impersonation is first re-checked against the policy
    (``ending.require_still_allowed``: raises an ``ImpersonationRefused`` leaf, and
    the caller ends it), then its token is signed while that UPDATE (or a ``FOR
    UPDATE`` read) holds the session's row;
    revocation, Stop and the kill switch lock the row too: once they have answered,
    no token of the session is signed. A user's own session is signed after the
    commit, so the write lock is never held while signing it; its tokens then trail
    a revocation by at most one."""
    with instance.transaction() as db:
        if checked.session.actor is not None:  # the policy again, every time
            # Before the session's row: revoking a grant locks the grant, then the
            # sessions under it; the policy's share lock on the grant comes first here
            # too, so the two never wait on each other in a circle (PostgreSQL).
            ending.require_still_allowed(db, instance, checked.session)
        if checked.touch_due:
            sessions.touch(db, instance, checked.session, checked.now_ms)
        else:
            sessions.require_active(sessions.get(db, checked.session.id, for_update=True),
                                    checked.now_ms)
        if checked.session.actor is not None:
            return mint(instance, checked, azp=azp)
    return mint(instance, checked, azp=azp)


def mint(instance: Instance, checked: Checked, *, azp: str | None) -> SessionToken:
    return session_tokens.mint(instance, checked.session, checked.signer, azp=azp)


def _refuse(db: Db, client_cookie: str | None, session_id: str) -> NoReturn:
    if clients.from_cookie(db, client_cookie) is None:
        raise clients.no_client()
    raise clients.not_its_session(session_id)
