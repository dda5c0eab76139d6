"""The dashboard (``/dashboard``): server-rendered pages for operators.

Sign-in, users, the *Impersonate user* button, live impersonations with
*End now* and the *End all* kill switch, the audit log with its chain
status, and (for owners) the operators and their lifecycle. Every state
change is a POST carrying the session's CSRF token; no GET changes anything.
"""

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from actas._errors import ActasError
from actas.server.dashboard import (
    assets,
    audit_log,
    impersonations,
    landing,
    operator_sessions,
    pages,
    sign_in,
)
from actas.server.dashboard import operators as operators_pages
from actas.server.dashboard import users as users_pages
from actas.server.http import errors

router = APIRouter(include_in_schema=False)
for module in (assets, landing, sign_in, users_pages, impersonations, audit_log, operators_pages):
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
                                error=exc, me=None)
        return errors.error_response(exc)

    app.add_exception_handler(operator_sessions.NotSignedIn, not_signed_in)
    app.add_exception_handler(ActasError, actas_error)


__all__ = ["install", "router"]
