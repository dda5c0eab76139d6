"""The dashboard (``/dashboard``): server-rendered pages for operators.

Sign-in, users, the *Impersonate user* button, live impersonations with
*End now* and the *End all* kill switch, the audit log with its chain
status, and (for owners) the operators and their lifecycle. Every state
change is a POST carrying the session's CSRF token; no GET changes anything.
"""

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from actas._errors import ActasError
from actas.server.dashboard import (
    account,
    admin_tools,
    approvals,
    assets,
    audit_log,
    impersonations,
    landing,
    operator_sessions,
    pages,
    passkeys,
    second_factor,
    sign_in,
)
from actas.server.dashboard import operators as operators_pages
from actas.server.dashboard import users as users_pages
from actas.server.http import errors
from actas.server.http.origins import instance_of

router = APIRouter(include_in_schema=False)
for module in (assets, landing, sign_in, users_pages, impersonations, approvals, audit_log,
               operators_pages, account, second_factor, passkeys, admin_tools):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    """Mount the pages, and answer their errors as pages rather than JSON."""
    app.include_router(router)

    async def not_signed_in(request: Request, _exc: Exception) -> Response:
        # Back to the page asked for once signed in (a deep link into the audit log,
        # say); only a GET is worth returning to.
        target = "/dashboard/sign_in"
        if request.method == "GET":
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target += "?" + urlencode({"next": wanted})
        return pages.redirect(request, target)

    async def actas_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ActasError)
        if request.url.path.startswith("/dashboard"):
            return pages.render(request, "error.html", status_code=exc.http_status,
                                error=exc, me=_signed_in_or_none(request))
        return errors.error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        # A person who mistypes a dashboard address (or any page address, in a browser)
        # gets a page; an API client still gets the JSON envelope.
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and request.method in ("GET", "HEAD") and _wants_a_page(request):
            return pages.render(request, "not_found.html", status_code=404,
                                me=_signed_in_or_none(request))
        return await errors.response_for(request, exc)

    async def second_step(request: Request, exc: Exception) -> Response:
        # Signed in with a password only: the step left comes first, then the page asked.
        assert isinstance(exc, operator_sessions.SecondFactorPending)
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = sign_in.STEP_PAGES[exc.step]
        if request.method == "GET":
            target += "?" + urlencode({"next": wanted})
        return pages.redirect(request, target)

    app.add_exception_handler(operator_sessions.NotSignedIn, not_signed_in)
    app.add_exception_handler(operator_sessions.SecondFactorPending, second_step)
    app.add_exception_handler(ActasError, actas_error)
    app.add_exception_handler(HTTPException, http_error)


def _wants_a_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/dashboard"):
        return True
    if path.startswith(("/v1/", "/.well-known/", "/docs", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _signed_in_or_none(request: Request) -> operator_sessions.SignedInOperator | None:
    """The signed-in operator, for the header of an error page; none when there is none
    (or when the database cannot say: an error page must not fail too)."""
    instance = instance_of(request)
    try:
        with instance.transaction() as db:
            return operator_sessions.current(db, instance, request)
    except (operator_sessions.NotSignedIn, ActasError, SQLAlchemyError):
        return None


__all__ = ["install", "router"]
