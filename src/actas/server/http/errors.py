"""Every failure leaves as Clerk's error envelope with a stable code, never a bare 500.

``{"errors": [{"code", "message", "long_message", "meta"}]}``
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match

from actas._errors import ActasError
from actas.server.resources import ErrorEnvelope

log = logging.getLogger("actas.server")

_VALIDATION_CODES = {
    "missing": "form_param_missing",
    "extra_forbidden": "form_param_unknown",
}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in [
        (400, "Malformed request, or an operation the resource's state refuses"),
        (401, "Missing or invalid credentials"),
        (403, "Not allowed (origin, ban, permission)"),
        (404, "No such resource"),
        (422, "A parameter is missing, unknown or invalid"),
        (429, "Too many attempts from this address or for this account; see Retry-After"),
        (503, "The database is unavailable; nothing was changed; see Retry-After"),
    ]
}


def error_entry(code: str, message: str, **meta: Any) -> dict[str, Any]:
    """One entry of the ``errors`` array, for failures that are not an ``ActasError``."""
    return {"code": code, "message": message, "long_message": message, "meta": meta}


def envelope(status: int, *errors: dict[str, Any], headers: dict[str, str] | None = None
             ) -> JSONResponse:
    return JSONResponse({"errors": list(errors)}, status_code=status, headers=headers)


def error_response(error: ActasError) -> JSONResponse:
    response = envelope(error.http_status, error.to_dict())
    retry_after = error.meta.get("retry_after_seconds")
    if error.http_status == 429 and isinstance(retry_after, int):
        response.headers["Retry-After"] = str(max(1, retry_after))  # RFC 9110 §10.2.3
    return response


def _validation_error(error: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query",
                                                                            "path", "header")]
    param = ".".join(location) or None
    kind = error.get("type", "")
    code = _VALIDATION_CODES.get(kind, "form_param_format_invalid")
    if kind == "missing":
        message = f"{param} is required." if param else "The request body is required."
    elif kind == "extra_forbidden":
        message = f"{param} is not a parameter this endpoint accepts."
    else:
        detail = str(error.get("msg", "is invalid")).rstrip(".")
        if kind == "value_error":  # our validators' own words, without pydantic's preamble
            detail = detail.removeprefix("Value error, ")
        message = f"{param}: {detail}." if param else f"{detail}."
    return error_entry(code, message, **({"param_name": param} if param else {}))


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        message = "The request body is not valid JSON."
        return envelope(400, error_entry("malformed_request_body", message))
    if any(e.get("loc") == ("body",) and e.get("type") == "model_attributes_type" for e in raw):
        message = "The request body must be a JSON object."
        return envelope(422, error_entry("form_param_format_invalid", message))
    return envelope(422, *[_validation_error(dict(e)) for e in raw])


async def _on_actas_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ActasError)
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        code, message = "resource_not_found", "There is nothing at this address."
    elif exc.status_code == 405:
        code, message = "method_not_allowed", "This address does not accept that method."
        # Starlette names only the first route's methods; a client deserves them all.
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    else:
        code, message = "invalid_request", str(exc.detail)
    return envelope(exc.status_code, error_entry(code, message), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path: each method tried against the routes
    (routes of included routers are wrapped and do not list their methods)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _on_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # The unique indexes decide races the up-front checks could not see.
    log.info("integrity conflict: %s", type(exc).__name__)
    message = "The request conflicts with a change made at the same time; retry it."
    return envelope(409, error_entry("conflict", message))


async def _on_data_error(_request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot store slipped past validation; the client
    # sent it, so it is the client's error, and nothing was written.
    log.warning("database refused a value: %s", type(exc).__name__)
    message = "The request contains a value that cannot be stored."
    return envelope(422, error_entry("form_param_format_invalid", message))


async def _on_database_busy(_request: Request, exc: Exception) -> JSONResponse:
    # Down, restarting, read-only or out of disk: the failing transaction rolled
    # back, so nothing is half-written, and the request can be sent again.
    log.warning("database unavailable: %s", type(exc).__name__)
    message = "The database is busy or unavailable; retry shortly."
    return envelope(503, error_entry("database_unavailable", message),
                    headers={"Retry-After": "1"})


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    message = "actas hit an unexpected error. It has been logged."
    return envelope(500, error_entry("internal_error", message))


_HANDLERS: list[tuple[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]]] = [
    (RequestValidationError, _on_validation),
    (ActasError, _on_actas_error),
    (HTTPException, _on_http_error),
    (IntegrityError, _on_integrity_error),
    (DataError, _on_data_error),
    (OperationalError, _on_database_busy),
    (PoolTimeout, _on_database_busy),  # every pooled connection busy for 30 s
    (psycopg.OperationalError, _on_database_busy),  # db.loop_reads, outside SQLAlchemy
    (Exception, _on_unexpected),
]


def install(app: FastAPI) -> None:
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)


async def response_for(request: Request, exc: Exception) -> JSONResponse:
    """The answer to ``exc``, as the app's handlers give it, for code that runs outside
    FastAPI's routing (``frontend_api.token_route``)."""
    for kind in type(exc).__mro__:
        for handled, handler in _HANDLERS:
            if kind is handled:
                return await handler(request, exc)
    return await _on_unexpected(request, exc)
