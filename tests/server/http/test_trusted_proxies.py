"""Behind a reverse proxy: the client's address comes from X-Forwarded-For only when the
peer is a proxy named in ACTAS_TRUSTED_PROXIES; anyone else's header is ignored, so a
client cannot pick the address its rate limits and audit events are counted under.

The app runs wrapped exactly as ``actas serve`` wraps it (``app.as_served``), its access
log included."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from actas.server import Instance, create_app
from actas.server.app import as_served
from actas.server.http import access_log
from tests.conftest import APP_ORIGIN
from tests.support.flows import PASSWORD, create_user

PROXY = ("10.0.0.5", 40000)


def _served(instance: Instance, trusted: tuple[str, ...]) -> ASGIApp:
    settings = dataclasses.replace(instance.settings, trusted_proxies=trusted)
    return as_served(create_app(instance), settings)


def _failed_sign_in_from(app: ASGIApp, peer: tuple[str, int]) -> None:
    with TestClient(app, base_url="https://actas.test", client=peer,
                    headers={"X-Forwarded-For": "203.0.113.9", "Origin": APP_ORIGIN}
                    ) as client:
        refused = client.post("/v1/client/sign_ins", json={"identifier": "ada@example.com",
                                                           "password": PASSWORD + "!"})
        assert refused.status_code == 422, refused.text


def _last_failure_address(backend: TestClient) -> str | None:
    [event] = backend.get("/v1/audit_events", params={
        "type": "user.sign_in_failed", "limit": 1}).json()["data"]
    address: str | None = event["ip_address"]
    return address


def test_a_trusted_proxy_names_the_client(instance: Instance, backend: TestClient) -> None:
    create_user(backend)
    _failed_sign_in_from(_served(instance, ("10.0.0.0/24",)), PROXY)
    assert _last_failure_address(backend) == "203.0.113.9"


def test_anyone_else_cannot_choose_their_address(instance: Instance,
                                                 backend: TestClient) -> None:
    create_user(backend)
    _failed_sign_in_from(_served(instance, ("10.0.0.0/24",)), ("198.51.100.7", 5000))
    assert _last_failure_address(backend) == "198.51.100.7"
    _failed_sign_in_from(_served(instance, ()), PROXY)  # none trusted: the default
    assert _last_failure_address(backend) == "10.0.0.5"


def test_the_access_log_names_the_client_a_trusted_proxy_names(
        instance: Instance, backend: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    create_user(backend)
    access_log.install()
    with caplog.at_level(logging.INFO, logger=access_log.LOGGER):
        _failed_sign_in_from(_served(instance, ("10.0.0.0/24",)), PROXY)
        _failed_sign_in_from(_served(instance, ()), PROXY)
    lines = [r.getMessage() for r in caplog.records if r.name == access_log.LOGGER]
    assert lines == ['203.0.113.9:0 - "POST /v1/client/sign_ins HTTP/1.1" 422',
                     '10.0.0.5:40000 - "POST /v1/client/sign_ins HTTP/1.1" 422']
