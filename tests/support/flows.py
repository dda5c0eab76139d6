"""Short, named steps the API tests repeat: create a user, sign in, mint a token."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"


def create_user(backend: TestClient, email: str = "ada@example.com", **fields: Any
                ) -> dict[str, Any]:
    body = {"email_address": [email], "password": PASSWORD, **fields}
    response = backend.post("/v1/users", json=body)
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


def sign_in(browser: TestClient, identifier: str = "ada@example.com",
            password: str = PASSWORD) -> str:
    response = browser.post("/v1/client/sign_ins",
                            json={"identifier": identifier, "password": password})
    assert response.status_code == 200, response.text
    session_id: str = response.json()["response"]["created_session_id"]
    return session_id


def mint(browser: TestClient, session_id: str) -> str:
    response = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
    assert response.status_code == 200, response.text
    jwt: str = response.json()["jwt"]
    return jwt


def error_code(response: Any) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def create_actor_token(backend: TestClient, user_id: str, *, sub: str = "op_alice",
                       reason: str | None = "Support ticket #4242", **fields: Any
                       ) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "actor": {"sub": sub, **fields.pop("actor", {})},
                            **fields}
    if reason is not None:
        body["reason"] = reason
    response = backend.post("/v1/actor_tokens", json=body)
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


def redeem(browser: TestClient, ticket: str) -> str:
    response = browser.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": ticket})
    assert response.status_code == 200, response.text
    session_id: str = response.json()["response"]["created_session_id"]
    return session_id


def claims(jwt: str) -> dict[str, Any]:
    import jwt as pyjwt

    decoded: dict[str, Any] = pyjwt.decode(jwt, options={"verify_signature": False})
    return decoded
