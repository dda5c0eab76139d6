"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from actas.server.db.engine import alembic_config, migrate
from actas.server.db.schema import Base, EmailAddress


def _schema(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(i["name"] or "" for i in inspector.get_indexes(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


# SQLite's reflection cannot read expression indexes (lower(first_name)); SQLAlchemy
# says so with a warning and skips them. PostgreSQL's reflection compares them.
def skip_unreflectable_indexes(test: Any) -> Any:
    test = pytest.mark.filterwarnings(
        "ignore:Skipped unsupported reflection of expression-based index")(test)
    return pytest.mark.filterwarnings(
        "ignore:autogenerate skipping metadata-specified expression-based index")(test)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@skip_unreflectable_indexes
def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrations_end_at_the_newest_revision(engine: Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    assert _revision(engine) == head


@skip_unreflectable_indexes
def test_migrating_again_is_a_no_op(engine: Engine) -> None:
    before, revision = _schema(engine), _revision(engine)
    with engine.begin() as connection:
        connection.execute(insert(Base.metadata.tables["secret_keys"]).values(
            id="sk_id_1", digest="sha256:x", created_at=1, revoked_at=None))

    migrate(engine)

    assert _schema(engine) == before
    assert _revision(engine) == revision
    with engine.connect() as connection:
        assert connection.execute(Base.metadata.tables["secret_keys"].select()).all() == [
            ("sk_id_1", "sha256:x", 1, None)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_connections_enforce_foreign_keys_and_use_wal(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(EmailAddress).values(
            id="idn_1", user_id="user_missing", email_address="a@example.com",
            created_at=1, updated_at=1))
