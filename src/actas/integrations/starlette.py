"""Starlette (and FastAPI) integration: an ASGI middleware.

    app.add_middleware(AuthMiddleware, verifier=verifier)
    ...
    request.auth.actor            # Starlette's own request.auth, an actas.Auth
    request.state.auth            # the same object
    request.auth.is_read_only     # a read-only impersonation

    @app.post("/search")
    @allow_in_read_only           # changes nothing: open to read-only impersonations
    def search(): ...
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actas._activity import ActivityReporter
from actas._auth import Auth
from actas._jwks import FetchWouldBlock
from actas._logging import _current
from actas._requests import _from_asgi_scope, authenticate_request
from actas._verifier import Verifier
from actas.integrations import allow_in_read_only, allowed_in_read_only, read_only_error, refuses

__all__ = ["AuthMiddleware", "allow_in_read_only"]

_NO_ROUTE = object()
_UNKNOWN: tuple[Any, str | None] = (None, None)


class AuthMiddleware:
    """Authenticates every HTTP and WebSocket request, locally, before the app sees it.

    Refuses one kind of request by itself: an unsafe one (anything but ``GET``,
    ``HEAD``, ``OPTIONS``, ``TRACE``) in a read-only impersonation, with 403
    ``impersonation_read_only``, unless the route's endpoint is marked
    ``@allow_in_read_only``; also a WebSocket to an unmarked endpoint (closed
    with 1008). ``enforce_read_only=False`` turns this off.
    With a ``reporter`` (``actas.ActivityReporter``), every answered request of an
    impersonated session is reported (method, route template, status), off the
    request path.
    Otherwise a signed-out ``Auth`` says why, and the guards
    (``actas.integrations.fastapi``) or your code decide.
    """

    def __init__(self, app: ASGIApp, *, verifier: Verifier, enforce_read_only: bool = True,
                 reporter: ActivityReporter | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.enforce_read_only = enforce_read_only
        self.reporter = reporter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            # authenticate_request, minus working out that a scope is a scope.
            auth = self.verifier.authenticate(_from_asgi_scope(scope))
        except FetchWouldBlock:
            # The keys must be fetched (first request, or a rotated kid): do it off the loop.
            auth = await anyio.to_thread.run_sync(
                lambda: authenticate_request(scope, verifier=self.verifier))
        scope["auth"] = auth
        scope.setdefault("state", {})["auth"] = auth
        bound = _current.set(auth)  # what bind_auth does, without a generator per request
        try:
            if auth.actor is None:  # the usual case: nothing more to do
                await self.app(scope, receive, send)
            elif scope["type"] == "websocket":
                await self._impersonated_websocket(auth, scope, receive, send)
            else:
                await self._impersonated(auth, scope, receive, send)
        finally:
            _current.reset(bound)

    async def _impersonated_websocket(self, auth: Auth, scope: Scope, receive: Receive,
                                      send: Send) -> None:
        """A WebSocket can carry writes the method cannot show: refused to a read-only
        impersonation unless its endpoint is marked ``allow_in_read_only``."""
        if self.enforce_read_only and auth.is_read_only:
            route, _template = _route(scope)
            if not allowed_in_read_only(getattr(route, "endpoint", None)):
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008,
                            "reason": "read-only impersonation"})
                return
        await self.app(scope, receive, send)

    async def _impersonated(self, auth: Auth, scope: Scope, receive: Receive, send: Send
                            ) -> None:
        method = scope["method"]
        refused = refuses(auth, method)
        route, template = _route(scope) if (self.reporter is not None or refused
                                            ) else _UNKNOWN
        # Fail closed: a path no route takes (to this middleware's eyes: a middleware
        # inside may rewrite it) is refused too, not left to the app.
        if self.enforce_read_only and refused \
                and not allowed_in_read_only(getattr(route, "endpoint", None)):
            error = read_only_error(method)
            response = JSONResponse({"errors": [error.to_dict()]}, status_code=403)
            await response(scope, receive, send)
            if self.reporter is not None:
                self.reporter.record(auth, method=method, route=template, status=403,
                                     refused=True)
            return
        if self.reporter is None:
            await self.app(scope, receive, send)
            return
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.reporter.record(auth, method=method, route=template, status=status[0])


def _route(scope: Scope) -> tuple[Any, str | None]:
    """The route Starlette's router will take for ``scope`` (through mounts) and its path
    template; ``(None, None)`` when it cannot be told, ``(_NO_ROUTE, None)`` when no
    route takes the path (either way a read-only write is refused: fail closed)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    routes = getattr(router, "routes", None)
    if routes is None:
        return _UNKNOWN
    return _find(routes, dict(scope), "")


def _find(routes: Any, scope: dict[str, Any], prefix: str) -> tuple[Any, str | None]:
    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        path = prefix + str(getattr(route, "path", ""))
        if isinstance(route, Mount):
            inner = getattr(route, "routes", None)
            return _find(inner, {**scope, **child}, path) if inner else (None, path)
        return route, path
    return _NO_ROUTE, None
