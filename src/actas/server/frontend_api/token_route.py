"""``POST /v1/client/sessions/{id}/tokens`` served ahead of FastAPI's routing.

Every signed-in browser calls it about every 50 s, so it is most of an
install's traffic. ``TokenRoute`` sits inside the app's middleware (CORS, body
limits) but before FastAPI's route matching, dependency injection and response
model, which cost more than the database read itself; the FastAPI endpoint in
``client.py`` describes the route in the OpenAPI document and answers the same
way through ``respond``. Errors get the app's envelopes
(``http.errors.response_for``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from actas._errors import ImpersonationRefused, SessionNotActive
from actas.server import sessions, token_refresh
from actas.server.http import cookies, errors
from actas.server.http.origins import check_origin, instance_of, request_origin
from actas.server.impersonation import ending
from actas.server.instance import Instance

PATH = re.compile(r"/v1/client/sessions/([^/]{1,64})/tokens")


async def respond(request: Request, session_id: str, origin: str) -> Response:
    """Mint a token for ``session_id`` (the browser's own, checked) and answer with it,
    also as the ``__session`` cookie.

    The checks and the signature run right here on the event loop: a hop to a
    worker thread costs more than they do, and threads contending for the GIL
    stretch the tail latency. On SQLite (WAL mode) a read is local and takes no
    lock, so it runs as it is; on PostgreSQL a read is a network round trip that
    an outage can stretch to a timeout, so the one statement goes through psycopg's
    async API (``Instance.loop_reads``) and the loop serves other requests
    meanwhile. What needs more from the database (a refusal's details, an
    impersonation's policy, a key schedule to re-read every 10 s) and every
    write (last-active due, an impersonation signed under its row's lock) go to
    a worker thread."""
    instance = instance_of(request)
    cookie = request.cookies.get(cookies.client_cookie_name(instance.settings))
    try:
        check = functools.partial(token_refresh.check, instance, client_cookie=cookie,
                                  session_id=session_id)
        checked = None
        if instance.reads_never_wait:
            with instance.reading() as connection:
                checked = check(connection)
        else:
            params = token_refresh.read_params(cookie, session_id)
            found = (None if params is None else
                     await instance.loop_reads.one(token_refresh.OWN_SESSION_SQL, params))
            if found is not None:
                checked = token_refresh.check_read(instance, found)
            if checked is None:
                checked = await run_in_threadpool(_check_reading, instance, check)
        if checked.needs_write:
            token = await run_in_threadpool(
                functools.partial(token_refresh.write_and_mint, instance, checked, azp=origin))
        else:
            token = token_refresh.mint(instance, checked, azp=origin)
    except SessionNotActive as error:
        if error.meta.get("status") in {"expired", "abandoned"}:
            await run_in_threadpool(sessions.settle_lapsed, instance, session_ids=[session_id])
        raise
    except ImpersonationRefused as refusal:
        raise await run_in_threadpool(
            functools.partial(ending.end_refused, instance, session_id=session_id,
                              refusal=refusal, origin=request_origin(request))) from refusal
    response = Response(b'{"object":"token","jwt":"%s"}' % token.jwt.encode("ascii"),
                        media_type="application/json")
    cookies.set_session(response, instance.settings, token.jwt)
    return response


def _check_reading(instance: Instance,
                   check: Callable[[Connection], token_refresh.Checked]) -> token_refresh.Checked:
    with instance.reading() as connection:
        return check(connection)


class TokenRoute:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (PATH.fullmatch(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST" else None)
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            origin = check_origin(instance_of(request).settings, request.headers)
            response = await respond(request, found.group(1), origin)
        except Exception as error:  # every failure gets the envelope the app would give
            response = await errors.response_for(request, error)
        await response(scope, receive, send)
