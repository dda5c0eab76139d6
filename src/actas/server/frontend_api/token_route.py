"""``POST /v1/client/sessions/{id}/tokens`` served ahead of the whole app.

Every signed-in browser calls it about every 50 s, so it is most of an
install's traffic. The app hands it to ``serve`` before any middleware
(``app.App``): the middleware would cost more than the database read itself,
and it needs none of it. It reads no body, so the body limits have nothing to
limit; it adds the CORS headers the app's CORS middleware would (``_cors``);
and every failure gets the app's error envelope (``http.errors.response_for``).
The FastAPI endpoint in ``client.py`` describes the route in the OpenAPI
document and answers the same way through ``respond``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection

from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from actas._errors import ImpersonationRefused, SessionNotActive
from actas.server import sessions, token_refresh
from actas.server.http import cookies, errors
from actas.server.http.origins import check_origin, instance_of, request_origin
from actas.server.impersonation import ending
from actas.server.instance import Instance
from actas.server.session_tokens import SessionToken

PATH = re.compile(r"/v1/client/sessions/([^/\x00]{1,64})/tokens")  # NUL: RequestLimits refuses it


async def respond(request: Request, session_id: str, origin: str) -> Response:
    """Mint a token for ``session_id`` (the browser's own, checked) and answer with it,
    also as the ``__session`` cookie (``serve`` gives the same answer, built directly)."""
    token = await mint(request, session_id, origin)
    response = Response(_body(token.jwt), media_type="application/json")
    cookies.set_session(response, instance_of(request).settings, token.jwt)
    return response


def _body(jwt: str) -> bytes:
    return b'{"object":"token","jwt":"%s"}' % jwt.encode("ascii")


async def mint(request: Request, session_id: str, origin: str) -> SessionToken:
    """A token for ``session_id`` (the browser's own, checked).

    The checks and the signature run right here on the event loop: a hop to a
    worker thread costs more than they do, and threads contending for the GIL
    stretch the tail latency. The one statement of a refresh is read without
    SQLAlchemy: on SQLite (WAL mode) a read is local and takes no lock, so it
    runs as it is, through the driver (``token_refresh.read_on_sqlite``); on
    PostgreSQL a read is a network round trip that an outage can stretch to a
    timeout, so it goes through psycopg's async API (``Instance.loop_reads``)
    and the loop serves other requests meanwhile. What needs more from the
    database (a refusal's details, a key schedule to re-read every 10 s) runs
    ``token_refresh.check`` (on SQLite on the loop, on PostgreSQL in a worker
    thread); every write (last-active due, an impersonation re-checked against
    the policy and signed under its row's lock) goes to a worker thread."""
    instance = instance_of(request)
    cookie = request.cookies.get(cookies.client_cookie_name(instance.settings))
    try:
        check = functools.partial(token_refresh.check, instance, client_cookie=cookie,
                                  session_id=session_id)
        checked = None
        params = token_refresh.read_params(cookie, session_id)
        if params is None:
            found = None
        elif instance.reads_never_wait:
            found = token_refresh.read_on_sqlite(instance, params)
        else:
            found = await instance.loop_reads.one(token_refresh.OWN_SESSION_SQL, params)
        if found is not None:
            checked = token_refresh.check_read(instance, found)
        if checked is None:  # a refusal to explain, or a key schedule to re-read
            if instance.reads_never_wait:
                with instance.reading() as connection:
                    checked = check(connection)
            else:
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
    return token


def _check_reading(instance: Instance,
                   check: Callable[[Connection], token_refresh.Checked]) -> token_refresh.Checked:
    with instance.reading() as connection:
        return check(connection)


async def serve(scope: Scope, receive: Receive, send: Send, session_id: str) -> None:
    """Answer a refresh (``PATH`` matched ``scope``'s path, whose group is ``session_id``)."""
    request = Request(scope, receive)
    settings = instance_of(request).settings
    origin = request.headers.get("origin")
    try:
        token = await mint(request, session_id, check_origin(settings, request.headers))
        body, cookie = _body(token.jwt), cookies.session_cookie_header(settings, token.jwt)
    except Exception as error:  # every failure gets the envelope the app would give
        response = await errors.response_for(request, error)
        _cors(response, origin, settings.trusted_origins)
        await response(scope, receive, send)
        return
    # What respond() and _cors() give, written straight to the server: a Starlette
    # Response with its cookie and CORS headers cost ~30 µs of a refresh's ~1 ms.
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json"),
               (b"set-cookie", cookie), *_cors_allowance(origin, settings.trusted_origins),
               (b"vary", b"Origin")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cors(response: Response, origin: str | None, trusted: Collection[str]) -> None:
    """Add ``_cors_allowance``'s headers to ``response``, and ``Origin`` to its ``Vary``."""
    headers = response.headers
    for name, value in _cors_allowance(origin, trusted):
        headers[name.decode("latin-1")] = value.decode("latin-1")
    headers["vary"] = ", ".join([*headers.getlist("vary"), "Origin"])


def _cors_allowance(origin: str | None, trusted: Collection[str]
                    ) -> list[tuple[bytes, bytes]]:
    """The headers the app's ``CORSMiddleware`` adds to a response to a request from
    ``origin`` (credentials allowed, origins listed) but ``Vary: Origin``, which it adds
    always: with an origin, credentials, and an allowed origin mirrored."""
    if origin is None:
        return []
    allowance = [(b"access-control-allow-credentials", b"true")]
    if origin in trusted:
        allowance.append((b"access-control-allow-origin", origin.encode("latin-1")))
    return allowance
