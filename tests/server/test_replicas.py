"""Two ``actas serve`` replicas on one PostgreSQL behave as one service.

Everything goes over real HTTP to two processes on loopback that share a
database, the instance secret and the public URL, as a deployment's replicas
do. What one replica does, the other honours at once: nothing that matters
lives in one process's memory.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import APP_ORIGIN, BACKENDS, SECRET_KEY
from tests.support.databases import own_database
from tests.support.flows import PASSWORD
from tests.support.processes import ActasServer, actas_env, described, run_actas
from tests.support.receivers import wait_until

INSTANCE_SECRET = "replica-instance-secret-" + "r" * 32
PUBLIC_URL = "http://auth.actas.test"  # the same iss whichever replica signs

pytestmark = [pytest.mark.postgresql,
              pytest.mark.skipif("postgresql" not in BACKENDS,
                                 reason="ACTAS_TEST_BACKENDS excludes it")]


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    """A database of this module's own on the test server."""
    with own_database(postgres_url, "actas_replicas") as url:
        yield url


def _env(database_url: str) -> dict[str, str]:
    return actas_env(ACTAS_SECRET_KEY=SECRET_KEY, ACTAS_INSTANCE_SECRET=INSTANCE_SECRET,
                     ACTAS_ALLOWED_ORIGINS=APP_ORIGIN, ACTAS_DATABASE_URL=database_url,
                     ACTAS_FRONTEND_API_URL=PUBLIC_URL, ACTAS_COOKIE_SECURE="false")


@pytest.fixture(scope="module")
def replicas(database_url: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[ActasServer, ActasServer]]:
    workdir = tmp_path_factory.mktemp("replicas")
    for name in ("a", "b"):
        (workdir / name).mkdir()
    with ActasServer(["--data-dir", "data"], cwd=workdir / "a", env=_env(database_url)) as a, \
            ActasServer(["--data-dir", "data"], cwd=workdir / "b", env=_env(database_url)) as b:
        yield a, b


def _api(server: ActasServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, trust_env=False,
                        headers={"Authorization": f"Bearer {SECRET_KEY}"})


def _browser() -> httpx.Client:
    """One browser: its cookie jar goes with it to whichever replica answers."""
    return httpx.Client(timeout=60, trust_env=False, headers={"Origin": APP_ORIGIN})


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def _user(api: httpx.Client) -> tuple[str, str]:
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    return _ok(api.post("/v1/users", json={"email_address": [email],
                                           "password": PASSWORD}))["id"], email


def _mint(browser: httpx.Client, server: ActasServer, session_id: str) -> httpx.Response:
    return browser.post(f"{server.url}/v1/client/sessions/{session_id}/tokens", json={})


def test_what_one_replica_creates_the_other_serves(
        replicas: tuple[ActasServer, ActasServer]) -> None:
    a, b = replicas
    with _api(a) as api_a, _api(b) as api_b, _browser() as browser:
        user_id, email = _user(api_a)
        assert _ok(api_b.get(f"/v1/users/{user_id}"))["id"] == user_id
        signed_in = _ok(browser.post(f"{b.url}/v1/client/sign_ins",
                                     json={"identifier": email, "password": PASSWORD}))
        session_id = signed_in["response"]["created_session_id"]
        for server in (a, b, a):  # refreshes land on either replica
            assert _mint(browser, server, session_id).status_code == 200
        assert _ok(api_a.get(f"/v1/sessions/{session_id}"))["status"] == "active"


def test_a_ticket_from_one_replica_redeems_on_the_other_and_revocation_holds_on_both(
        replicas: tuple[ActasServer, ActasServer]) -> None:
    a, b = replicas
    with _api(a) as api_a, _api(b) as api_b, _browser() as browser:
        user_id, _ = _user(api_a)
        token = _ok(api_a.post("/v1/actor_tokens", json={
            "user_id": user_id, "actor": {"sub": "op_replica"}, "reason": "replica test"}))
        redeemed = _ok(browser.post(f"{b.url}/v1/client/sign_ins",
                                    json={"strategy": "ticket", "ticket": token["token"]}))
        session_id = redeemed["response"]["created_session_id"]
        assert _mint(browser, a, session_id).status_code == 200

        _ok(api_b.post(f"/v1/sessions/{session_id}/revoke"))
        refused = _mint(browser, a, session_id)
        assert refused.status_code == 400 and _code(refused) == "session_not_active"


def test_the_kill_switch_on_one_replica_ends_impersonations_served_by_the_other(
        replicas: tuple[ActasServer, ActasServer]) -> None:
    a, b = replicas
    with _api(b) as api_b, _browser() as browser:
        user_id, _ = _user(api_b)
        token = _ok(api_b.post("/v1/actor_tokens", json={
            "user_id": user_id, "actor": {"sub": "op_killswitch"}, "reason": "r"}))
        session_id = _ok(browser.post(f"{a.url}/v1/client/sign_ins", json={
            "strategy": "ticket", "ticket": token["token"]}))["response"]["created_session_id"]
        ended = _ok(api_b.post("/v1/impersonations/end_all", json={"actor_sub": "op_killswitch"}))
        assert ended["sessions_revoked"] == 1
        assert _code(_mint(browser, a, session_id)) == "session_not_active"


def test_an_operator_disabled_from_the_cli_is_cut_off_on_every_replica(
        replicas: tuple[ActasServer, ActasServer], database_url: str, tmp_path: Path) -> None:
    a, b = replicas

    def actas(*args: str) -> str:
        result = run_actas(*args, "--data-dir", "cli", cwd=tmp_path, env=_env(database_url))
        assert result.returncode == 0, described(result)
        return result.stdout

    email = f"op-{uuid.uuid4().hex[:8]}@support.test"
    operator = json.loads(actas("operators", "create", "--email", email, "--role", "support",
                                "--password", "long enough password"))
    with _api(a) as api_a, _browser() as browser:
        user_id, _ = _user(api_a)
        token = _ok(api_a.post("/v1/actor_tokens", json={
            "user_id": user_id, "actor": {"sub": operator["id"]}, "reason": "r"}))
        session_id = _ok(browser.post(f"{b.url}/v1/client/sign_ins", json={
            "strategy": "ticket", "ticket": token["token"]}))["response"]["created_session_id"]
        assert _mint(browser, a, session_id).status_code == 200

        actas("operators", "disable", email)

        for server in (a, b):
            assert _code(_mint(browser, server, session_id)) == "session_not_active"


def test_a_key_rotated_from_the_cli_signs_on_every_replica(
        replicas: tuple[ActasServer, ActasServer], database_url: str, tmp_path: Path) -> None:
    a, b = replicas
    result = run_actas("keys", "rotate", "--publish-lead", "0", "--data-dir", "cli",
                       cwd=tmp_path, env=_env(database_url))
    assert result.returncode == 0, described(result)
    kid = json.loads(result.stdout)["kid"]
    with _api(a) as api_a, _browser() as browser:
        _, email = _user(api_a)
        session_id = _ok(browser.post(f"{a.url}/v1/client/sign_ins", json={
            "identifier": email, "password": PASSWORD}))["response"]["created_session_id"]
        for server in (a, b):
            # Each replica follows within its key schedule's cache time (10 s; the bound
            # here only stops a hang).
            def signs_with_the_new_key(server: ActasServer = server) -> bool:
                return bool(jwt_header(_ok(_mint(browser, server, session_id))["jwt"])["kid"]
                            == kid)

            wait_until(signs_with_the_new_key, timeout=120)
            published = {k["kid"] for k in _ok(httpx.get(f"{server.url}/.well-known/jwks.json",
                                                         trust_env=False))["keys"]}
            assert kid in published


def jwt_header(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def test_two_hundred_simultaneous_refreshes_of_one_session_over_both_replicas(
        replicas: tuple[ActasServer, ActasServer]) -> None:
    """No deadlock, no error, no duplicate or lost row: every refresh gets its token."""
    a, b = replicas
    with _api(a) as api_a, _browser() as browser:
        _, email = _user(api_a)
        session_id = _ok(browser.post(f"{a.url}/v1/client/sign_ins", json={
            "identifier": email, "password": PASSWORD}))["response"]["created_session_id"]
        cookies = dict(browser.cookies)
        barrier = threading.Barrier(40, timeout=120)

        def refresh(i: int) -> tuple[int, str]:
            server = (a, b)[i % 2]
            with httpx.Client(timeout=120, trust_env=False, cookies=cookies,
                              headers={"Origin": APP_ORIGIN}) as client:
                if i < 40:
                    barrier.wait()
                response = _mint(client, server, session_id)
                return response.status_code, response.text[:200]

        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(refresh, range(200)))

        assert Counter(status for status, _ in results) == {200: 200}, results
        sessions = _ok(api_a.get("/v1/sessions", params={"client_id": _ok(
            browser.get(f"{a.url}/v1/client"))["response"]["id"]}))
        assert [s["id"] for s in sessions] == [session_id]
        assert sessions[0]["status"] == "active"


def test_audit_appends_from_both_replicas_at_once_keep_one_chain(
        replicas: tuple[ActasServer, ActasServer], database_url: str, tmp_path: Path) -> None:
    """No fork: the chain head serialises appends across processes."""
    a, b = replicas
    with _api(a) as api_a:
        user_id, _ = _user(api_a)

    def issue(i: int) -> int:
        with _api((a, b)[i % 2]) as api:
            return api.post("/v1/actor_tokens", json={
                "user_id": user_id, "actor": {"sub": f"op_{i}"}, "reason": "r"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(issue, range(80))) == {200}
    result = run_actas("audit", "verify", "--data-dir", "cli", cwd=tmp_path,
                       env=_env(database_url))
    assert result.returncode == 0 and "audit chain OK" in result.stdout, described(result)
