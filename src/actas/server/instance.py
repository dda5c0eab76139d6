"""A running actas instance: its settings and the long-lived parts built from them.

Built once per process (``Instance.start``) and handed to the HTTP layer;
nothing in the server reaches for a global instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session as Db
from sqlalchemy.orm import sessionmaker

from actas.server import credentials, ids
from actas.server.audit import STAGED, AuditLog, Record
from actas.server.audit_chainer import Chainer
from actas.server.clock import Clock, SystemClock
from actas.server.credentials import Secret
from actas.server.db.engine import (
    ASYNC_POOL_SIZE,
    READ_ONLY,
    create_engine,
    hold_startup_lock,
    migrate,
    read_only_options,
)
from actas.server.db.loop_reads import LoopReads
from actas.server.db.schema import SecretKey
from actas.server.passwords import PasswordHasher
from actas.server.settings import Settings
from actas.server.signing_keys import KeyRing
from actas.server.webhook_urls import Resolver, system_resolver

log = logging.getLogger("actas")


@dataclass
class Instance:
    settings: Settings
    clock: Clock
    engine: Engine
    passwords: PasswordHasher
    keys: KeyRing
    audit: AuditLog
    # Host names to addresses, for the webhook URL check (injected by tests).
    resolve: Resolver = field(default=system_resolver)

    @classmethod
    def start(cls, settings: Settings, *, clock: Clock | None = None,
              engine: Engine | None = None, resolve: Resolver | None = None) -> Instance:
        """Connect, apply migrations and make sure a signing key exists."""
        instance = cls(
            settings=settings,
            clock=clock or SystemClock(),
            engine=engine or create_engine(settings.database_url),
            passwords=PasswordHasher(settings.password_hashing),
            keys=KeyRing(settings.instance_secret),
            audit=AuditLog(settings.instance_secret),
            resolve=resolve or system_resolver,
        )
        migrate(instance.engine)
        with instance.transaction() as db:
            hold_startup_lock(db.connection())
            instance.keys.ensure_one(
                db, algorithm=settings.signing_algorithm, now_ms=instance.clock.now_ms()
            )
            instance.audit.ensure_head(db)
        try:  # whatever a stopped process staged and did not chain; else the worker will
            instance.chainer.chain_all()
        except Exception:
            log.exception("chaining staged audit events at startup failed; the worker retries")
        return instance

    def __post_init__(self) -> None:
        self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.chainer = Chainer(self)
        # SQLite has one writer at a time: a transaction that recorded events already
        # holds the only lock chaining needs, so it chains them itself before its
        # commit (one transaction less per audited request, and the events are chained
        # atomically with what they record). PostgreSQL writers must not queue on the
        # chain head: they chain after their commit, in shared rounds (``Chainer``).
        self._chains_in_writer = self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """One unit of work: committed if the block returns, rolled back if it raises.

        Audit events it recorded are chained right after the commit (see
        ``actas.server.audit``), so they are in the log when the block's caller
        goes on."""
        with self._sessionmaker() as db:
            with db.begin():
                yield db
                if self._chains_in_writer and db.info.get(STAGED):
                    self.chainer.chain_within(db)
            staged = db.info.pop(STAGED, None)
        if staged:
            self.chainer.after_commit()

    @contextmanager
    def snapshot(self) -> Iterator[Db]:
        """A read-only transaction over one consistent snapshot: it takes no write lock
        (SQLite: a deferred BEGIN in WAL mode; PostgreSQL: REPEATABLE READ, READ ONLY),
        so a long read, like verifying the audit chain, never holds up a sign-in."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**read_only_options(self.engine))
            with Db(bind=connection, expire_on_commit=False) as db, db.begin():
                yield db

    @property
    def reads_never_wait(self) -> bool:
        """Whether a read is local and lock-free, so it may run on the event loop as it
        is (SQLite in WAL mode); not on PostgreSQL, where a read is a round trip: there
        the event loop reads through ``loop_reads``."""
        return self.engine.dialect.name == "sqlite"

    @functools.cached_property
    def loop_reads(self) -> LoopReads:
        """PostgreSQL reads on the event loop, through psycopg's async API (made on
        first use; see ``db.loop_reads``)."""
        return LoopReads(self.settings.database_url, size=ASYNC_POOL_SIZE)

    async def close_async(self) -> None:
        if "loop_reads" in self.__dict__:
            await self.loop_reads.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A plain connection for reads that take no lock and need no shared snapshot
        across statements (PostgreSQL: READ COMMITTED; SQLite: a deferred BEGIN in WAL
        mode). Cheaper than ``snapshot``: no isolation level to set and reset, no ORM
        session. Rolled back at the end: nothing it does is kept."""
        with self.engine.connect() as connection:
            yield connection.execution_options(**{READ_ONLY: True})

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def record(self, db: Db, record: Record) -> None:
        """Write an audit event in the caller's transaction; it is chained (and its
        webhooks queued) once that transaction commits."""
        self.audit.stage(db, record, now_ms=self.now_ms())

    def record_alone(self, record: Record) -> None:
        """Write an audit event in its own transaction (for refusals, whose own rolls back)."""
        with self.transaction() as db:
            self.record(db, record)

    def ensure_secret_key(self) -> Secret | None:
        """Generate the first Backend API secret key if none exists; return it (once).

        Skipped when the operator configured ``ACTAS_SECRET_KEY``.
        """
        if self.settings.secret_key is not None:
            return None
        with self.transaction() as db:
            if db.scalar(select(SecretKey.id).where(SecretKey.revoked_at.is_(None))):
                return None
            return self.create_secret_key(db)

    def create_secret_key(self, db: Db) -> Secret:
        now = self.now_ms()
        secret = credentials.generate(credentials.SECRET_KEY_PREFIX)
        db.add(SecretKey(id=ids.new_id(ids.SECRET_KEY, now), digest=credentials.digest(
            secret.reveal()), created_at=now, revoked_at=None))
        return secret
