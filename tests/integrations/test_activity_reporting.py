"""The SDK reports what impersonators do (``actas.ActivityReporter``) to a real actas over
loopback HTTP, with route templates and never raw paths; and never holds a request
up when actas hangs or is gone: entries are dropped and counted instead."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from flask import Flask
from starlette.testclient import TestClient

import actas
from actas.integrations import django as on_django
from actas.integrations import fastapi as on_fastapi
from actas.integrations import flask as on_flask
from actas.server import Instance, create_app
from tests.conftest import APP_ORIGIN, SECRET_KEY
from tests.integrations.conftest import ISSUER, Tokens
from tests.support.receivers import BadEndpoint, wait_until


@pytest.fixture
def actas_url(instance: Instance) -> Iterator[str]:
    """The test's actas, served by uvicorn on a loopback port: real HTTP for the reporter."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(instance), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=60)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)


def fastapi_app(verifier: actas.Verifier, reporter: actas.ActivityReporter) -> FastAPI:
    app = FastAPI()
    on_fastapi.install(app, verifier=verifier, reporter=reporter)

    @app.get("/orders/{order_id}")
    def order(order_id: str) -> dict[str, Any]:
        return {"order": order_id}

    @app.post("/address")
    def address() -> dict[str, Any]:
        return {"ok": True}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reported(backend: TestClient, session_id: str) -> list[tuple[str, str, int, bool]]:
    return [(a["method"], a["route"], a["status"], a["refused"]) for a in backend.get(
        "/v1/impersonation_activity", params={"session_id": session_id}).json()]


def test_fastapi_reports_route_templates_and_refusals_of_impersonations_only(
        tokens: Tokens, backend: TestClient, actas_url: str) -> None:
    reporter = actas.ActivityReporter(api_url=actas_url, secret_key=SECRET_KEY, now=tokens.now)
    with TestClient(fastapi_app(tokens.verifier(), reporter)) as client:
        assert client.get("/orders/ord_123?x=secret",
                          headers=bearer(tokens.read_only)).status_code == 200
        assert client.post("/address", headers=bearer(tokens.read_only)).status_code == 403
        assert client.post("/address", headers=bearer(tokens.impersonated)).status_code == 200
        assert client.get("/orders/ord_9", headers=bearer(tokens.signed_in)).status_code == 200
    reporter.close()

    assert reporter.sent == 3 and reporter.dropped == 0
    read_only_session = actas.Verifier(issuer=tokens.verifier().issuer, jwks=tokens.jwks,
                                       now=tokens.now).verify(tokens.read_only).session_id
    assert reported(backend, str(read_only_session)) == [
        ("GET", "/orders/{order_id}", 200, False), ("POST", "/address", 403, True)]
    assert reported(backend, tokens.impersonated_session_id) == [("POST", "/address", 200, False)]
    assert reported(backend, tokens.session_id) == []  # the user's own requests: never


def test_flask_reports_the_url_rule(tokens: Tokens, backend: TestClient,
                                    actas_url: str) -> None:
    reporter = actas.ActivityReporter(api_url=actas_url, secret_key=SECRET_KEY, now=tokens.now)
    app = Flask(__name__)
    on_flask.Actas(app, verifier=tokens.verifier(), reporter=reporter)

    @app.get("/invoices/<invoice_id>")
    def invoice(invoice_id: str) -> dict[str, Any]:
        return {"invoice": invoice_id}

    assert app.test_client().get("/invoices/inv_1",
                                 headers=bearer(tokens.impersonated)).status_code == 200
    reporter.close()
    assert reported(backend, tokens.impersonated_session_id) == [
        ("GET", "/invoices/<invoice_id>", 200, False)]


def test_a_hanging_actas_never_holds_a_request_up(tokens: Tokens) -> None:
    hanging = BadEndpoint("hang")
    reporter = actas.ActivityReporter(api_url=hanging.url.removesuffix("/hooks"),
                                      secret_key=SECRET_KEY, max_queue=3, flush_interval=0.05,
                                      timeout=60, now=tokens.now)
    try:
        with TestClient(fastapi_app(tokens.verifier(), reporter)) as client:
            client.get("/orders/1", headers=bearer(tokens.impersonated))
            wait_until(lambda: hanging.requests_seen == 1)  # the thread is stuck in its POST
            for n in range(8):  # and every request still completes, while it hangs
                assert client.get(f"/orders/{n}",
                                  headers=bearer(tokens.impersonated)).status_code == 200
            assert hanging.requests_seen == 1
        assert reporter.dropped == 5  # 8 queued against room for 3: counted, not waited for
    finally:
        hanging.stop()
        reporter.close(timeout=30)


def test_an_unreachable_actas_drops_and_counts(tokens: Tokens,
                                               caplog: pytest.LogCaptureFixture) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here: connections are refused at once
    reporter = actas.ActivityReporter(api_url=f"http://127.0.0.1:{port}",
                                      secret_key=SECRET_KEY, now=tokens.now)
    with TestClient(fastapi_app(tokens.verifier(), reporter)) as client:
        for n in range(3):
            assert client.get(f"/orders/{n}",
                              headers=bearer(tokens.impersonated)).status_code == 200
    reporter.close()
    assert reporter.sent == 0 and reporter.dropped == 3
    warnings = [r for r in caplog.records if r.name == "actas.activity"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()


def test_django_reports_the_route_and_the_read_only_refusal(
        tokens: Tokens, backend: TestClient, actas_url: str,
        django_project: None) -> None:
    from django.test import Client, override_settings

    with override_settings(ROOT_URLCONF="tests.integrations.test_read_only", ACTAS={
            "ISSUER": ISSUER, "JWKS": tokens.jwks, "AUTHORIZED_PARTIES": [APP_ORIGIN],
            "NOW": tokens.now, "REPORT_ACTIVITY": True, "API_URL": actas_url,
            "SECRET_KEY": SECRET_KEY}):
        client = Client()
        assert client.get("/orders", headers=bearer(tokens.impersonated)).status_code == 200
        assert client.post("/address", headers=bearer(tokens.read_only)).status_code == 403
        from django.conf import settings

        reporter = on_django.reporter_from_settings(settings.ACTAS)  # the middleware's own
        assert reporter is not None
        reporter.flush()
    read_only_session = actas.Verifier(issuer=ISSUER, jwks=tokens.jwks,
                                       now=tokens.now).verify(tokens.read_only).session_id
    assert reported(backend, str(read_only_session)) == [("POST", "/address", 403, True)]
    assert reported(backend, tokens.impersonated_session_id) == [("GET", "/orders", 200, False)]
