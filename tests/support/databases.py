"""A PostgreSQL database of a test's own on the throwaway server, dropped afterwards.

For tests whose servers run in other processes (replicas, crashes): the
shared database is emptied between tests, so they get one of their own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


@contextlib.contextmanager
def own_database(postgres_url: str, prefix: str) -> Iterator[str]:
    """Create ``<prefix>_<random>`` next to ``postgres_url``'s; yield its URL; drop it."""
    admin_url = make_url(postgres_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
