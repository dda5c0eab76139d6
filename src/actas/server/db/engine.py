"""The database engine for SQLite or PostgreSQL, and applying migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url

from actas.server import private_files

MIGRATIONS = Path(__file__).with_name("migrations")
READ_ONLY = "actas_read_only"  # an execution option: a snapshot that writes nothing
# Threads of one serving process that use the database: the requests' (see
# actas.server.app, which caps the thread pool to REQUEST_THREADS), the
# worker's round and its webhook lanes.
REQUEST_THREADS = 16
DATABASE_THREADS = REQUEST_THREADS + 1 + 8
# Connections for PostgreSQL reads on the event loop (db.loop_reads), per process.
ASYNC_POOL_SIZE = 8


def read_only_options(engine: Engine) -> dict[str, Any]:
    """Execution options for a read-only transaction over one consistent snapshot."""
    if engine.dialect.name == "postgresql":
        return {READ_ONLY: True, "isolation_level": "REPEATABLE READ",
                "postgresql_readonly": True}
    return {READ_ONLY: True}


def normalize_url(url: str) -> str:
    """Let operators write ``postgresql://…``; actas talks to it through psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> Engine:
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:" and "uri" not in make_url(url).query:
            _private_database(Path(database))
        pool: dict[str, Any] = {}
        if database and database != ":memory:":
            # One connection for every thread that may use one, and one for the event
            # loop's refresh reads (frontend_api.token_route): a checkout there must
            # never wait for a connection to come back.
            pool = {"pool_size": DATABASE_THREADS + 1, "max_overflow": 8}
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN, so two writers can
        # both read and then fail to upgrade their lock; BEGIN IMMEDIATE takes
        # the write lock first and lets busy_timeout queue writers instead.
        # A read-only transaction (READ_ONLY, see Instance.snapshot) takes no lock at
        # BEGIN: in WAL mode it reads one consistent snapshot while writers go on.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(
            "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"))
        return engine
    if backend == "postgresql":
        # As many connections as the process has threads that use them, kept open: a
        # pool smaller than the thread pool opens and closes a connection per request.
        return sqlalchemy.create_engine(url, pool_size=DATABASE_THREADS, max_overflow=4,
                                        pool_pre_ping=True)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _private_database(path: Path) -> None:
    """Create the SQLite file owner-only (0600, in a 0700 directory) before SQLite does.

    It holds password hashes and the audit log. SQLite itself would create it
    0644 less the umask; it creates the ``-wal``, ``-shm`` and ``-journal``
    files with the database file's own mode, so they follow. Those left by an
    older version are restricted here too.
    """
    private_files.private_directory(path.parent)
    private_files.private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        private_files.restrict(path.with_name(path.name + suffix))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: SQLAlchemy's "begin" event issues BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Replicas starting together must not migrate or bootstrap at the same time.
_STARTUP_LOCK_KEY = 0x61637461  # "acta"


def hold_startup_lock(connection: Connection) -> None:
    """Serialise start-up work across processes until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do,
    its ``BEGIN IMMEDIATE`` already admits one writer at a time.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": _STARTUP_LOCK_KEY})


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest migration."""
    command.upgrade(alembic_config(engine), "head")

