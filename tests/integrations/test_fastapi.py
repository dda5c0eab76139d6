"""actas.integrations.fastapi: dependencies over the Starlette middleware, and their OpenAPI."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

import actas
from actas.integrations.fastapi import CurrentAuth, forbid_impersonation, install, require_auth
from tests.integrations.conftest import APP_LOGGER, Tokens, assert_refused, log_identity

log = logging.getLogger(APP_LOGGER)


def make_app(verifier: actas.Verifier) -> FastAPI:
    app = FastAPI()
    install(app, verifier=verifier)

    @app.get("/whoami")
    def whoami(auth: CurrentAuth) -> dict[str, Any]:  # sync: runs in the threadpool
        log.info("whoami")
        return {"user_id": auth.user_id, "session_id": auth.session_id,
                "actor": auth.actor.sub if auth.actor else None,
                "is_impersonated": auth.is_impersonated, "reason": auth.signed_out_reason}

    @app.get("/orders", dependencies=[Depends(require_auth)])
    async def orders(auth: CurrentAuth) -> dict[str, Any]:
        log.info("orders")
        return {"user_id": auth.user_id}

    @app.post("/account/delete")
    def delete_account(auth: Annotated[actas.Auth, Depends(forbid_impersonation)]
                       ) -> dict[str, Any]:
        return {"deleted": auth.user_id}

    return app


@pytest.fixture
def client(verifier: actas.Verifier) -> TestClient:
    return TestClient(make_app(verifier))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_token_signs_in(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.signed_in)).json() == {
        "user_id": tokens.user_id, "session_id": tokens.session_id, "actor": None,
        "is_impersonated": False, "reason": None}


def test_session_cookie_signs_in(client: TestClient, tokens: Tokens) -> None:
    client.cookies.set("__session", tokens.signed_in)
    assert client.get("/whoami").json()["user_id"] == tokens.user_id
    assert client.get("/orders").json() == {"user_id": tokens.user_id}


def test_impersonated_token_shows_the_actor(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.impersonated)).json() == {
        "user_id": tokens.user_id, "session_id": tokens.impersonated_session_id,
        "actor": "op_alice", "is_impersonated": True, "reason": None}


def test_current_auth_lets_a_signed_out_request_through(client: TestClient) -> None:
    response = client.get("/whoami")
    assert response.status_code == 200 and response.json()["reason"] == "missing"


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"), ("garbage", "malformed"), ("expired", "expired")])
@pytest.mark.parametrize(("method", "path"), [("GET", "/orders"), ("POST", "/account/delete")])
def test_guards_refuse_a_signed_out_request_with_401_saying_why(
        client: TestClient, tokens: Tokens, method: str, path: str, token: str | None,
        reason: str) -> None:
    headers = {} if token is None else bearer(tokens.expired if token == "expired" else token)
    response = client.request(method, path, headers=headers)
    assert_refused(response.status_code, response.json(), expected_status=401,
                   code="signed_out", reason=reason)
    assert response.headers["www-authenticate"] == "Bearer"


def test_require_auth_admits_an_impersonated_request(client: TestClient,
                                                     tokens: Tokens) -> None:
    response = client.get("/orders", headers=bearer(tokens.impersonated))
    assert response.status_code == 200 and response.json() == {"user_id": tokens.user_id}


def test_forbid_impersonation_refuses_an_impersonated_token(client: TestClient,
                                                            tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.impersonated))
    assert_refused(response.status_code, response.json(), expected_status=403,
                   code="impersonated_session_forbidden")


def test_forbid_impersonation_admits_the_user_themselves(client: TestClient,
                                                         tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.signed_in))
    assert response.status_code == 200 and response.json() == {"deleted": tokens.user_id}


def test_openapi_shows_the_bearer_and_cookie_schemes_on_guarded_routes(
        client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert len(schemes) == 2
    [bearer_name] = [n for n, s in schemes.items() if s["type"] == "http"]
    [cookie_name] = [n for n, s in schemes.items() if s["type"] == "apiKey"]
    assert (bearer_name, cookie_name) == ("HTTPBearer", "APIKeyCookie")
    assert schemes[bearer_name]["scheme"] == "bearer"
    assert schemes[bearer_name]["bearerFormat"] == "JWT"
    assert schemes[cookie_name]["in"] == "cookie" and schemes[cookie_name]["name"] == "__session"

    either = [{bearer_name: []}, {cookie_name: []}]  # OpenAPI: any one of the list suffices
    paths = schema["paths"]
    for guarded in (paths["/orders"]["get"], paths["/account/delete"]["post"]):
        assert sorted(guarded["security"], key=str) == sorted(either, key=str)
    assert "security" not in paths["/whoami"]["get"]


def test_log_records_of_an_impersonated_request_name_the_actor(
        client: TestClient, tokens: Tokens, app_log: list[logging.LogRecord]) -> None:
    client.get("/whoami", headers=bearer(tokens.impersonated))  # a sync endpoint
    client.get("/orders", headers=bearer(tokens.impersonated))  # an async one
    assert log_identity(app_log, "whoami") == (tokens.user_id, "op_alice")
    assert log_identity(app_log, "orders") == (tokens.user_id, "op_alice")
    app_log.clear()

    client.get("/whoami", headers=bearer(tokens.signed_in))
    assert log_identity(app_log, "whoami") == (tokens.user_id, None)
    log.info("after the request")
    assert log_identity(app_log, "after the request") == (None, None)
