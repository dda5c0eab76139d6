"""The ASGI application: Backend API, Frontend API and discovery, on one server."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import actas
from actas.server import api_docs, backend_api, dashboard, frontend_api, worker
from actas.server.db.engine import REQUEST_THREADS
from actas.server.frontend_api import token_route
from actas.server.http import errors
from actas.server.http.limits import RequestLimits
from actas.server.instance import Instance
from actas.server.oauth import token_exchange
from actas.server.settings import Settings

DESCRIPTION = """\
**Backend API** (`Authorization: Bearer sk_…`): users, sessions, JWKS, in the
shapes of Clerk's Backend API.

**Frontend API** (the `__Host-client` cookie, `__client` on plain HTTP; state
changes need an allowed `Origin` and `Content-Type: application/json`):
sign-up, sign-in, the current client, session tokens.

Every error is `{"errors": [{"code", "message", "long_message", "meta"}]}`.
"""


class App(FastAPI):
    """The app, with the session-token refresh (most of the traffic) answered before any
    middleware or routing (see ``frontend_api.token_route``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = token_route.PATH.fullmatch(scope["path"])
            if found is not None:
                scope["app"] = self
                await token_route.serve(scope, receive, send, found.group(1))
                return
        await super().__call__(scope, receive, send)


def create_app(instance: Instance, *, background: bool = False) -> FastAPI:
    """The server. ``background`` runs the worker (webhooks, lapsed sessions) with it."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Blocking work (the database, signing, hashing) runs in at most this many
        # threads, each of which can hold a pooled connection (db.engine).
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        try:
            if not background:
                yield
                return
            async with worker.running(instance):
                yield
        finally:
            await instance.close_async()

    app = App(
        lifespan=lifespan,
        title="actas",
        version=actas.__version__,
        description=DESCRIPTION,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: api_docs serves it
        redoc_url=None,
    )
    app.state.instance = instance
    errors.install(app)
    api_docs.install(app)
    app.include_router(backend_api.router)
    app.include_router(frontend_api.router)
    app.include_router(token_exchange.router)
    dashboard.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (restart it if this fails)."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        """Readiness: the database answers (send no traffic here while this is 503)."""
        try:
            with instance.snapshot() as db:
                db.execute(text("SELECT 1"))
        except OperationalError:
            return errors.envelope(503, errors.error_entry(
                "database_unavailable", "The database does not answer; retry shortly."),
                headers={"Retry-After": "1"})
        return JSONResponse({"status": "ready"})

    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(instance.settings.trusted_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(RequestLimits, max_bytes=instance.settings.max_body_bytes)
    return app


def as_served(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` wrapped as ``actas serve`` serves it: its access log (``http.access_log``)
    inside the proxy headers' middleware (``behind_proxies``), so that a line names the
    client, not the proxy."""
    from actas.server.http import access_log

    return behind_proxies(access_log.AccessLog(app), settings)


def behind_proxies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` as ``actas serve`` serves it: the client's address and scheme come from
    ``X-Forwarded-For``/``-Proto`` only when the peer is one of
    ``ACTAS_TRUSTED_PROXIES``, so that nobody else picks the address their rate limits
    and audit events are counted under; without trusted proxies, as it is."""
    if not settings.trusted_proxies:
        return app
    proxied: ASGIApp = ProxyHeadersMiddleware(
        app, trusted_hosts=list(settings.trusted_proxies))  # type: ignore[arg-type,assignment]
    return proxied


def from_environment() -> ASGIApp:
    """The serving app of one process of ``actas serve``, configured from the ``ACTAS_*``
    environment that the parent process resolved (the server's factory, see
    ``actas.server.serving``)."""
    from actas.server import serving
    from actas.server.http import access_log
    from actas.server.settings import load_settings

    serving.follow_the_server()  # a worker must not outlive the actas serve that started it
    access_log.install()  # each worker process configures its own loggers
    settings = load_settings()
    app = create_app(Instance.start(settings), background=True)
    # What the process has built so far (the modules, the app and its routes, the ORM's
    # and pydantic's models) lives as long as it does. Frozen, the cyclic collector no
    # longer walks it: a full collection under load took 80-140 ms here, a stall for
    # every request the process held (PostgreSQL refresh p99 84-148 ms at 64
    # connections, see bench/README.md).
    gc.collect()
    gc.freeze()
    return as_served(app, settings)
