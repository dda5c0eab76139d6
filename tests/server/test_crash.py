"""``kill -9`` in the middle of writes: every answered write survives, nothing is torn.

A real ``actas serve`` takes a bounded load of writes (users, actor tokens,
redemptions, revocations) from a few threads, and is killed with SIGKILL
while they run. After a restart on the same database, every write that had
been answered 2xx is there, the database passes its integrity check, and
the audit chain verifies. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import APP_ORIGIN, BACKENDS, SECRET_KEY
from tests.support.databases import own_database
from tests.support.flows import PASSWORD
from tests.support.processes import HOST, ActasServer, actas_env, described, run_actas

INSTANCE_SECRET = "crash-instance-secret-" + "c" * 32
WRITERS = 4
KILL_AFTER = 40  # answered writes, then SIGKILL (the writers keep going meanwhile)


def _env(database_url: str) -> dict[str, str]:
    return actas_env(ACTAS_SECRET_KEY=SECRET_KEY, ACTAS_INSTANCE_SECRET=INSTANCE_SECRET,
                     ACTAS_ALLOWED_ORIGINS=APP_ORIGIN, ACTAS_DATABASE_URL=database_url,
                     ACTAS_SIGN_UPS_PER_ADDRESS="100000")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'actas.db'}"
        return
    with own_database(request.getfixturevalue("postgres_url"), "actas_crash") as url:
        yield url


class Load:
    """Writers that record every write the server answered 2xx."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.users: list[str] = []
        self.tokens: list[str] = []
        self.revoked: list[str] = []
        self.sessions: list[str] = []
        self._lock = threading.Lock()
        self.enough = threading.Event()
        self.stop = threading.Event()

    def answered(self) -> int:
        with self._lock:
            return len(self.users) + len(self.tokens) + len(self.revoked) + len(self.sessions)

    def _keep(self, into: list[str], value: str) -> None:
        with self._lock:
            into.append(value)
        if self.answered() >= KILL_AFTER:
            self.enough.set()

    def run(self) -> None:
        api = httpx.Client(base_url=self.url, timeout=10, trust_env=False,
                           headers={"Authorization": f"Bearer {SECRET_KEY}"})
        browser = httpx.Client(base_url=self.url, timeout=10, trust_env=False,
                               headers={"Origin": APP_ORIGIN})
        try:
            while not self.stop.is_set():
                signed_up = browser.post("/v1/client/sign_ups", json={
                    "email_address": f"crash-{uuid.uuid4().hex[:12]}@example.com",
                    "password": PASSWORD})
                if signed_up.status_code != 200:
                    continue
                user_id = signed_up.json()["response"]["created_user_id"]
                self._keep(self.users, user_id)
                for n in range(2):
                    token = api.post("/v1/actor_tokens", json={
                        "user_id": user_id, "actor": {"sub": "op_crash"}, "reason": "load"})
                    if token.status_code != 200:
                        break
                    self._keep(self.tokens, token.json()["id"])
                    if n == 0:
                        if api.post(f"/v1/actor_tokens/{token.json()['id']}/revoke"
                                    ).status_code == 200:
                            self._keep(self.revoked, token.json()["id"])
                    else:
                        redeemed = browser.post("/v1/client/sign_ins", json={
                            "strategy": "ticket", "ticket": token.json()["token"]})
                        if redeemed.status_code == 200:
                            self._keep(self.sessions,
                                       redeemed.json()["response"]["created_session_id"])
        except httpx.TransportError:
            pass  # the server died under us: whatever was answered is recorded
        finally:
            api.close()
            browser.close()


def test_every_answered_write_survives_a_kill_9(database_url: str, tmp_path: Path) -> None:
    env = _env(database_url)
    load = None
    with ActasServer(["--data-dir", "data"], cwd=tmp_path, env=env) as server:
        load = Load(server.url)
        writers = [threading.Thread(target=load.run) for _ in range(WRITERS)]
        for writer in writers:
            writer.start()
        assert load.enough.wait(300), server.output()
        server.kill()  # SIGKILL while the writers are still writing
        load.stop.set()
        for writer in writers:
            writer.join(60)

    with ActasServer(["--data-dir", "data"], cwd=tmp_path, env=env) as restarted, \
            httpx.Client(base_url=restarted.url, timeout=30, trust_env=False,
                         headers={"Authorization": f"Bearer {SECRET_KEY}"}) as api:
        for user_id in load.users:
            assert api.get(f"/v1/users/{user_id}").status_code == 200, user_id
        for token_id in load.tokens:
            assert api.get(f"/v1/actor_tokens/{token_id}").status_code == 200, token_id
        for token_id in load.revoked:
            assert api.get(f"/v1/actor_tokens/{token_id}").json()["status"] == "revoked"
        for session_id in load.sessions:
            assert api.get(f"/v1/sessions/{session_id}").status_code == 200, session_id
        chain = api.get("/v1/audit_events/verify").json()
        assert chain["ok"], chain

    if database_url.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "data" / "actas.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    verified = run_actas("audit", "verify", "--data-dir", "data", cwd=tmp_path, env=env)
    assert verified.returncode == 0, described(verified)


def _workers_of(pid: int) -> list[int]:
    """The granian worker processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead and not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_the_workers_of_a_killed_server_stop_and_give_back_its_port(tmp_path: Path) -> None:
    """SIGKILL runs no code in ``actas serve``, so it cannot stop its workers: they
    went on as orphans, serving and holding the listening socket, and a restart on
    the same port (what a supervisor does) failed with "address already in use".
    Each worker now ends itself once its server is gone (``serving.follow_the_server``)."""
    env = _env(f"sqlite:///{tmp_path / 'data' / 'actas.db'}")
    with ActasServer(["--data-dir", "data", "--workers", "2"], cwd=tmp_path, env=env) as server:
        assert server.pid is not None
        workers = _workers_of(server.pid)
        assert len(workers) == 2, server.output()
        server.kill()
    deadline = time.monotonic() + 120  # a worker looks every second; a loaded machine is slow
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)], server.output()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind((HOST, server.port))  # what a restarted server binds
    assert "is gone: worker" in server.stdout() + server.stderr()
