"""The data directory and the SQLite files are the owner's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from actas.server import Instance
from actas.server.db.engine import create_engine
from tests.conftest import make_settings


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual 022, under which a plain open() or mkdir() makes 0644 files, 0755 dirs."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_data_directory_and_every_file_in_it_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # No instance secret given: it is generated into the data directory.
    settings = make_settings(tmp_path, f"sqlite:///{data / 'actas.db'}",
                             instance_secret=None)
    instance = Instance.start(settings)
    try:
        with instance.engine.connect() as connection:  # WAL and SHM exist while it is open
            connection.execute(text("SELECT count(*) FROM users"))
            files = {p.name: _mode(p) for p in data.iterdir()}
        assert {"actas.db", "actas.db-wal", "actas.db-shm", "instance_secret"} <= set(files)
        assert files == dict.fromkeys(files, 0o600)
        assert _mode(data) == 0o700
    finally:
        instance.engine.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_files_left_readable_by_an_older_version_are_restricted(tmp_path: Path) -> None:
    database = tmp_path / "actas.db"
    for name in ("actas.db", "actas.db-wal", "actas.db-shm"):
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name).chmod(0o644)
    create_engine(f"sqlite:///{database}").dispose()
    assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
        "actas.db": 0o600, "actas.db-wal": 0o600, "actas.db-shm": 0o600}


@pytest.mark.usefixtures("permissive_umask")
def test_a_database_outside_the_data_directory_gets_a_private_directory(
        tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "nested" / "actas.db"
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x)"))
            assert {p.name: _mode(p) for p in database.parent.iterdir()} == {
                "actas.db": 0o600, "actas.db-wal": 0o600, "actas.db-shm": 0o600}
        assert _mode(database.parent) == 0o700
    finally:
        engine.dispose()
