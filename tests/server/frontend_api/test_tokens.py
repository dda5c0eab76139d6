"""Session tokens minted by the Frontend API verify with an independent JWT library."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import sqlalchemy
from fastapi import FastAPI
from sqlalchemy import inspect, update
from sqlalchemy.engine import Engine
from starlette.responses import Response
from starlette.testclient import TestClient

from actas.server import Instance, create_app, token_refresh
from actas.server.clock import FrozenClock
from actas.server.db.engine import create_engine
from actas.server.db.schema import Base, User
from actas.server.db.schema import Session as SessionRow
from actas.server.http.cookies import client_cookie_name, session_cookie_header, set_session
from tests.conftest import APP_ORIGIN
from tests.support.flows import create_actor_token, create_user, error_code, mint, redeem, sign_in

SESSIONS = Base.metadata.tables[SessionRow.__tablename__]
USERS = Base.metadata.tables[User.__tablename__]
TOUCH_S = 300  # sessions.TOUCH_RESOLUTION_MS: below a user session's timeout / 10


def _verify(app_client: TestClient, token: str) -> dict[str, object]:
    jwks = app_client.get("/.well-known/jwks.json").json()
    header = pyjwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims: dict[str, object] = pyjwt.decode(
        token, pyjwt.PyJWK(key).key, algorithms=["RS256"], issuer="https://actas.test",
        options={"require": ["exp", "nbf", "iat", "iss", "sub"]},
    )
    return claims


def test_token_verifies_against_served_jwks_with_the_documented_claims(
        backend: TestClient, browser: TestClient, app_client: TestClient) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)

    token = mint(browser, session_id)

    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and header["kid"]
    claims = _verify(app_client, token)
    assert claims["sub"] == user["id"]
    assert claims["sid"] == session_id
    assert claims["azp"] == APP_ORIGIN
    assert claims["iss"] == "https://actas.test"
    assert claims["v"] == 2
    assert claims["nbf"] == claims["iat"] - 5  # type: ignore[operator]
    assert claims["exp"] == claims["iat"] + 60  # type: ignore[operator]
    assert str(claims["jti"]).startswith("jti_")
    assert "act" not in claims


def test_token_is_also_set_as_the_session_cookie(backend: TestClient,
                                                 browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)

    response = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"__session={response.json()['jwt']};")
    assert "Secure" in cookie and "SameSite=lax" in cookie and "Max-Age=60" in cookie


def test_every_token_has_a_fresh_jti(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)
    first, second = mint(browser, session_id), mint(browser, session_id)
    assert pyjwt.decode(first, options={"verify_signature": False})["jti"] != \
        pyjwt.decode(second, options={"verify_signature": False})["jti"]


def test_ended_session_mints_no_token(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)

    ended = browser.post(f"/v1/client/sessions/{session_id}/end", json={})
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})

    assert ended.status_code == 200 and ended.json()["response"]["status"] == "ended"
    assert refused.status_code == 400
    assert error_code(refused) == "session_not_active"
    assert refused.json()["errors"][0]["meta"]["status"] == "ended"


def test_revoked_session_mints_no_token(backend: TestClient, browser: TestClient) -> None:
    create_user(backend)
    session_id = sign_in(browser)

    revoked = backend.post(f"/v1/sessions/{session_id}/revoke")
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    refused_backend = backend.post(f"/v1/sessions/{session_id}/tokens")

    assert revoked.json()["status"] == "revoked"
    assert error_code(refused) == "session_not_active"
    assert error_code(refused_backend) == "session_not_active"


def test_expired_and_abandoned_sessions_mint_no_token(
        backend: TestClient, browser: TestClient, clock: FrozenClock,
        instance: Instance) -> None:
    create_user(backend)
    settings = instance.settings
    idle = sign_in(browser)
    clock.advance(seconds=settings.session_inactivity_timeout - 1)
    kept_alive = sign_in(browser)
    mint(browser, kept_alive)
    clock.advance(seconds=2)

    abandoned = browser.post(f"/v1/client/sessions/{idle}/tokens", json={})
    assert abandoned.json()["errors"][0]["meta"]["status"] == "abandoned"
    mint(browser, kept_alive)  # activity keeps a session alive ...

    # Activity is recorded to the touch interval (5 minutes for a user's session), so a
    # session stays alive when refreshed within the inactivity timeout less that.
    keep_alive_within = settings.session_inactivity_timeout - TOUCH_S
    for _ in range(settings.session_max_lifetime // keep_alive_within):
        clock.advance(seconds=keep_alive_within)
        mint(browser, kept_alive)
    clock.advance(seconds=settings.session_inactivity_timeout)
    expired = browser.post(f"/v1/client/sessions/{kept_alive}/tokens", json={})
    # ... but never past its absolute lifetime.
    assert expired.json()["errors"][0]["meta"]["status"] == "expired"
    listed = backend.get("/v1/sessions", params={"status": "expired"}).json()
    assert [s["id"] for s in listed] == [kept_alive]


def test_another_browsers_session_is_invisible(backend: TestClient, browser: TestClient,
                                               instance: Instance) -> None:
    from actas.server import create_app

    create_user(backend)
    victim_session = sign_in(browser)
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as attacker:
        create_user(backend, "eve@example.com")
        sign_in(attacker, "eve@example.com")
        stolen = attacker.post(f"/v1/client/sessions/{victim_session}/tokens", json={})
        ended = attacker.post(f"/v1/client/sessions/{victim_session}/end", json={})
    assert stolen.status_code == 404 and error_code(stolen) == "resource_not_found"
    assert ended.status_code == 404
    mint(browser, victim_session)  # still alive


@pytest.mark.parametrize("session_id", ["sess_%C3%A9", "sess_%0A", "sess_%7F"])
def test_a_session_id_no_session_can_have_is_not_found(
        backend: TestClient, browser: TestClient, session_id: str) -> None:
    create_user(backend)
    sign_in(browser)
    response = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert response.status_code == 404 and error_code(response) == "resource_not_found"


def test_without_a_client_cookie_the_browser_is_signed_out(browser: TestClient) -> None:
    response = browser.post("/v1/client/sessions/sess_x/tokens", json={})
    assert response.status_code == 401 and error_code(response) == "signed_out"
    assert browser.get("/v1/client").json() == {"response": None, "client": None}


def test_banned_user_mints_no_token(backend: TestClient, browser: TestClient) -> None:
    user = create_user(backend)
    session_id = sign_in(browser)
    backend.post(f"/v1/users/{user['id']}/ban")
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert refused.status_code == 400 and refused.json()["errors"][0]["meta"]["status"] == \
        "revoked"


def test_a_refresh_writes_last_active_at_most_once_per_touch_interval(
        backend: TestClient, browser: TestClient, clock: FrozenClock) -> None:
    """Refresh is every browser's request every 50 s: it must not be a write each time."""
    user = create_user(backend)
    session_id = sign_in(browser)
    signed_in_at = clock.now_ms()

    def last_active() -> tuple[int, int | None]:
        session = backend.get(f"/v1/sessions/{session_id}").json()
        return session["last_active_at"], backend.get(
            f"/v1/users/{user['id']}").json()["last_active_at"]

    for _ in range(2):  # 50 s apart: within the interval, nothing is written
        clock.advance(seconds=50)
        mint(browser, session_id)
        assert last_active() == (signed_in_at, signed_in_at)

    clock.advance(seconds=TOUCH_S - 100)  # now exactly one interval since the sign-in
    mint(browser, session_id)
    assert last_active() == (clock.now_ms(), clock.now_ms())
    touched_at = clock.now_ms()

    clock.advance(seconds=50)
    mint(browser, session_id)
    assert last_active() == (touched_at, touched_at)


def test_a_refresh_waits_for_no_writer(backend: TestClient, browser: TestClient,
                                       engine: Engine, clock: FrozenClock) -> None:
    """Refreshes only read (until a touch is due): one held up behind a long write,
    or behind a sign-in's password hash, was where the multi-second p99 came from.
    Here a writer holds SQLite's write lock, or on PostgreSQL the session's and the
    user's rows, while the browser refreshes."""
    user = create_user(backend)
    session_id = sign_in(browser)
    clock.advance(seconds=50)  # within the touch interval: nothing to write

    with engine.connect() as writer:
        writer.begin()  # SQLite: BEGIN IMMEDIATE, the database's one write lock
        writer.execute(update(SESSIONS).where(SESSIONS.c.id == session_id)
                       .values(updated_at=SESSIONS.c.updated_at))
        writer.execute(update(USERS).where(USERS.c.id == user["id"])
                       .values(updated_at=USERS.c.updated_at))

        with ThreadPoolExecutor(1) as pool:
            refreshed = pool.submit(mint, browser, session_id)
            try:
                token = refreshed.result(timeout=60)  # a bound on a hang, not a timing
            finally:
                writer.rollback()  # lets a regressed refresh finish, to fail clearly
    assert pyjwt.decode(token, options={"verify_signature": False})["sid"] == session_id


def test_the_driver_read_of_a_refresh_is_the_row_sqlalchemy_reads(
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    """On SQLite a refresh reads its row through sqlite3, not SQLAlchemy
    (``token_refresh.read_on_sqlite``): the same values, of the same types, for a
    user's own session, an impersonation (its JSON ``actor``) and a banned user."""
    if instance.engine.dialect.name != "sqlite":
        pytest.skip("the driver read is SQLite's; PostgreSQL's is tests/server/db")
    user = create_user(backend)
    own = sign_in(browser)
    ticket = create_actor_token(backend, user["id"], actor={"name": "Alice Ops"})["token"]
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as support:
        impersonation = redeem(support, ticket)
        cookies_of = {own: browser.cookies, impersonation: support.cookies}

        def both(session_id: str) -> tuple[object, object]:
            cookie = cookies_of[session_id].get(client_cookie_name(instance.settings))
            params = token_refresh.read_params(cookie, session_id)
            assert params is not None
            with instance.reading() as connection:
                expected = connection.execute(
                    token_refresh._OWN_SESSION, params).one_or_none()
            return token_refresh.read_on_sqlite(instance, params), expected

        for session_id in (own, impersonation):
            read, expected = both(session_id)
            assert read == tuple(expected)  # type: ignore[arg-type]
            assert [type(v) for v in read] == [type(v) for v in expected]  # type: ignore[union-attr]
            # A second thread reading while the kept connection is busy reads pooled.
            with token_refresh._DriverRead.of(instance.engine)._lock:
                assert both(session_id)[0] == read
        read, _ = both(impersonation)
        assert isinstance(read, tuple) and read[4]["sub"] == "op_alice"  # the actor, parsed
        assert read[4]["name"] == "Alice Ops" and read[-1] is False  # banned, a bool
        backend.post(f"/v1/users/{user['id']}/ban")
        read, expected = both(own)
        assert isinstance(read, tuple) and read[-1] is True and read == tuple(expected)  # type: ignore[arg-type]
        # Another browser's session, with this browser's cookie: no row at all.
        other = token_refresh.read_params(
            support.cookies.get(client_cookie_name(instance.settings)), own)
        assert other is not None and token_refresh.read_on_sqlite(instance, other) is None


def test_the_kept_connection_of_the_refresh_read_closes_with_the_engine(
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    """The connection the refresh read keeps is closed by ``Engine.dispose`` (it left
    the pool, which dispose alone would not reach), and a fresh one serves after."""
    if instance.engine.dialect.name != "sqlite":
        pytest.skip("the driver read is SQLite's")
    create_user(backend)
    session_id = sign_in(browser)
    mint(browser, session_id)
    reader = token_refresh._DriverRead.of(instance.engine)
    kept = reader._kept
    assert kept is not None
    instance.engine.dispose()
    assert reader._kept is None
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not merely forgotten
        kept.execute("SELECT 1")
    mint(browser, session_id)
    assert reader._kept is not None and reader._kept is not kept


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_the_refresh_read_leaves_an_in_memory_database_where_it_is(url: str) -> None:
    """An in-memory database lives in its pool's one connection per thread: the refresh
    read must not take it away (the thread's next checkout would open a new, empty
    database)."""
    engine = sqlalchemy.create_engine(url)
    try:
        Base.metadata.create_all(engine)
        params = {"session_id": "sess_none", "digest": "0" * 64}
        for _ in range(2):
            assert token_refresh._DriverRead.of(engine).fetch(engine, params) is None
            assert inspect(engine).has_table("sessions")
    finally:
        engine.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_forked_child_reads_on_its_own_connection(tmp_path: Path) -> None:
    """A child forked while a thread of the parent held the kept connection's lock
    reads, disposes its engine (``close=False``, as SQLAlchemy advises after a fork)
    and leaves the parent's connection open."""
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        Base.metadata.create_all(engine)
        params = {"session_id": "sess_none", "digest": "0" * 64}
        reader = token_refresh._DriverRead.of(engine)
        assert reader.fetch(engine, params) is None and reader._kept is not None
        read, write = os.pipe()
        with reader._lock:  # as the event loop reading at that moment
            pid = os.fork()
            if pid == 0:
                try:
                    engine.dispose(close=False)
                    if reader.fetch(engine, params) is None and reader._kept is not None:
                        os.write(write, b"ok")
                finally:
                    os._exit(0)
        os.close(write)
        try:
            ready, _, _ = select.select([read], [], [], 60)  # bounds a hang only
            assert ready and os.read(read, 2) == b"ok"
        finally:
            os.close(read)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        kept = reader._kept
        assert reader.fetch(engine, params) is None and reader._kept is kept  # still open
    finally:
        engine.dispose()


def test_the_refreshs_session_is_the_row_the_orm_loads(
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    """A refresh builds its session from the row it read, without the mapped constructor
    (``token_refresh._session``): every column it read equals the ORM's loaded row, and
    the object is transient, with no change for a flush to write."""
    user = create_user(backend)
    sign_in(browser)
    ticket = create_actor_token(backend, user["id"], actor={"name": "Alice Ops"})["token"]
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as support:
        session_id = redeem(support, ticket)
        params = token_refresh.read_params(
            support.cookies.get(client_cookie_name(instance.settings)), session_id)
    assert params is not None
    with instance.reading() as connection:
        found = connection.execute(token_refresh._OWN_SESSION, params).one()
    built = token_refresh._session(tuple(found), instance.now_ms())
    with instance.snapshot() as db:
        loaded = db.get(SessionRow, session_id)
        assert loaded is not None
        for column in token_refresh._COLUMNS:
            assert getattr(built, column) == getattr(loaded, column), column
    assert built.actor is not None and built.actor["name"] == "Alice Ops"
    state = inspect(built)
    assert state.transient and not state.modified


def test_a_driver_error_in_the_refresh_read_answers_503(
        instance: Instance, engine: Engine, backend: TestClient, browser: TestClient) -> None:
    """sqlite3's own OperationalError (the refresh reads outside SQLAlchemy) is raised as
    SQLAlchemy's: 503 ``database_unavailable``, never 500."""
    if instance.engine.dialect.name != "sqlite":
        pytest.skip("the driver read is SQLite's")
    create_user(backend)
    session_id = sign_in(browser)
    mint(browser, session_id)
    with engine.begin() as connection:  # the table the read needs is gone
        connection.exec_driver_sql("ALTER TABLE sessions RENAME TO sessions_elsewhere")
    refused = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert refused.status_code == 503 and error_code(refused) == "database_unavailable"
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE sessions_elsewhere RENAME TO sessions")
    mint(browser, session_id)


@pytest.mark.parametrize("secure", [False, True])
def test_the_session_cookie_header_is_the_one_starlette_writes(
        instance: Instance, secure: bool) -> None:
    """The refresh writes its Set-Cookie directly (``cookies.session_cookie_header``):
    byte for byte what ``set_session`` writes through Starlette, for a JWT and for a
    value that is not one (which takes Starlette's way)."""
    settings = dataclasses.replace(instance.settings, cookie_secure=secure)
    for value in (sign_in_jwt := "eyJhbGciOi.eyJzdWIiOi-_x.c2lnbmF0dXJl", "not a jwt; x=1"):
        response = Response()
        set_session(response, settings, value)
        assert session_cookie_header(settings, value) == \
            response.headers["set-cookie"].encode("latin-1")
    assert (b"; Secure" in session_cookie_header(settings, sign_in_jwt)) is secure


def test_the_refresh_ahead_of_the_app_answers_as_the_apps_own_route(
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    """``App`` answers the refresh before its middleware; the FastAPI route (reached
    here by calling FastAPI past ``App``) must give the same status and headers."""
    app = create_app(instance)

    async def past_the_shortcut(scope: Any, receive: Any, send: Any) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    create_user(backend)
    session_id = sign_in(browser)
    refresh = f"/v1/client/sessions/{session_id}/tokens"
    with TestClient(past_the_shortcut, base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as routed:
        routed.cookies = browser.cookies
        for origin in (APP_ORIGIN, "https://actas.test"):
            fast = browser.post(refresh, json={}, headers={"Origin": origin})
            slow = routed.post(refresh, json={}, headers={"Origin": origin})
            assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)

            def shape(response: httpx.Response) -> list[tuple[str, str]]:
                jwt = response.json()["jwt"]
                return [(name, value.replace(jwt, "JWT"))
                        for name, value in response.headers.multi_items()]

            assert shape(fast) == shape(slow), origin
