"""Flask integration.

    actas_ext = Actas(app, verifier=verifier)     # or Actas().init_app(app, verifier=…)
    g.auth.actor                                  # set before every request

    @app.post("/account/delete")
    @forbid_impersonation
    def delete(): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, g, jsonify, request

from actas._auth import Auth
from actas._errors import ActasError
from actas._logging import _current
from actas._requests import authenticate_request
from actas._verifier import Verifier
from actas.integrations import impersonation_error, signed_out_error

__all__ = ["Actas", "forbid_impersonation", "require_auth"]

F = TypeVar("F", bound=Callable[..., Any])


class Actas:
    def __init__(self, app: Flask | None = None, *, verifier: Verifier | None = None) -> None:
        self.verifier = verifier
        if app is not None:
            self.init_app(app, verifier=verifier)

    def init_app(self, app: Flask, *, verifier: Verifier | None = None) -> None:
        self.verifier = verifier or self.verifier
        if self.verifier is None:
            raise ValueError("actas: Actas needs a verifier")
        app.extensions["actas"] = self
        app.before_request(self._authenticate)
        app.teardown_request(self._unbind)

    def _authenticate(self) -> None:
        assert self.verifier is not None
        auth = authenticate_request(request, verifier=self.verifier)
        g.auth = auth
        g._actas_log_token = _current.set(auth)

    @staticmethod
    def _unbind(_exc: BaseException | None) -> None:
        token = g.pop("_actas_log_token", None)
        if token is not None:
            _current.reset(token)


def _refuse(status: int, error: ActasError) -> Response:
    response = jsonify({"errors": [error.to_dict()]})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _auth() -> Auth:
    auth = g.get("auth")
    if not isinstance(auth, Auth):
        raise RuntimeError("actas: create Actas(app, verifier=…) before using its decorators")
    return auth


def require_auth(view: F) -> F:
    """Answer 401 (saying why) unless the request is signed in."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        auth = _auth()
        if not auth.is_signed_in:
            return _refuse(401, signed_out_error(auth.error))
        return view(*args, **kwargs)
    return cast(F, wrapper)


def forbid_impersonation(view: F) -> F:
    """Answer 403 when someone is acting as the user (and 401 when signed out)."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        auth = _auth()
        if not auth.is_signed_in:
            return _refuse(401, signed_out_error(auth.error))
        if auth.actor is not None:
            return _refuse(403, impersonation_error())
        return view(*args, **kwargs)
    return cast(F, wrapper)
