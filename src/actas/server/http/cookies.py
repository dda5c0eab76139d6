"""The two cookies: ``__client`` (long-lived, HttpOnly) and ``__session`` (the JWT).

When cookies are ``Secure`` (everywhere but ``actas dev``) the client cookie is
named ``__Host-client``: browsers then accept it only from a secure origin,
for path ``/`` and without a ``Domain``, so a sibling subdomain or a plain-HTTP
response cannot plant or overwrite it (the first half of session fixation;
the other half is that every sign-in issues a fresh secret, see ``clients``).
"""

from __future__ import annotations

import re

from starlette.responses import Response

from actas.server.settings import Settings

CLIENT_COOKIE = "__client"
SECURE_CLIENT_COOKIE = "__Host-client"
SESSION_COOKIE = "__session"
CLIENT_COOKIE_MAX_AGE = 365 * 86_400
_JWT_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")


def client_cookie_name(settings: Settings) -> str:
    return SECURE_CLIENT_COOKIE if settings.cookie_secure else CLIENT_COOKIE


def set_client(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(client_cookie_name(settings), token, max_age=CLIENT_COOKIE_MAX_AGE,
                        path="/", secure=settings.cookie_secure, httponly=True, samesite="lax")


def set_session(response: Response, settings: Settings, jwt: str) -> None:
    # Readable by the page's JavaScript on purpose: the browser SDK hands it to
    # same-site backends. It is short-lived and useless without a valid signature.
    response.set_cookie(SESSION_COOKIE, jwt, max_age=settings.session_token_lifetime, path="/",
                        secure=settings.cookie_secure, httponly=False, samesite="lax")


def session_cookie_header(settings: Settings, jwt: str) -> bytes:
    """The ``Set-Cookie`` value ``set_session`` writes, built directly, for the token
    refresh (``frontend_api.token_route``): Starlette builds it through
    ``http.cookies.SimpleCookie``, ~25 µs per refresh. A JWT is base64url and dots,
    which a cookie value takes unquoted; anything else goes the long way."""
    if not _JWT_CHARACTERS.fullmatch(jwt):
        response = Response()
        set_session(response, settings, jwt)
        return response.headers["set-cookie"].encode("latin-1")
    return b"%s=%s; Max-Age=%d; Path=/; SameSite=lax%s" % (
        SESSION_COOKIE.encode(), jwt.encode("ascii"), settings.session_token_lifetime,
        b"; Secure" if settings.cookie_secure else b"")


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=settings.cookie_secure,
                           httponly=False, samesite="lax")
