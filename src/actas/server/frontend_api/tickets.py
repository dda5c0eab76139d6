"""``GET /v1/tickets/accept?ticket=…``: the actor token's ``url``.

Opened by a person (the operator's browser), so it answers like a page: on
success it signs this browser in as the user and redirects to the
application; on failure it shows what went wrong in plain words.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from actas._errors import ImpersonationRefused, TicketRejected, TooManyRequests
from actas.server.frontend_api.responses import client_or_new
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import redemption

router = APIRouter(tags=["Frontend API"])
# The JSON API's error body (a component every JSON route documents); the model
# itself cannot be named here, or FastAPI files it under this route's text/html.
_ERROR_ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cannot sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#1a1a1a}}h1{{font-size:1.4rem}}code{{background:#f0f0f0;padding:.1rem .3rem}}</style>
</head><body><main><h1>This impersonation link cannot be used</h1>
<p role="alert">{message}</p><p>Error code: <code>{code}</code></p></main></body></html>
"""


@router.get("/v1/tickets/accept", response_class=HTMLResponse,
            responses={
                303: {"description": "Signed in; redirecting to the application"},
                400: {"description": "Unknown, expired, revoked or used ticket (HTML page); "
                                     "JSON when the address itself is malformed (a NUL)",
                      "content": {"text/html": {},
                                  "application/json": {"schema": _ERROR_ENVELOPE}}},
                403: {"description": "The impersonation policy refused (HTML page)",
                      "content": {"text/html": {}}},
                429: {"description": "Too many failed attempts from this address or with "
                                     "this ticket (HTML page)",
                      "content": {"text/html": {}}},
                # JSON, not a page: FastAPI's validation answers before this handler runs.
                422: {"description": "The ticket parameter is missing",
                      "content": {"application/json": {"schema": _ERROR_ENVELOPE}}},
                503: {"description": "The database is unavailable",
                      "content": {"application/json": {"schema": _ERROR_ENVELOPE}}},
            },
            summary="Accept an impersonation ticket: sign in and go to the application")
def accept(request: Request,
           ticket: Annotated[str, Query(max_length=256)]) -> Response:
    instance = instance_of(request)
    origin = request_origin(request)
    response = RedirectResponse(instance.settings.landing_url, status_code=303)
    try:
        # Rate-limited, and a refusal is audited, by redemption.attempt.
        with redemption.attempt(instance, ticket=ticket, origin=origin) as settle, \
                instance.transaction() as db:
            client = client_or_new(db, instance, request, response)
            redemption.redeem(db, instance, ticket=ticket, client=client, origin=origin)
            settle(db)
    except (TicketRejected, ImpersonationRefused, TooManyRequests) as error:
        page = _PAGE.format(message=html.escape(error.message), code=html.escape(error.code))
        return HTMLResponse(page, status_code=error.http_status,
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": "default-src 'none'; "
                                     "style-src 'unsafe-inline'"})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the ticket is in this URL
    return response
