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
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from actas._auth import Auth
from actas._errors import ActasError
from actas._logging import bind_auth
from actas._requests import authenticate_request
from actas._verifier import Verifier
from actas.integrations import impersonation_error, signed_out_error

__all__ = ["AuthMiddleware", "forbid_impersonation", "require_auth", "verifier_from_settings"]

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


class AuthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.verifier = verifier_from_settings()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        auth = authenticate_request(request, verifier=self.verifier)
        request.auth = auth  # type: ignore[attr-defined]
        with bind_auth(auth):
            return self.get_response(request)


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
