"""Finding the session token in a request, whatever framework made the request.

The token is read from ``Authorization: Bearer …`` first, then from the
``__session`` cookie. Accepted request shapes: a Starlette/FastAPI
``Request``, a Django ``HttpRequest``, a Flask/Werkzeug ``Request`` (all
have ``headers``; cookies are ``cookies`` or ``COOKIES``), a WSGI environ
(a dict with ``HTTP_*`` keys) and an ASGI scope (a dict with ``headers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actas._auth import Auth
from actas._verifier import Verifier

SESSION_COOKIE = "__session"


def _from_authorization(value: str | None) -> str | None:
    if value and value.startswith(("Bearer ", "bearer ", "BEARER ")):
        token = value[7:]
        if token[:1].isspace() or token[-1:].isspace():
            token = token.strip()
        return token or None
    return None


def _from_cookie_header(value: str | None) -> str | None:
    if not value:
        return None
    for part in value.split(";"):
        name, _, cookie = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return cookie.strip('"') or None
    return None


_BEARER = (b"Bearer ", b"bearer ", b"BEARER ")


def _from_asgi_scope(scope: Mapping[str, Any]) -> str | None:
    cookie = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            # Decoded without its scheme: one copy of the token fewer per request than
            # decoding the header and then slicing it (what _from_authorization does).
            token: str | None = None
            if value.startswith(_BEARER):
                token = value[7:].decode("latin-1")
                if token[:1].isspace() or token[-1:].isspace():
                    token = token.strip()
            if token:
                return token
        elif name == b"cookie":
            cookie = value
    return _from_cookie_header(cookie.decode("latin-1")) if cookie is not None else None


def token_from(request: Any) -> str | None:
    """The session token of ``request``, or ``None``."""
    if type(request) is dict or isinstance(request, Mapping):  # the ABC check is slower
        if "headers" in request and "type" in request:
            return _from_asgi_scope(request)
        return (_from_authorization(request.get("HTTP_AUTHORIZATION"))
                or _from_cookie_header(request.get("HTTP_COOKIE")))
    # The raw headers where the framework keeps them, not its parsed view of them:
    # Django builds request.headers from every META key on first access, which
    # costs more than the rest of a cached verification.
    meta = getattr(request, "META", None)  # Django
    if meta is None:
        meta = getattr(request, "environ", None)  # Flask/Werkzeug
    if type(meta) is dict:
        return (_from_authorization(meta.get("HTTP_AUTHORIZATION"))
                or _from_cookie_header(meta.get("HTTP_COOKIE")))
    scope = getattr(request, "scope", None)  # Starlette/FastAPI
    if type(scope) is dict and "headers" in scope:
        return _from_asgi_scope(scope)
    token = _from_authorization(request.headers.get("authorization"))
    if token:
        return token
    cookies = getattr(request, "COOKIES", None)
    if cookies is None:
        cookies = getattr(request, "cookies", None) or {}
    value = cookies.get(SESSION_COOKIE)
    return value or None


def authenticate_request(request: Any, *, verifier: Verifier) -> Auth:
    """Who made ``request``: a signed-in ``Auth`` (with ``actor`` if impersonated) or a
    signed-out one that says why. Never calls actas: the token is verified locally."""
    return verifier.authenticate(token_from(request))
