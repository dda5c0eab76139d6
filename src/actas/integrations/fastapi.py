"""FastAPI: install once, then use the dependencies.

    install(app, verifier=verifier)     # the middleware + actas's JSON error envelope

    @app.get("/me")
    def me(auth: CurrentAuth): ...                       # may be signed out

    @app.get("/orders", dependencies=[Depends(require_auth)])

    @app.post("/account/delete")
    def delete(auth: Annotated[Auth, Depends(forbid_impersonation)]): ...

    @app.post("/orders/search")
    @allow_in_read_only                  # a read-only impersonation may call it
    def search(auth: CurrentAuth): ...

In a read-only impersonation every other POST, PUT, PATCH and DELETE is
answered 403 ``impersonation_read_only`` by the middleware.

``require_auth`` and ``forbid_impersonation`` declare the bearer token and
the ``__session`` cookie as security schemes, so they show in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from actas._activity import ActivityReporter
from actas._auth import Auth
from actas._errors import ActasError
from actas._verifier import Verifier
from actas.integrations import allow_in_read_only, impersonation_error, signed_out_error
from actas.integrations.starlette import AuthMiddleware

__all__ = ["CurrentAuth", "allow_in_read_only", "current_auth", "forbid_impersonation",
           "install", "require_auth"]

_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT",
                     description="An actas session token.")
_cookie = APIKeyCookie(name="__session", auto_error=False,
                       description="The actas session token, as set by the browser SDK.")


def current_auth(request: Request) -> Auth:
    auth = request.scope.get("auth")
    if not isinstance(auth, Auth):
        raise RuntimeError("actas: add actas.integrations.starlette.AuthMiddleware to the app")
    return auth


CurrentAuth = Annotated[Auth, Depends(current_auth)]


class GuardRefused(HTTPException):
    """A guard's refusal. An ``HTTPException``, so that without ``install`` it is still
    a 401/403; with it, the body is actas's ``{"errors": [...]}`` envelope."""

    def __init__(self, status: int, error: ActasError) -> None:
        super().__init__(status_code=status, detail={"errors": [error.to_dict()]},
                         headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        self.error = error


def install(app: FastAPI, *, verifier: Verifier, enforce_read_only: bool = True,
            reporter: ActivityReporter | None = None) -> None:
    """Authenticate every request (``request.auth``), refuse unsafe requests of read-only
    impersonations and report impersonators' requests to ``reporter`` (see
    ``AuthMiddleware``), and answer refusals as the envelope."""
    app.add_middleware(AuthMiddleware, verifier=verifier, enforce_read_only=enforce_read_only,
                       reporter=reporter)

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GuardRefused)
        return JSONResponse({"errors": [exc.error.to_dict()]}, status_code=exc.status_code,
                            headers=exc.headers)

    app.add_exception_handler(GuardRefused, refused)


def _error(status: int, error: ActasError) -> GuardRefused:
    return GuardRefused(status, error)


def require_auth(
    auth: CurrentAuth,
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _cookie_token: Annotated[str | None, Depends(_cookie)],
) -> Auth:
    """The request's ``Auth``, or a 401 saying why it is signed out."""
    if not auth.is_signed_in:
        raise _error(401, signed_out_error(auth.error))
    return auth


def forbid_impersonation(auth: Annotated[Auth, Depends(require_auth)]) -> Auth:
    """The signed-in ``Auth``, or a 403 when someone is acting as the user."""
    if auth.actor is not None:
        raise _error(403, impersonation_error())
    return auth
