"""A private, throwaway PostgreSQL server for the test suite.

    with ThrowawayPostgres() as pg:
        engine = sqlalchemy.create_engine(pg.url)
        other_url = pg.create_database("actas_other")

The server runs from a fresh temporary directory (data, unix socket, log), listens
only on 127.0.0.1 on a free port, trusts every local connection for the role
``actas``, and runs with durability off because nothing in it must survive. It is
stopped with ``pg_ctl stop -m immediate`` and its directory removed on exit.

PostgreSQL refuses to run as root; when the tests run as root the directory is
handed to an unprivileged user (``postgres`` if it exists, else ``nobody``) and
every server command runs as that user.

Needs only the server binaries (``initdb``, ``pg_ctl``, ``postgres``; Debian package
``postgresql``, see ``scripts/install-system-deps postgresql``). Databases are
created with ``psql`` when it is available, else with psycopg.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresBinaries", "ThrowawayPostgres", "find_binaries"]

SUPERUSER = "actas"
DEFAULT_DATABASE = "actas_test"

_INSTALL_HINT = "run `scripts/install-system-deps postgresql` to install it"
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_START_ATTEMPTS = 3
_TIMEOUT = 60  # seconds, for any single server command

# Appended to postgresql.conf. Durability off: a crash only loses a test database.
_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass(frozen=True)
class PostgresBinaries:
    initdb: Path
    pg_ctl: Path
    postgres: Path
    psql: Path | None  # optional: only used to create databases


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.name.split("."))
    except ValueError:
        return (-1,)


def find_binaries() -> PostgresBinaries:
    """The newest ``/usr/lib/postgresql/<version>/bin``, else the tools on PATH."""
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(
            (d for d in _DEBIAN_ROOT.iterdir() if d.is_dir()), key=_version_key, reverse=True
        )
        for version_dir in versions:
            bin_dir = version_dir / "bin"
            if all(os.access(bin_dir / tool, os.X_OK) for tool in _SERVER_TOOLS):
                psql = bin_dir / "psql"
                return PostgresBinaries(
                    initdb=bin_dir / "initdb",
                    pg_ctl=bin_dir / "pg_ctl",
                    postgres=bin_dir / "postgres",
                    psql=psql if os.access(psql, os.X_OK) else None,
                )
    found = {tool: shutil.which(tool) for tool in (*_SERVER_TOOLS, "psql")}
    missing = [tool for tool in _SERVER_TOOLS if found[tool] is None]
    if missing:
        raise RuntimeError(
            f"PostgreSQL server binaries not found ({', '.join(missing)} missing; looked in "
            f"{_DEBIAN_ROOT}/*/bin and on PATH): {_INSTALL_HINT}"
        )
    psql_path = found["psql"]
    return PostgresBinaries(
        initdb=Path(found["initdb"] or ""),
        pg_ctl=Path(found["pg_ctl"] or ""),
        postgres=Path(found["postgres"] or ""),
        psql=Path(psql_path) if psql_path else None,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is no `postgres` or `nobody` user to run as")


class ThrowawayPostgres:
    """A temporary PostgreSQL server; a context manager (``start()``/``stop()`` also work)."""

    def __init__(self, binaries: PostgresBinaries | None = None) -> None:
        self._bins = binaries
        self._user = _server_user()
        self._base: Path | None = None
        self._port: int | None = None
        self._running = False

    # -- public ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise RuntimeError("the PostgreSQL server is not running")
        return self._port

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3) of the ``actas_test`` database."""
        return self.url_for(DEFAULT_DATABASE)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (owned by ``actas``) and return its SQLAlchemy URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self._sql(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def start(self) -> ThrowawayPostgres:
        if self._base is not None:
            raise RuntimeError("already started")
        try:
            self._bins = self._bins or find_binaries()
            self._base = Path(tempfile.mkdtemp(prefix="actas-pg-"))
            self._socket_dir.mkdir(mode=0o700)
            if self._user is not None:
                for path in (self._base, self._socket_dir):
                    os.chown(path, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            self._start_server()
            self.create_database(DEFAULT_DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def halt(self) -> None:
        """Stop the server as a restart does (every client cut off), keeping its data and
        port. A clean stop, not a crash: this server runs with fsync and synchronous
        commit off, so a crash would lose transactions it had already confirmed."""
        self._run([self._binaries.pg_ctl, "stop", "-D", self._data_dir, "-m", "fast", "-w"])
        self._running = False

    def resume(self) -> None:
        """Start a halted server again, on the same port (its clients reconnect there)."""
        self._run([self._binaries.pg_ctl, "start", "-w", "-t", str(_TIMEOUT), "-D",
                   self._data_dir, "-l", self._log_file, "-o", f"-p {self._port}"])
        self._running = True

    def stop(self) -> None:
        """Stop the server (if it runs) and remove its directory; safe to call twice."""
        try:
            if self._running and self._bins is not None:
                self._running = False
                # Best effort: a failure here must not hide the original error.
                self._run(
                    [self._bins.pg_ctl, "stop", "-D", self._data_dir, "-m", "immediate", "-w"],
                    check=False,
                )
        finally:
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None
            self._port = None

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        if self._base is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._base

    @property
    def _data_dir(self) -> Path:
        return self._dir / "data"

    @property
    def _socket_dir(self) -> Path:
        return self._dir / "socket"

    @property
    def _log_file(self) -> Path:
        return self._dir / "postgres.log"

    @property
    def _binaries(self) -> PostgresBinaries:
        if self._bins is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._bins

    def _env(self) -> dict[str, str]:
        # PG* variables (PGDATA, PGHOST, PGOPTIONS, ...) of the caller must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._user is not None:
            env.update(HOME=str(self._dir), USER=self._user.pw_name, LOGNAME=self._user.pw_name)
        return env

    def _run(
        self, args: Sequence[str | Path], *, check: bool = True, as_server_user: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (as the server user, when we are root); raise with context on failure."""
        user = self._user if as_server_user else None
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=self._dir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT + 30,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"command failed (exit {proc.returncode}): {' '.join(map(str, args))}\n"
                f"{proc.stdout}{proc.stderr}{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self._log_file.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self._log_file} ---\n{tail}\n" if tail else ""

    def _initdb(self) -> None:
        bins = self._binaries
        args: list[str | Path] = [
            bins.initdb,
            "-D", self._data_dir,
            "-A", "trust",
            "-U", SUPERUSER,
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",  # nothing here must survive a crash; skips initdb's final fsync
        ]  # fmt: skip
        help_text = self._run([bins.initdb, "--help"], check=False).stdout
        if "--no-instructions" in help_text:
            args.append("--no-instructions")
        self._run(args)
        settings = {**_SETTINGS, "unix_socket_directories": f"'{self._socket_dir}'"}
        with (self._data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# added by tests/support/postgres.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self) -> None:
        """``pg_ctl start``; retry on another port if ours was taken in the meantime."""
        bins = self._binaries
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._port = _free_port()
            proc = self._run(
                [
                    bins.pg_ctl, "start", "-w", "-t", str(_TIMEOUT),
                    "-D", self._data_dir,
                    "-l", self._log_file,
                    "-o", f"-p {self._port}",
                ],
                check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                self._running = True
                return
            log = self._log_tail()
            if "could not bind" not in log or attempt == _START_ATTEMPTS:
                raise RuntimeError(
                    f"PostgreSQL did not start (pg_ctl exit {proc.returncode}, "
                    f"port {self._port}, {bins.pg_ctl}):\n{proc.stdout}{proc.stderr}{log}"
                )
            # Let a half-started postmaster (if any) go away before retrying.
            self._run([bins.pg_ctl, "stop", "-D", self._data_dir, "-m", "immediate"], check=False)

    def _sql(self, statement: str) -> None:
        """Run one statement as ``actas`` in the ``postgres`` database, over the unix socket."""
        psql = self._binaries.psql
        if psql is not None:
            self._run(
                [
                    psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", self._socket_dir, "-p", str(self.port),
                    "-U", SUPERUSER, "-d", "postgres",
                    "-c", statement,
                ],
                as_server_user=False,
            )  # fmt: skip
            return
        try:
            import psycopg
        except ImportError as e:
            raise RuntimeError(
                f"neither psql nor psycopg is available to create databases: {_INSTALL_HINT}"
            ) from e
        with psycopg.connect(
            host=str(self._socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(statement.encode())
