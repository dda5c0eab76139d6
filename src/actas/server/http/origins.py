"""CSRF protection for the cookie-authenticated Frontend API.

A state change must be a POST from a trusted origin (``Origin`` header in the
allowed origins or actas's own) and a non-simple request
(``Content-Type: application/json``), which a cross-site form or image
cannot send without a CORS preflight that actas would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from actas._errors import NonSimpleRequestRequired, OriginNotAllowed
from actas.server.audit import RequestOrigin
from actas.server.instance import Instance
from actas.server.settings import Settings


def instance_of(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


def request_origin(request: Request) -> RequestOrigin:
    """Where the request came from, for the audit log.

    The peer address as the ASGI server reports it; behind a proxy, the address it
    forwarded when the peer is one of ``ACTAS_TRUSTED_PROXIES`` (``app.behind_proxies``).
    """
    return RequestOrigin(ip_address=request.client.host if request.client else None,
                         user_agent=request.headers.get("user-agent"))


async def trusted_origin(request: Request) -> str:
    """FastAPI dependency: the request's trusted ``Origin`` (the token's ``azp``), or raise.

    ``async`` although it awaits nothing: FastAPI runs a plain function in a
    worker thread, a hop every Frontend API request would pay for."""
    return check_origin(instance_of(request).settings, request.headers)


def check_origin(settings: Settings, headers: Mapping[str, str]) -> str:
    """The trusted ``Origin`` of a state-changing request with ``headers``, or raise."""
    origin = headers.get("origin")
    if origin is None:
        raise OriginNotAllowed(
            "The Origin header is missing; the Frontend API only accepts browser requests "
            "from allowed origins."
        )
    if origin not in settings.trusted_origins:
        raise OriginNotAllowed(
            f"The origin {origin!r} is not allowed. Add it to ACTAS_ALLOWED_ORIGINS.",
            origin=origin,
        )
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise NonSimpleRequestRequired()
    return origin
