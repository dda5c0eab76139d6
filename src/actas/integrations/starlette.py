"""Starlette (and FastAPI) integration: an ASGI middleware.

    app.add_middleware(AuthMiddleware, verifier=verifier)
    ...
    request.auth.actor            # Starlette's own request.auth, an actas.Auth
    request.state.auth            # the same object
"""

from __future__ import annotations

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from actas._jwks import FetchWouldBlock
from actas._logging import bind_auth
from actas._requests import authenticate_request
from actas._verifier import Verifier

__all__ = ["AuthMiddleware"]


class AuthMiddleware:
    """Authenticates every HTTP and WebSocket request, locally, before the app sees it.

    Never refuses a request by itself: a signed-out ``Auth`` says why, and the
    guards (``actas.integrations.fastapi``) or your code decide.
    """

    def __init__(self, app: ASGIApp, *, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            auth = authenticate_request(scope, verifier=self.verifier)
        except FetchWouldBlock:
            # The keys must be fetched (first request, or a rotated kid): do it off the loop.
            auth = await anyio.to_thread.run_sync(
                lambda: authenticate_request(scope, verifier=self.verifier))
        scope["auth"] = auth
        scope.setdefault("state", {})["auth"] = auth
        with bind_auth(auth):
            await self.app(scope, receive, send)
