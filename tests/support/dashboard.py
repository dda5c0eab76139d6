"""Signing in to the dashboard as a person does, and making operators to sign in as."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from actas.server import Instance, operators

PASSWORD = "operator password"


def _operator(instance: Instance, email: str, role: str) -> str:
    with instance.transaction() as db:
        return operators.create(db, instance, email=email, role=role, password=PASSWORD,
                                name=email.split("@")[0].title()).id


def post_sign_in(client: TestClient, email: str, password: str) -> Any:
    """Sign in as a person does: load the form (its cookie and token), then submit it."""
    form = client.get("/dashboard/sign_in").text
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
    assert match, form
    return client.post("/dashboard/sign_in", data={"email": email, "password": password,
                                                   "csrf_token": match.group(1)})


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    response = post_sign_in(client, email, password)
    assert response.status_code == 303, response.text
    return csrf(client)


def csrf(client: TestClient) -> str:
    return csrf_in(client.get("/dashboard/users").text)


def csrf_in(page: str) -> str:
    """The CSRF token of the first form on ``page``."""
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match, page
    return match.group(1)
