"""The ``actas`` command as a real child process, for the tests that are about it.

    result = run_actas("migrate", "--data-dir", "data", cwd=tmp_path)

    with ActasServer(["--data-dir", "data"], cwd=tmp_path) as server:
        httpx.get(f"{server.url}/healthz")
        server.stdout()

Children get the caller's environment without any ``ACTAS_*`` variable (a
developer's own configuration must not leak in), with the fast, insecure
password preset, and without ``PYTHONUNBUFFERED`` so that their output is
buffered exactly as it is for an operator.

``ActasServer`` writes the server's output to files rather than pipes: a chatty
server can never block on a full pipe, and no pipe is left open for a
``ResourceWarning``. It is ready once the server says it is listening on *our*
port and ``GET /healthz`` answers; the first alone proves nothing is serving
yet, the second alone could be another process that holds the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["ACTAS", "ActasServer", "actas_env", "described", "free_port", "run_actas"]

ACTAS = (sys.executable, "-m", "actas.server.cli")
HOST = "127.0.0.1"

_START_ATTEMPTS = 3  # another process may take the free port before the server binds it
_STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
_POLL_INTERVAL = 0.05


def actas_env(**variables: str) -> dict[str, str]:
    """The environment for an ``actas`` child: ours minus ``ACTAS_*``, plus ``variables``."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith("ACTAS_") and name != "PYTHONUNBUFFERED"
    }
    env["ACTAS_PASSWORD_HASHING"] = "test-only-insecure"
    env.update(variables)
    return env


def run_actas(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
              input: str | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    """Run ``actas ARGS`` to completion; stdin is ``input``, else empty (never a TTY)."""
    return subprocess.run(
        [*ACTAS, *args],
        cwd=cwd,
        env=dict(env) if env is not None else actas_env(),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def described(result: subprocess.CompletedProcess[str]) -> str:
    """A finished command's exit status and output, for an assertion message."""
    return (f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}"
            f"--- stderr ---\n{result.stderr}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class ServerNotReady(AssertionError):
    """``actas serve`` exited or did not get ready in time; the message has its output."""


class ActasServer:
    """``actas serve --host 127.0.0.1 --port <free> ARGS``; a context manager.

    ``stdout()``/``stderr()`` are everything the server wrote so far, across
    start attempts; ``stdout_when_listening`` is its stdout at the moment
    the server reported listening, before any request reached it.
    """

    def __init__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
                 startup_timeout: float = 120) -> None:
        self._args = list(args)
        self.cwd = cwd
        self._env = dict(env) if env is not None else actas_env()
        self._startup_timeout = startup_timeout
        logs = Path(tempfile.mkdtemp(prefix="actas-serve-", dir=cwd))
        self._stdout_path = logs / "stdout"
        self._stderr_path = logs / "stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.stdout_when_listening: str | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stdout(self) -> str:
        return _read(self._stdout_path)

    def stderr(self) -> str:
        return _read(self._stderr_path)

    def output(self) -> str:
        """Both streams, labelled, for an assertion message."""
        return (f"actas serve {' '.join(self._args)} on port {self.port} "
                f"(exit status {self.returncode})\n--- stdout ---\n{self.stdout()}"
                f"--- stderr ---\n{self.stderr()}")

    def start(self) -> ActasServer:
        if self._process is not None:
            raise RuntimeError("already started")
        try:
            for _ in range(_START_ATTEMPTS):
                self.port = free_port()
                self._spawn()
                if self._wait_until_ready():
                    return self
            raise ServerNotReady(f"the port was taken every time\n{self.output()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a timeout; the exit status. Safe to call twice."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> ActasServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _spawn(self) -> None:
        args = [*ACTAS, "serve", "--host", HOST, "--port", str(self.port), *self._args]
        # Appended to, so a retry on another port keeps what the first attempt printed
        # (a generated secret key is printed only by the attempt that generated it).
        with self._stdout_path.open("ab") as out, self._stderr_path.open("ab") as err:
            self._process = subprocess.Popen(args, cwd=self.cwd, env=self._env,
                                             stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def _wait_until_ready(self) -> bool:
        """True once ready; False if the port was taken; raise on any other failure."""
        assert self._process is not None
        listening = f"Listening at: {self.url}"  # granian's line, on stdout
        deadline = time.monotonic() + self._startup_timeout
        stdout_seen, stderr_seen = len(self.stdout()), len(self.stderr())
        while True:
            if self._process.poll() is not None:
                if "address already in use" in self.stderr()[stderr_seen:].lower():
                    return False
                raise ServerNotReady(f"actas serve exited during start-up\n{self.output()}")
            if listening in self.stdout()[stdout_seen:]:
                if self.stdout_when_listening is None:
                    self.stdout_when_listening = self.stdout()
                if self._healthy():
                    return True
            if time.monotonic() > deadline:
                raise ServerNotReady(
                    f"actas serve was not ready within {self._startup_timeout} s\n"
                    f"{self.output()}")
            time.sleep(_POLL_INTERVAL)

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=2, trust_env=False)
        except httpx.TransportError:
            return False
        return response.status_code == 200


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
