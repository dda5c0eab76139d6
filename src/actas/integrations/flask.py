"""Flask integration.

    actas_ext = Actas(app, verifier=verifier)     # or Actas().init_app(app, verifier=…)
    g.auth.actor                                  # set before every request

    @app.post("/account/delete")
    @forbid_impersonation
    def delete(): ...

    @app.post("/orders/search")
    @allow_in_read_only          # a read-only impersonation may call it
    def search(): ...

In a read-only impersonation every other POST, PUT, PATCH and DELETE is
answered 403 ``impersonation_read_only`` before the view runs
(``Actas(app, verifier=…, enforce_read_only=False)`` turns this off).
``Actas(app, verifier=…, reporter=actas.ActivityReporter(…))`` reports what
impersonators do (method, route template, status) to actas, off the request path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, jsonify, request

from actas._activity import ActivityReporter
from actas._auth import Auth
from actas._errors import ActasError
from actas._logging import _current
from actas._requests import authenticate_request
from actas._verifier import Verifier
from actas.integrations import (
    allow_in_read_only,
    allowed_in_read_only,
    impersonation_error,
    read_only_error,
    refuses,
    signed_out_error,
)

__all__ = ["Actas", "allow_in_read_only", "forbid_impersonation", "require_auth"]

F = TypeVar("F", bound=Callable[..., Any])


class Actas:
    def __init__(self, app: Flask | None = None, *, verifier: Verifier | None = None,
                 enforce_read_only: bool = True, reporter: ActivityReporter | None = None
                 ) -> None:
        self.verifier = verifier
        self.enforce_read_only = enforce_read_only
        self.reporter = reporter
        if app is not None:
            self.init_app(app, verifier=verifier)

    def init_app(self, app: Flask, *, verifier: Verifier | None = None) -> None:
        self.verifier = verifier or self.verifier
        if self.verifier is None:
            raise ValueError("actas: Actas needs a verifier")
        app.extensions["actas"] = self
        app.before_request(self._authenticate)
        app.after_request(self._report)
        app.teardown_request(self._unbind)

    def _authenticate(self) -> Response | None:
        assert self.verifier is not None
        auth = authenticate_request(request, verifier=self.verifier)
        g.auth = auth
        g._actas_log_token = _current.set(auth)
        if auth.actor is not None and self.enforce_read_only and refuses(auth, request.method) \
                and request.endpoint is not None \
                and not allowed_in_read_only(current_app.view_functions.get(request.endpoint)):
            g._actas_refused = True
            return _refuse(403, read_only_error(request.method))
        return None

    def _report(self, response: Response) -> Response:
        auth = g.get("auth")
        if self.reporter is not None and isinstance(auth, Auth) and auth.actor is not None:
            rule = request.url_rule
            self.reporter.record(auth, method=request.method,
                                 route=rule.rule if rule is not None else None,
                                 status=response.status_code,
                                 refused=bool(g.get("_actas_refused", False)))
        return response

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
