"""actas.integrations.flask: the ``Actas`` extension, ``g.auth`` and the decorators."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

import actas
from actas.integrations.flask import Actas, forbid_impersonation, require_auth
from tests.integrations.conftest import APP_LOGGER, Tokens, assert_refused, log_identity

log = logging.getLogger(APP_LOGGER)


def make_app(verifier: actas.Verifier) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    Actas(app, verifier=verifier)

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        auth: actas.Auth = g.auth
        log.info("whoami")
        return {"user_id": auth.user_id, "session_id": auth.session_id,
                "actor": auth.actor.sub if auth.actor else None,
                "is_impersonated": auth.is_impersonated, "reason": auth.signed_out_reason}

    @app.get("/orders")
    @require_auth
    def orders() -> dict[str, Any]:
        return {"user_id": g.auth.user_id}

    @app.post("/account/delete")
    @forbid_impersonation
    def delete_account() -> dict[str, Any]:
        return {"deleted": g.auth.user_id}

    return app


@pytest.fixture
def client(verifier: actas.Verifier) -> FlaskClient:
    return make_app(verifier).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bearer_token_signs_in(client: FlaskClient, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.signed_in)).get_json() == {
        "user_id": tokens.user_id, "session_id": tokens.session_id, "actor": None,
        "is_impersonated": False, "reason": None}


def test_session_cookie_signs_in(client: FlaskClient, tokens: Tokens) -> None:
    client.set_cookie("__session", tokens.signed_in)
    assert client.get("/whoami").get_json()["user_id"] == tokens.user_id
    assert client.get("/orders").get_json() == {"user_id": tokens.user_id}


def test_impersonated_token_shows_the_actor(client: FlaskClient, tokens: Tokens) -> None:
    assert client.get("/whoami", headers=bearer(tokens.impersonated)).get_json() == {
        "user_id": tokens.user_id, "session_id": tokens.impersonated_session_id,
        "actor": "op_alice", "is_impersonated": True, "reason": None}


def test_init_app_works_for_an_application_factory(verifier: actas.Verifier,
                                                   tokens: Tokens) -> None:
    extension = Actas(verifier=verifier)
    app = Flask(__name__)
    extension.init_app(app)
    app.add_url_rule("/whoami", view_func=lambda: {"actor": g.auth.actor.sub})

    response = app.test_client().get("/whoami", headers=bearer(tokens.impersonated))
    assert app.extensions["actas"] is extension
    assert response.get_json() == {"actor": "op_alice"}


def test_an_extension_without_a_verifier_is_refused() -> None:
    with pytest.raises(ValueError, match="verifier"):
        Actas(Flask(__name__))


@pytest.mark.parametrize(("token", "reason"), [
    (None, "missing"), ("garbage", "malformed"), ("expired", "expired")])
@pytest.mark.parametrize(("method", "path"), [("GET", "/orders"), ("POST", "/account/delete")])
def test_decorators_refuse_a_signed_out_request_with_401_saying_why(
        client: FlaskClient, tokens: Tokens, method: str, path: str, token: str | None,
        reason: str) -> None:
    headers = {} if token is None else bearer(tokens.expired if token == "expired" else token)
    response = client.open(path, method=method, headers=headers)
    assert_refused(response.status_code, response.get_json(), expected_status=401,
                   code="signed_out", reason=reason)


def test_require_auth_admits_an_impersonated_request(client: FlaskClient,
                                                     tokens: Tokens) -> None:
    response = client.get("/orders", headers=bearer(tokens.impersonated))
    assert response.status_code == 200 and response.get_json() == {"user_id": tokens.user_id}


def test_forbid_impersonation_refuses_an_impersonated_token(client: FlaskClient,
                                                            tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.impersonated))
    assert_refused(response.status_code, response.get_json(), expected_status=403,
                   code="impersonated_session_forbidden")


def test_forbid_impersonation_admits_the_user_themselves(client: FlaskClient,
                                                         tokens: Tokens) -> None:
    response = client.post("/account/delete", headers=bearer(tokens.signed_in))
    assert response.status_code == 200 and response.get_json() == {"deleted": tokens.user_id}


def test_log_records_of_an_impersonated_request_name_the_actor(
        client: FlaskClient, tokens: Tokens, app_log: list[logging.LogRecord]) -> None:
    client.get("/whoami", headers=bearer(tokens.impersonated))
    assert log_identity(app_log, "whoami") == (tokens.user_id, "op_alice")
    app_log.clear()

    client.get("/whoami", headers=bearer(tokens.signed_in))
    assert log_identity(app_log, "whoami") == (tokens.user_id, None)
    log.info("after the request")  # the request's teardown unbound it
    assert log_identity(app_log, "after the request") == (None, None)
