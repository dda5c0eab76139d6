"""Django integration.

    # settings.py
    MIDDLEWARE = [..., "actas.integrations.django.AuthMiddleware"]
    ACTAS = {"ISSUER": "https://auth.example.com",
             "JWKS_URL": "https://auth.example.com/.well-known/jwks.json",  # or "PEM" / "JWKS"
             "AUTHORIZED_PARTIES": ["https://app.example.com"]}
    # Optional: "CLOCK_SKEW" (seconds, default 5); "NOW", a callable returning Unix
    # seconds that replaces the wall clock (for an application's own tests).

    # views.py
    @forbid_impersonation
    def delete_account(request): ...        # request.auth.actor is set on every request

    @allow_in_read_only                     # a read-only impersonation may call it
    def search_orders(request): ...

In a read-only impersonation every other POST, PUT, PATCH and DELETE is
answered 403 ``impersonation_read_only`` before the view runs
(``ACTAS = {..., "ENFORCE_READ_ONLY": False}`` turns this off).
``ACTAS = {..., "REPORT_ACTIVITY": True, "SECRET_KEY": "sk_…"}`` reports what
impersonators do (method, route template, status) to actas, off the request path.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

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

__all__ = ["AuthMiddleware", "allow_in_read_only", "forbid_impersonation", "require_auth",
           "verifier_from_settings"]

F = TypeVar("F", bound=Callable[..., Any])


def verifier_from_settings() -> Verifier:
    config: dict[str, Any] = getattr(settings, "ACTAS", None) or {}
    if "ISSUER" not in config:
        raise ImproperlyConfigured("settings.ACTAS needs ISSUER and one of JWKS_URL, JWKS, PEM")
    return Verifier(
        issuer=config["ISSUER"],
        jwks_url=config.get("JWKS_URL"),
        jwks=config.get("JWKS"),
        pem=config.get("PEM"),
        authorized_parties=config.get("AUTHORIZED_PARTIES"),
        clock_skew=config.get("CLOCK_SKEW", 5),
        now=config.get("NOW", time.time),
    )


_reporters: dict[tuple[str, str], ActivityReporter] = {}
_reporters_lock = threading.Lock()


def reporter_from_settings(config: dict[str, Any]) -> ActivityReporter | None:
    """``ACTAS["REPORT_ACTIVITY"]`` on: an ``ActivityReporter`` sending to the issuer (the
    actas server) with ``ACTAS["SECRET_KEY"]``, a Backend API secret key."""
    if not config.get("REPORT_ACTIVITY"):
        return None
    if not config.get("SECRET_KEY"):
        raise ImproperlyConfigured("settings.ACTAS REPORT_ACTIVITY needs SECRET_KEY (a Backend "
                                   "API secret key)")
    key = (str(config.get("API_URL", config["ISSUER"])), str(config["SECRET_KEY"]))
    with _reporters_lock:  # one per configuration and process, however often Django
        if key not in _reporters:  # loads its middleware
            _reporters[key] = ActivityReporter(api_url=key[0], secret_key=key[1],
                                               now=config.get("NOW", time.time))
        return _reporters[key]


class AuthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.verifier = verifier_from_settings()
        config: dict[str, Any] = getattr(settings, "ACTAS", None) or {}
        self.enforce_read_only = bool(config.get("ENFORCE_READ_ONLY", True))
        self.reporter = reporter_from_settings(config)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        auth = authenticate_request(request, verifier=self.verifier)
        request.auth = auth  # type: ignore[attr-defined]
        bound = _current.set(auth)  # what bind_auth does, without a generator per request
        try:
            response = self.get_response(request)
        finally:
            _current.reset(bound)
        if self.reporter is not None and auth.actor is not None:
            match = request.resolver_match
            self.reporter.record(
                auth, method=request.method or "", route="/" + match.route if match else None,
                status=response.status_code,
                refused=bool(getattr(request, "_actas_refused", False)))
        return response

    def process_view(self, request: HttpRequest, view_func: Callable[..., Any],
                     _args: Any, _kwargs: Any) -> HttpResponse | None:
        """Refuse an unsafe request of a read-only impersonation, unless the view allows it."""
        auth = getattr(request, "auth", None)
        if isinstance(auth, Auth) and auth.actor is not None and self.enforce_read_only \
                and refuses(auth, request.method or "") and not allowed_in_read_only(view_func):
            request._actas_refused = True  # type: ignore[attr-defined]
            return _refuse(403, read_only_error(request.method or ""))
        return None


def _refuse(status: int, error: ActasError) -> JsonResponse:
    response = JsonResponse({"errors": [error.to_dict()]}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _auth(request: HttpRequest) -> Auth:
    auth = getattr(request, "auth", None)
    if not isinstance(auth, Auth):
        raise ImproperlyConfigured("add actas.integrations.django.AuthMiddleware to MIDDLEWARE")
    return auth


def require_auth(view: F) -> F:
    """Answer 401 (saying why) unless the request is signed in."""
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        auth = _auth(request)
        if not auth.is_signed_in:
            return _refuse(401, signed_out_error(auth.error))
        return view(request, *args, **kwargs)
    return cast(F, wrapper)


def forbid_impersonation(view: F) -> F:
    """Answer 403 when someone is acting as the user (and 401 when signed out)."""
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        auth = _auth(request)
        if not auth.is_signed_in:
            return _refuse(401, signed_out_error(auth.error))
        if auth.actor is not None:
            return _refuse(403, impersonation_error())
        return view(request, *args, **kwargs)
    return cast(F, wrapper)
