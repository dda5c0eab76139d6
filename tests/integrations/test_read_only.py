"""Read-only impersonation in every integration: unsafe methods refused before the view
runs, unless the view is marked ``allow_in_read_only``; nothing else changes.

Each framework gets the same small application: ``GET /orders``, ``POST /address``
(a write), ``POST /search`` (marked: it changes nothing), ``DELETE /account``
(``forbid_impersonation``), and on Starlette a route inside a ``Mount``. Every view
counts its calls, so a refusal is shown to have happened before the view ran.
This module is also the Django URLconf for these tests (``urlpatterns``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from django.views import View
from fastapi import Depends, FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import actas
from actas.integrations import django as on_django
from actas.integrations import fastapi as on_fastapi
from actas.integrations import flask as on_flask
from actas.integrations import impersonation_error
from actas.integrations import starlette as on_starlette
from tests.conftest import APP_ORIGIN
from tests.integrations.conftest import ISSUER, Tokens, assert_refused

CALLS: Counter[str] = Counter()
Call = Callable[[str, str, str | None], tuple[int, Any]]


# --- Starlette ---------------------------------------------------------------------
async def st_orders(request: Request) -> JSONResponse:
    CALLS["orders"] += 1
    return JSONResponse({"ok": True, "mode": request.auth.impersonation_mode})


async def st_address(_request: Request) -> JSONResponse:
    CALLS["address"] += 1
    return JSONResponse({"ok": True})


@on_starlette.allow_in_read_only
async def st_search(_request: Request) -> JSONResponse:
    CALLS["search"] += 1
    return JSONResponse({"ok": True})


async def st_delete(request: Request) -> JSONResponse:
    if request.auth.is_impersonated:  # Starlette has no guards: the view says it itself
        return JSONResponse({"errors": [impersonation_error().to_dict()]}, status_code=403)
    CALLS["delete"] += 1
    return JSONResponse({"ok": True})


def starlette_app(verifier: actas.Verifier) -> Any:
    return Starlette(routes=[
        Route("/orders", st_orders), Route("/address", st_address, methods=["POST"]),
        Route("/account", st_delete, methods=["DELETE"]),
        Route("/search", st_search, methods=["POST"]),
        Mount("/admin", routes=[Route("/address", st_address, methods=["POST"]),
                                Route("/search", st_search, methods=["POST"])]),
    ], middleware=[Middleware(on_starlette.AuthMiddleware, verifier=verifier)])


# --- FastAPI -------------------------------------------------------------------------
def fastapi_app(verifier: actas.Verifier) -> Any:
    app = FastAPI()
    on_fastapi.install(app, verifier=verifier)

    @app.get("/orders")
    def orders(auth: on_fastapi.CurrentAuth) -> dict[str, Any]:
        CALLS["orders"] += 1
        return {"ok": True, "mode": auth.impersonation_mode}

    @app.post("/address")
    def address() -> dict[str, Any]:
        CALLS["address"] += 1
        return {"ok": True}

    @app.post("/search")
    @on_fastapi.allow_in_read_only
    def search() -> dict[str, Any]:
        CALLS["search"] += 1
        return {"ok": True}

    @app.delete("/account", dependencies=[Depends(on_fastapi.forbid_impersonation)])
    def delete_account() -> dict[str, Any]:
        CALLS["delete"] += 1
        return {"ok": True}

    return app


# --- Flask ---------------------------------------------------------------------------
def flask_app(verifier: actas.Verifier) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    on_flask.Actas(app, verifier=verifier)

    @app.get("/orders")
    def orders() -> dict[str, Any]:
        from flask import g

        CALLS["orders"] += 1
        return {"ok": True, "mode": g.auth.impersonation_mode}

    @app.post("/address")
    def address() -> dict[str, Any]:
        CALLS["address"] += 1
        return {"ok": True}

    @app.post("/search")
    @on_flask.allow_in_read_only
    def search() -> dict[str, Any]:
        CALLS["search"] += 1
        return {"ok": True}

    @app.delete("/account")
    @on_flask.forbid_impersonation
    def delete_account() -> dict[str, Any]:
        CALLS["delete"] += 1
        return {"ok": True}

    return app


# --- Django --------------------------------------------------------------------------
def dj_orders(request: HttpRequest) -> JsonResponse:
    CALLS["orders"] += 1
    return JsonResponse({"ok": True,
                         "mode": request.auth.impersonation_mode})  # type: ignore[attr-defined]


def dj_address(_request: HttpRequest) -> JsonResponse:
    CALLS["address"] += 1
    return JsonResponse({"ok": True})


@on_django.allow_in_read_only
class DjSearch(View):
    def post(self, _request: HttpRequest) -> JsonResponse:
        CALLS["search"] += 1
        return JsonResponse({"ok": True})


@on_django.forbid_impersonation
def dj_delete(_request: HttpRequest) -> JsonResponse:
    CALLS["delete"] += 1
    return JsonResponse({"ok": True})


urlpatterns = [path("orders", dj_orders), path("address", dj_address),
               path("search", DjSearch.as_view()), path("account", dj_delete)]


# --- one way to call each ------------------------------------------------------------
def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(params=["starlette", "fastapi", "flask", "django"])
def call(request: pytest.FixtureRequest, tokens: Tokens) -> Iterator[Call]:
    CALLS.clear()
    verifier = tokens.verifier()
    if request.param in ("starlette", "fastapi"):
        build = starlette_app if request.param == "starlette" else fastapi_app
        with TestClient(build(verifier)) as client:
            yield lambda method, url, token: _json(
                client.request(method, url, headers=_headers(token)))
    elif request.param == "flask":
        flask_client = flask_app(verifier).test_client()

        def flask_call(method: str, url: str, token: str | None) -> tuple[int, Any]:
            response = flask_client.open(url, method=method, headers=_headers(token))
            return response.status_code, response.get_json(silent=True)

        yield flask_call
    else:
        request.getfixturevalue("django_project")
        with override_settings(ROOT_URLCONF=__name__, ACTAS={
                "ISSUER": ISSUER, "JWKS": tokens.jwks, "AUTHORIZED_PARTIES": [APP_ORIGIN],
                "NOW": tokens.now}):
            django_client = Client()

            def django_call(method: str, url: str, token: str | None) -> tuple[int, Any]:
                response = django_client.generic(method, "/" + url.lstrip("/"),
                                                 headers=_headers(token))
                return response.status_code, response.json()

            yield django_call


def _json(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


# --- the behaviour -------------------------------------------------------------------
def test_a_read_only_impersonation_reads_and_is_refused_every_write(call: Call,
                                                                    tokens: Tokens) -> None:
    assert call("GET", "/orders", tokens.read_only) == (200, {"ok": True, "mode": "read_only"})
    status, body = call("POST", "/address", tokens.read_only)
    assert_refused(status, body, expected_status=403, code="impersonation_read_only")
    assert "read-only" in body["errors"][0]["message"]
    assert CALLS["address"] == 0  # refused before the view ran


def test_a_route_marked_allow_in_read_only_is_open_to_it(call: Call, tokens: Tokens) -> None:
    assert call("POST", "/search", tokens.read_only) == (200, {"ok": True})
    assert CALLS["search"] == 1


def test_a_full_impersonation_may_write_but_forbid_impersonation_still_holds(
        call: Call, tokens: Tokens) -> None:
    assert call("GET", "/orders", tokens.impersonated)[1]["mode"] == "full"
    assert call("POST", "/address", tokens.impersonated) == (200, {"ok": True})
    status, body = call("DELETE", "/account", tokens.impersonated)
    assert_refused(status, body, expected_status=403, code="impersonated_session_forbidden")
    assert CALLS["delete"] == 0


def test_read_only_is_refused_before_forbid_impersonation_is_even_asked(
        call: Call, tokens: Tokens) -> None:
    status, body = call("DELETE", "/account", tokens.read_only)
    assert_refused(status, body, expected_status=403, code="impersonation_read_only")
    assert CALLS["delete"] == 0


def test_the_users_own_session_and_signed_out_requests_are_untouched(
        call: Call, tokens: Tokens) -> None:
    assert call("GET", "/orders", tokens.signed_in) == (200, {"ok": True, "mode": None})
    assert call("POST", "/address", tokens.signed_in) == (200, {"ok": True})
    assert call("POST", "/address", None) == (200, {"ok": True})
    assert CALLS["address"] == 2


def test_starlette_finds_the_endpoint_inside_a_mount(tokens: Tokens) -> None:
    CALLS.clear()
    with TestClient(starlette_app(tokens.verifier())) as client:
        refused = client.post("/admin/address", headers=_headers(tokens.read_only))
        allowed = client.post("/admin/search", headers=_headers(tokens.read_only))
        missing = client.post("/nowhere", headers=_headers(tokens.read_only))
    assert refused.status_code == 403 and CALLS["address"] == 0
    assert allowed.status_code == 200 and CALLS["search"] == 1
    # No route takes it, to the middleware's eyes; a middleware inside might rewrite the
    # path to a real one (a locale prefix, say): refused too, failing closed.
    assert missing.status_code == 403


def test_enforcement_can_be_turned_off_where_the_app_does_it_itself(tokens: Tokens) -> None:
    CALLS.clear()
    app = Starlette(routes=[Route("/address", st_address, methods=["POST"])],
                    middleware=[Middleware(on_starlette.AuthMiddleware,
                                           verifier=tokens.verifier(), enforce_read_only=False)])
    with TestClient(app) as client:
        assert client.post("/address", headers=_headers(tokens.read_only)).status_code == 200


def test_the_auth_object_says_the_mode() -> None:
    claims = {"sub": "user_1", "act": {"sub": "op_1"}}
    full = actas.Auth.from_claims(claims, "t")
    read_only = actas.Auth.from_claims({**claims, "act_mode": "read_only"}, "t")
    unknown = actas.Auth.from_claims({**claims, "act_mode": "something new"}, "t")
    own = actas.Auth.from_claims({"sub": "user_1", "act_mode": "read_only"}, "t")
    assert (full.impersonation_mode, full.is_read_only) == ("full", False)
    assert (read_only.impersonation_mode, read_only.is_read_only) == ("read_only", True)
    assert (unknown.impersonation_mode, unknown.is_read_only) == ("read_only", True)  # closed
    assert (own.impersonation_mode, own.is_read_only) == (None, False)


@pytest.mark.parametrize("method", ["PURGE", "post", "MOVE"])
def test_any_method_but_the_safe_ones_is_refused_in_any_case(tokens: Tokens,
                                                             method: str) -> None:
    CALLS.clear()
    app = FastAPI()
    on_fastapi.install(app, verifier=tokens.verifier())

    @app.api_route("/cache", methods=["PURGE", "POST", "MOVE"])
    def purge() -> dict[str, Any]:
        CALLS["purge"] += 1
        return {"ok": True}

    with TestClient(app) as client:
        refused = client.request(method, "/cache", headers=_headers(tokens.read_only))
        assert client.request("OPTIONS", "/cache", headers=_headers(tokens.read_only)
                              ).status_code != 403
    assert refused.status_code == 403 and CALLS["purge"] == 0


def test_a_read_only_websocket_is_refused_unless_marked(tokens: Tokens) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        CALLS["chat"] += 1
        await websocket.close()

    @on_starlette.allow_in_read_only
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    CALLS.clear()
    app = Starlette(routes=[WebSocketRoute("/chat", chat), WebSocketRoute("/feed", feed)],
                    middleware=[Middleware(on_starlette.AuthMiddleware,
                                           verifier=tokens.verifier())])
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as closed, \
                client.websocket_connect("/chat", headers=_headers(tokens.read_only)):
            pass
        assert closed.value.code == 1008 and CALLS["chat"] == 0
        with client.websocket_connect("/feed", headers=_headers(tokens.read_only)) as feed_ws:
            assert feed_ws.receive_text() == "hello"
        with client.websocket_connect("/chat", headers=_headers(tokens.impersonated)):
            pass
    assert CALLS["chat"] == 1
