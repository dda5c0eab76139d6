"""actas.integrations.django: the middleware, the decorators and ``settings.ACTAS``.

This module is also the test project's URLconf (``urlpatterns`` below).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

import actas
from actas.integrations.django import forbid_impersonation, require_auth
from tests.conftest import APP_ORIGIN
from tests.integrations.conftest import (
    APP_LOGGER,
    ISSUER,
    Tokens,
    assert_refused,
    log_identity,
)

log = logging.getLogger(APP_LOGGER)


def whoami(request: HttpRequest) -> JsonResponse:
    auth: actas.Auth = request.auth  # type: ignore[attr-defined]
    log.info("whoami")
    return JsonResponse({"user_id": auth.user_id, "session_id": auth.session_id,
                         "actor": auth.actor.sub if auth.actor else None,
                         "is_impersonated": auth.is_impersonated,
                         "reason": auth.signed_out_reason})


@require_auth
def orders(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user_id": request.auth.user_id})  # type: ignore[attr-defined]


@forbid_impersonation
def delete_account(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"deleted": request.auth.user_id})  # type: ignore[attr-defined]


urlpatterns = [
    path("whoami", whoami),
    path("orders", orders),
    path("account/delete", delete_account),
]


def actas_settings(tokens: Tokens) -> dict[str, Any]:
    return {"ISSUER": ISSUER, "JWKS": tokens.jwks, "AUTHORIZED_PARTIES": [APP_ORIGIN],
            "NOW": tokens.now}


@pytest.fixture
def client(django_project: None, tokens: Tokens) -> Iterator[Client]:
    # The middleware builds its verifier when the handler loads it, which a
    # Client does on its first request: so a new Client inside the override.
    with override_settings(ACTAS=actas_settings(tokens)):
        yield Client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_token_signs_in(client: Client, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.signed_in)).json() == {
        "user_id": tokens.user_id, "session_id": tokens.session_id, "actor": None,
        "is_impersonated": False, "reason": None}


def test_session_cookie_signs_in(client: Client, tokens: Tokens) -> None:
    client.cookies["__session"] = tokens.signed_in
    assert client.get("/whoami").json()["user_id"] == tokens.user_id
    assert client.get("/orders").json() == {"user_id": tokens.user_id}


def test_impersonated_token_shows_the_actor(client: Client, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.impersonated)).json() == {
        "user_id": tokens.user_id, "session_id": tokens.impersonated_session_id,
        "actor": "op_alice", "is_impersonated": True, "reason": None}


def test_the_verifier_is_configured_from_settings_actas(django_project: None,
                                                        tokens: Tokens) -> None:
    other_issuer = {**actas_settings(tokens), "ISSUER": "https://elsewhere.test"}
    with override_settings(ACTAS=other_issuer):
        response = Client().get("/whoami", headers=bearer(tokens.signed_in))
    assert response.json()["reason"] == "wrong_issuer"

    with override_settings(ACTAS={"JWKS": tokens.jwks}), \
            pytest.raises(ImproperlyConfigured, match="ISSUER"):
        Client().get("/whoami")


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"), ("garbage", "malformed"), ("expired", "expired")])
@pytest.mark.parametrize(("method", "path"), [("GET", "/orders"), ("POST", "/account/delete")])
def test_decorators_refuse_a_signed_out_request_with_401_saying_why(
        client: Client, tokens: Tokens, method: str, path: str, token: str | None,
        reason: str) -> None:
    headers = {} if token is None else bearer(tokens.expired if token == "expired" else token)
    response = client.generic(method, path, headers=headers)
    assert_refused(response.status_code, response.json(), expected_status=401,
                   code="signed_out", reason=reason)


def test_require_auth_admits_an_impersonated_request(client: Client, tokens: Tokens) -> None:
    response = client.get("/orders", headers=bearer(tokens.impersonated))
    assert response.status_code == 200 and response.json() == {"user_id": tokens.user_id}


def test_forbid_impersonation_refuses_an_impersonated_token(client: Client,
                                                            tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.impersonated))
    assert_refused(response.status_code, response.json(), expected_status=403,
                   code="impersonated_session_forbidden")


def test_forbid_impersonation_admits_the_user_themselves(client: Client,
                                                         tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.signed_in))
    assert response.status_code == 200 and response.json() == {"deleted": tokens.user_id}


def test_log_records_of_an_impersonated_request_name_the_actor(
        client: Client, tokens: Tokens, app_log: list[logging.LogRecord]) -> None:
    client.get("/whoami", headers=bearer(tokens.impersonated))
    assert log_identity(app_log, "whoami") == (tokens.user_id, "op_alice")
    app_log.clear()

    client.get("/whoami", headers=bearer(tokens.signed_in))
    assert log_identity(app_log, "whoami") == (tokens.user_id, None)
    log.info("after the request")
    assert log_identity(app_log, "after the request") == (None, None)
