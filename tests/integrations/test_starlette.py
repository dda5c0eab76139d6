"""actas.integrations.starlette: the ASGI middleware, with Starlette's own test client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import actas
from actas.integrations.starlette import AuthMiddleware
from tests.integrations.conftest import APP_LOGGER, Tokens, log_identity

log = logging.getLogger(APP_LOGGER)


def describe(auth: actas.Auth) -> dict[str, Any]:
    return {"user_id": auth.user_id, "session_id": auth.session_id,
            "actor": auth.actor.sub if auth.actor else None,
            "is_impersonated": auth.is_impersonated, "reason": auth.signed_out_reason}


async def whoami(request: Request) -> JSONResponse:
    assert request.state.auth is request.auth
    log.info("whoami")
    return JSONResponse(describe(request.auth))


async def whoami_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(describe(websocket.auth))
    await websocket.close()


@pytest.fixture
def client(verifier: actas.Verifier) -> TestClient:
    app = Starlette(routes=[Route("/whoami", whoami), WebSocketRoute("/ws", whoami_ws)],
                    middleware=[Middleware(AuthMiddleware, verifier=verifier)])
    return TestClient(app)


def signed_in_as(tokens: Tokens, *, session_id: str | None = None,
                 actor: str | None = None) -> dict[str, Any]:
    return {"user_id": tokens.user_id, "session_id": session_id or tokens.session_id,
            "actor": actor, "is_impersonated": actor is not None, "reason": None}


def test_bearer_token_signs_in(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/whoami", headers={"Authorization": f"Bearer {tokens.signed_in}"})
    assert response.json() == signed_in_as(tokens)


def test_session_cookie_signs_in(client: TestClient, tokens: Tokens) -> None:
    client.cookies.set("__session", tokens.signed_in)
    assert client.get("/whoami").json() == signed_in_as(tokens)


def test_impersonated_token_shows_the_actor(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/whoami", headers={"Authorization": f"Bearer {tokens.impersonated}"})
    assert response.json() == signed_in_as(tokens, session_id=tokens.impersonated_session_id,
                                           actor="op_alice")


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"), ("garbage", "malformed"), ("expired", "expired")])
def test_a_signed_out_request_still_reaches_the_app_and_says_why(
        client: TestClient, tokens: Tokens, token: str | None, reason: str) -> None:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {tokens.expired if token == 'expired' else token}"
    response = client.get("/whoami", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"user_id": None, "session_id": None, "actor": None,
                               "is_impersonated": False, "reason": reason}


def test_the_bearer_header_wins_over_the_cookie(client: TestClient, tokens: Tokens) -> None:
    client.cookies.set("__session", tokens.signed_in)
    response = client.get("/whoami", headers={"Authorization": f"Bearer {tokens.impersonated}"})
    assert response.json()["actor"] == "op_alice"


def test_websockets_are_authenticated_too(client: TestClient, tokens: Tokens) -> None:
    with client.websocket_connect(
            "/ws", headers={"Authorization": f"Bearer {tokens.impersonated}"}) as websocket:
        assert websocket.receive_json()["actor"] == "op_alice"


def test_log_records_of_an_impersonated_request_name_the_actor(
        client: TestClient, tokens: Tokens, app_log: list[logging.LogRecord]) -> None:
    client.get("/whoami", headers={"Authorization": f"Bearer {tokens.impersonated}"})
    assert log_identity(app_log, "whoami") == (tokens.user_id, "op_alice")
    app_log.clear()

    client.get("/whoami", headers={"Authorization": f"Bearer {tokens.signed_in}"})
    assert log_identity(app_log, "whoami") == (tokens.user_id, None)

    log.info("after the request")
    assert log_identity(app_log, "after the request") == (None, None)
