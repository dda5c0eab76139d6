"""The ``actas`` command as an operator runs it: real child processes, real HTTP.

Every command runs with its own temporary working directory and data
directory. The read-mostly checks of a running server share one module-scoped
``actas serve`` to keep the file fast; tests that need a fresh server start
their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from actas.server.db.schema import User
from tests.support.flows import PASSWORD
from tests.support.processes import ActasServer, actas_env, described, free_port, run_actas
from tests.support.receivers import wait_until

# Matches the key on its own line of the start-up banner, not the word "sk_…" in prose.
SECRET_KEY_LINE = re.compile(r"^\s+(sk_[A-Za-z0-9_-]{20,})\s*$", re.MULTILINE)
CONFIGURED_SECRET_KEY = "sk_test_" + "c" * 40
# Same default as tests/conftest.py: ACTAS_TEST_BACKENDS=sqlite narrows a quick run.
BACKENDS = os.environ.get("ACTAS_TEST_BACKENDS", "sqlite,postgresql").split(",")


def printed_secret_keys(stdout: str) -> list[str]:
    return SECRET_KEY_LINE.findall(stdout)


def http(server: ActasServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, trust_env=False, **kwargs)


def backend(server: ActasServer, secret_key: str) -> httpx.Client:
    return http(server, headers={"Authorization": f"Bearer {secret_key}"})


def jwks_kids(server: ActasServer) -> set[str]:
    with http(server) as client:
        response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200, f"{response.text}\n{server.output()}"
    return {key["kid"] for key in response.json()["keys"]}


# -- migrate -------------------------------------------------------------------------------


def test_migrate_creates_the_database_and_a_private_instance_secret_idempotently(
        tmp_path: Path) -> None:
    result = run_actas("migrate", "--data-dir", "data", cwd=tmp_path)

    assert result.returncode == 0, described(result)
    database = tmp_path / "data" / "actas.db"
    with closing(sqlite3.connect(database)) as connection:
        (revisions,) = connection.execute("SELECT count(*) FROM alembic_version").fetchone()
    assert revisions == 1
    secret = tmp_path / "data" / "instance_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    secret_text = secret.read_text()
    assert len(secret_text.strip()) >= 32

    again = run_actas("migrate", "--data-dir", "data", cwd=tmp_path)

    assert again.returncode == 0, described(again)
    # It encrypts the signing keys at rest: replacing it would lose them.
    assert secret.read_text() == secret_text


def test_migrate_defaults_to_dot_actas_in_the_working_directory(tmp_path: Path) -> None:
    result = run_actas("migrate", cwd=tmp_path)

    assert result.returncode == 0, described(result)
    assert (tmp_path / ".actas" / "actas.db").is_file()
    assert (tmp_path / ".actas" / "instance_secret").is_file()


# -- users create -------------------------------------------------------------------------


def create_user(cwd: Path, email: str, *args: str, input: str | None = None
                ) -> subprocess.CompletedProcess[str]:
    return run_actas("users", "create", "--data-dir", "data", "--email", email, *args,
                     cwd=cwd, input=input)


def test_users_create_prints_the_new_user_as_json(tmp_path: Path) -> None:
    result = create_user(tmp_path, "ada@example.com", "--password", PASSWORD)

    assert result.returncode == 0, described(result)
    created = json.loads(result.stdout)
    assert created["id"].startswith("user_")
    assert created["email_address"] == "ada@example.com"


def test_users_create_with_a_taken_email_fails_with_one_line(tmp_path: Path) -> None:
    first = create_user(tmp_path, "ada@example.com", "--password", PASSWORD)
    assert first.returncode == 0, described(first)

    again = create_user(tmp_path, "ada@example.com", "--password", PASSWORD)

    assert again.returncode != 0, described(again)
    assert again.stdout == "", described(again)
    assert "Traceback" not in again.stderr, described(again)
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1, described(again)
    assert "form_identifier_exists" in lines[0]


# -- serve: one shared server on SQLite ------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActasServer]:
    """``actas serve`` on a fresh SQLite data dir, no ACTAS_SECRET_KEY: it generates one."""
    workdir = tmp_path_factory.mktemp("served")
    with ActasServer(["--data-dir", "data"], cwd=workdir) as server:
        yield server


@pytest.fixture(scope="module")
def generated_key(served: ActasServer) -> str:
    keys = printed_secret_keys(served.stdout())
    assert len(keys) == 1, served.output()
    return keys[0]


def test_serve_prints_the_generated_secret_key_once(served: ActasServer,
                                                    generated_key: str) -> None:
    assert served.stdout().count(generated_key) == 1, served.output()
    assert generated_key not in served.stderr(), served.output()


def test_serve_shows_the_generated_secret_key_before_any_request(served: ActasServer) -> None:
    # An operator under systemd or docker (stdout not a TTY) must see the key at start-up,
    # not whenever the first request's access log happens to flush stdout.
    assert served.stdout_when_listening is not None
    assert printed_secret_keys(served.stdout_when_listening), served.output()


def test_serve_says_how_to_create_the_first_operator(served: ActasServer) -> None:
    assert served.stdout_when_listening is not None
    assert "actas operators create --email you@example.com --role owner" in \
        served.stdout_when_listening, served.output()


def test_generated_secret_key_authenticates_the_backend_api(served: ActasServer,
                                                            generated_key: str) -> None:
    with backend(served, generated_key) as client:
        response = client.get("/v1/users")

    assert response.status_code == 200, f"{response.text}\n{served.output()}"
    assert isinstance(response.json(), list)


@pytest.mark.parametrize("authorization", [
    "Bearer sk_" + "w" * 43,
    "Bearer not_a_secret_key",
    None,
])
def test_backend_api_refuses_a_wrong_or_missing_key_with_the_error_envelope(
        served: ActasServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with http(served, headers=headers) as client:
        response = client.get("/v1/users")

    assert response.status_code == 401, f"{response.text}\n{served.output()}"
    assert response.headers["content-type"].startswith("application/json")
    (error,) = response.json()["errors"]
    assert {"code", "message", "long_message", "meta"} <= error.keys()
    assert error["code"] in {"authentication_invalid", "authorization_header_format_invalid",
                             "authorization_header_missing"}


def test_serve_publishes_an_openapi_3_1_document(served: ActasServer) -> None:
    with http(served) as client:
        response = client.get("/openapi.json")

    assert response.status_code == 200, f"{response.text}\n{served.output()}"
    assert response.json()["openapi"].startswith("3.1.")


def test_serve_uses_its_own_address_as_the_issuer(served: ActasServer) -> None:
    with http(served) as client:
        response = client.get("/.well-known/openid-configuration")

    assert response.status_code == 200, f"{response.text}\n{served.output()}"
    assert response.json()["issuer"] == served.url


def test_users_create_reads_the_password_from_stdin(served: ActasServer) -> None:
    email = f"stdin-{uuid.uuid4().hex[:8]}@example.com"
    result = create_user(served.cwd, email, input=PASSWORD + "\n")
    assert result.returncode == 0, described(result)
    assert json.loads(result.stdout)["id"].startswith("user_")

    # The password works, so it was read without its newline.
    with http(served, headers={"Origin": served.url}) as browser:
        response = browser.post("/v1/client/sign_ins",
                                json={"identifier": email, "password": PASSWORD})

    assert response.status_code == 200, f"{response.text}\n{served.output()}"


def test_keys_rotate_publishes_a_new_key_that_the_server_signs_with(served: ActasServer,
                                                            generated_key: str) -> None:
    before = jwks_kids(served)
    result = run_actas("keys", "rotate", "--data-dir", "data", "--publish-lead", "0",
                       cwd=served.cwd)
    assert result.returncode == 0, described(result)
    kid = json.loads(result.stdout)["kid"]

    assert kid not in before
    assert jwks_kids(served) == before | {kid}
    # --publish-lead 0: the running server signs with it as soon as it re-reads the schedule.
    with backend(served, generated_key) as client:
        user = client.post("/v1/users", json={
            "email_address": [f"rotate-{uuid.uuid4().hex[:8]}@example.com"],
            "password": PASSWORD})
        assert user.status_code == 200, user.text
        with http(served, headers={"Origin": served.url}) as browser:
            sign_in = browser.post("/v1/client/sign_ins", json={
                "identifier": user.json()["email_addresses"][0]["email_address"],
                "password": PASSWORD})
        assert sign_in.status_code == 200, sign_in.text
        session_id = sign_in.json()["response"]["created_session_id"]

        def signs_with_the_new_key() -> bool:
            token = client.post(f"/v1/sessions/{session_id}/tokens")
            assert token.status_code == 200, f"{token.text}\n{served.output()}"
            return bool(pyjwt.get_unverified_header(token.json()["jwt"])["kid"] == kid)

        # Within the key schedule's cache time (10 s; the bound here only stops a hang).
        wait_until(signs_with_the_new_key, timeout=120)


# -- serve: fresh servers ---------------------------------------------------------------------


def test_restarted_serve_does_not_print_a_secret_key_again(tmp_path: Path) -> None:
    with ActasServer(["--data-dir", "data"], cwd=tmp_path) as first:
        pass
    keys = printed_secret_keys(first.stdout())
    assert len(keys) == 1, first.output()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert first.returncode in {0, -signal.SIGTERM}, first.output()

    with ActasServer(["--data-dir", "data"], cwd=tmp_path) as second:
        with backend(second, keys[0]) as client:
            response = client.get("/v1/users")
        assert response.status_code == 200, f"{response.text}\n{second.output()}"

    assert printed_secret_keys(second.stdout()) == [], second.output()
    assert "sk_" not in second.stdout() + second.stderr(), second.output()


@pytest.mark.postgresql
@pytest.mark.skipif("postgresql" not in BACKENDS, reason="ACTAS_TEST_BACKENDS excludes it")
def test_serve_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    url = make_url(postgres_url).set(drivername="postgresql")
    password = url.password or "not-the-real-password"  # trust auth ignores it
    url = url.set(password=password)
    plain_url = url.render_as_string(hide_password=False)
    assert plain_url.startswith("postgresql://")
    email = f"pg-{uuid.uuid4().hex[:8]}@example.com"

    env = actas_env(ACTAS_SECRET_KEY=CONFIGURED_SECRET_KEY)
    with ActasServer(["--data-dir", "data", "--database-url", plain_url], cwd=tmp_path,
                     env=env) as server, backend(server, CONFIGURED_SECRET_KEY) as client:
        created = client.post("/v1/users",
                              json={"email_address": [email], "password": PASSWORD})
        assert created.status_code == 200, f"{created.text}\n{server.output()}"
        user_id = created.json()["id"]
        read = client.get(f"/v1/users/{user_id}")
        assert read.status_code == 200, f"{read.text}\n{server.output()}"

    assert read.json()["email_addresses"][0]["email_address"] == email
    assert str(password) not in server.stdout() + server.stderr()
    assert printed_secret_keys(server.stdout()) == [], server.output()
    assert not (tmp_path / "data" / "actas.db").exists()
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            stored = connection.scalar(sqlalchemy.select(User.id).where(User.id == user_id))
    finally:
        engine.dispose()
    assert stored == user_id


# -- bad configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(("variable", "value"), [
    ("ACTAS_PORT", "notanumber"),
    ("ACTAS_SECRET_KEY", "short"),
    ("ACTAS_DATABASE_URL", "mysql://actas@127.0.0.1/actas"),
    ("ACTAS_DATABASE_URL", "not a database url"),
    ("ACTAS_HOST", "x" * 64),  # no address and no name: refused before any lookup
])
def test_serve_with_bad_configuration_exits_2_with_one_line(tmp_path: Path, variable: str,
                                                            value: str) -> None:
    # A free port, so that a regression that starts the server anyway harms nothing.
    env = actas_env(ACTAS_PORT=str(free_port()))
    env[variable] = value

    result = run_actas("serve", "--data-dir", "data", cwd=tmp_path, env=env, timeout=60)

    assert result.returncode == 2, described(result)
    assert "Traceback" not in result.stderr, described(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, described(result)
    assert variable in lines[0], described(result)
    assert "sk_" not in result.stdout


# -- operators: the lifecycle -----------------------------------------------------------------

def test_operators_lifecycle_disable_enable_set_role_list_each_audited(tmp_path: Path) -> None:
    def actas(*args: str) -> subprocess.CompletedProcess[str]:
        result = run_actas("operators", *args, "--data-dir", "data", cwd=tmp_path)
        assert result.returncode == 0, described(result)
        return result

    created = json.loads(actas("create", "--email", "sam@support.test", "--role", "support",
                               "--password", PASSWORD).stdout)
    disabled = json.loads(actas("disable", "Sam@Support.test").stdout)
    assert (disabled["id"], disabled["disabled"]) == (created["id"], True)
    assert json.loads(actas("enable", created["id"]).stdout)["disabled"] is False
    assert json.loads(actas("set-role", created["id"], "viewer").stdout)["role"] == "viewer"
    [listed] = [json.loads(line) for line in actas("list").stdout.splitlines()]
    assert listed == {"id": created["id"], "email_address": "sam@support.test", "name": None,
                      "role": "viewer", "disabled": False}

    missing = run_actas("operators", "disable", "nobody@support.test", "--data-dir", "data",
                        cwd=tmp_path)
    assert missing.returncode == 2 and "No operator" in missing.stderr, described(missing)

    with sqlite3.connect(tmp_path / "data" / "actas.db") as db:
        types = [row[0] for row in db.execute(
            "SELECT type FROM audit_events WHERE type LIKE 'operator.%' ORDER BY seq")]
    assert types == ["operator.disabled", "operator.enabled", "operator.role_changed"]


def test_serve_runs_several_worker_processes_on_one_database(tmp_path: Path) -> None:
    env = actas_env(ACTAS_SECRET_KEY=CONFIGURED_SECRET_KEY)
    with ActasServer(["--data-dir", "data", "--workers", "2"], cwd=tmp_path,
                     env=env) as server, backend(server, CONFIGURED_SECRET_KEY) as api:
        created = api.post("/v1/users", json={"email_address": ["ada@example.com"]})
        assert created.status_code == 200, server.output()
        for _ in range(20):  # whichever process answers sees the same database
            fetched = api.get(f"/v1/users/{created.json()['id']}")
            assert fetched.status_code == 200, server.output()
        # Both processes come up (on a loaded machine the second may still be starting).
        wait_until(lambda: len(set(re.findall(r"Started worker-(\d+)",
                                              server.stdout()))) >= 2, server.output)
        assert "Unexpected exit" not in server.output(), server.output()


def test_serve_listens_on_a_host_given_by_name(tmp_path: Path) -> None:
    """``--host localhost`` is resolved (granian binds addresses only), IPv4 first."""
    with ActasServer(["--data-dir", "data", "--host", "localhost"], cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200, server.output()
        assert f"Listening at: http://127.0.0.1:{server.port}" in server.stdout()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_access_log_has_every_request_but_a_successful_refresh(tmp_path: Path,
                                                                   workers: str) -> None:
    # Plain HTTP on loopback: the client cookie without Secure, so httpx sends it back.
    env = actas_env(ACTAS_SECRET_KEY=CONFIGURED_SECRET_KEY, ACTAS_COOKIE_SECURE="false")
    with ActasServer(["--data-dir", "data", "--workers", workers], cwd=tmp_path,
                     env=env) as server:
        with backend(server, CONFIGURED_SECRET_KEY) as api:
            created = api.post("/v1/users", json={"email_address": ["ada@example.com"],
                                                  "password": PASSWORD})
            assert created.status_code == 200, server.output()
        with http(server, headers={"Origin": server.url}) as browser:
            signed_in = browser.post("/v1/client/sign_ins", json={
                "identifier": "ada@example.com", "password": PASSWORD})
            assert signed_in.status_code == 200, f"{signed_in.text}\n{server.output()}"
            session_id = signed_in.json()["response"]["created_session_id"]
            for _ in range(3):
                minted = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
                assert minted.status_code == 200, f"{minted.text}\n{server.output()}"
            refused = browser.post("/v1/client/sessions/sess_unknown/tokens", json={})
            assert refused.status_code == 404, refused.text
        # Lines are written as requests end; the refused refresh was the last one.
        wait_until(lambda: "sess_unknown/tokens" in server.stdout(), server.output)

    logged = server.stdout()
    assert '"POST /v1/users HTTP/1.1" 200' in logged, server.output()
    assert '"POST /v1/client/sign_ins HTTP/1.1" 200' in logged, server.output()
    assert '"POST /v1/client/sessions/sess_unknown/tokens HTTP/1.1" 404' in logged
    assert f"/v1/client/sessions/{session_id}/tokens" not in logged, server.output()


# -- impersonate, and commands that read an existing install --------------------------------


def test_impersonate_prints_a_one_time_link_under_the_dashboards_policy(tmp_path: Path) -> None:
    def actas(*args: str) -> subprocess.CompletedProcess[str]:
        return run_actas(*args, "--data-dir", "data", cwd=tmp_path)

    assert create_user(tmp_path, "ada@example.com", "--password", PASSWORD).returncode == 0
    for email, role in (("sam@support.test", "support"), ("olivia@support.test", "owner")):
        made = actas("operators", "create", "--email", email, "--role", role,
                     "--password", PASSWORD)
        assert made.returncode == 0, described(made)

    linked = actas("impersonate", "Ada@Example.com", "--as", "sam@support.test",
                   "--reason", "Ticket #77")
    refused = actas("impersonate", "ada@example.com", "--as", "sam@support.test",
                    "--reason", "Ticket #78", "--mode", "full")
    full = actas("impersonate", "ada@example.com", "--as", "olivia@support.test",
                 "--reason", "Ticket #79", "--mode", "full")
    nobody = actas("impersonate", "nobody@example.com", "--as", "sam@support.test",
                   "--reason", "r")

    assert linked.returncode == 0, described(linked)
    assert re.fullmatch(r"http://127\.0\.0\.1:4000/v1/tickets/accept\?ticket=tkt_\S+\n",
                        linked.stdout), linked.stdout
    assert "read-only" in linked.stderr and "the user will see it" in linked.stderr
    assert refused.returncode == 2 and "impersonation_mode_not_permitted" in refused.stderr
    assert full.returncode == 0 and "full" in full.stderr
    assert nobody.returncode == 2 and "resource_not_found" in nobody.stderr
    with sqlite3.connect(tmp_path / "data" / "actas.db") as db:
        rows = db.execute("SELECT reason, mode, operator_id IS NOT NULL FROM actor_tokens "
                          "ORDER BY id").fetchall()
    assert rows == [("Ticket #77", "read_only", 1), ("Ticket #79", "full", 1)]


def test_reading_commands_refuse_to_create_an_empty_database(tmp_path: Path) -> None:
    result = run_actas("audit", "verify", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2, described(result)
    assert "There is no actas database at data/actas.db" in result.stderr
    assert ".actas/dev" in result.stderr
    assert not (tmp_path / "data" / "actas.db").exists()


def test_help_reads_as_prose(tmp_path: Path) -> None:
    top = run_actas("--help", cwd=tmp_path)
    dev = run_actas("dev", "--help", cwd=tmp_path)
    assert "``" not in top.stdout and "impersonate" in top.stdout
    assert "the demo app (default 3000)" in dev.stdout and ".actas/dev" in dev.stdout
