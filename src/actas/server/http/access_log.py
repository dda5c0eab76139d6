"""What goes into the access log: every request but a successful token refresh,
with secrets redacted (``log_redaction``).

A signed-in browser refreshes its session token about every 50 s, so at
50,000 browsers the refresh is 1,000 lines a second of the same success,
which say nothing an operator reads (the audit log holds what matters). A
refused refresh (401, 403, 404, 429, 5xx) is logged like any other request,
so is every other route.

``actas serve`` writes its access log itself (``AccessLog``, on the logger
``actas.access``), not through granian's: granian builds a record for every
request, timestamp and all, and a filter could only drop the refresh's after
it was paid for, a tenth of a refresh's CPU in a profile. Here a successful
refresh costs one comparison. ``actas dev`` keeps uvicorn's access log, whose
records the same filter (``AccessLogFilter``) judges and redacts.

A line reads as uvicorn writes it: ``client - "METHOD /path?query HTTP/1.1"
status``, the path quoted (so a ``%0A`` in a request cannot write a line of
its own) and its secrets redacted.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote, quote_from_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actas.server.frontend_api.token_route import PATH as REFRESH_PATH
from actas.server.http.log_redaction import RedactSecrets

LOGGER = "actas.access"
# ``actas serve``'s own and uvicorn's (``actas dev``).
ACCESS_LOGGERS = (LOGGER, "uvicorn.access")
FORMAT = '%s - "%s %s HTTP/%s" %d'
# Logged for a request whose client left before it was answered (nothing was sent).
CLIENT_CLOSED = 499

_log = logging.getLogger(LOGGER)


def _is_refresh(method: object, path: object, status: object) -> bool:
    return (status == 200 and method == "POST" and isinstance(path, str)
            and REFRESH_PATH.fullmatch(path.partition("?")[0]) is not None)


def is_successful_refresh(args: object) -> bool:
    """Whether an access record's arguments are a token refresh that succeeded."""
    if isinstance(args, tuple) and len(args) == 5:  # (client, method, path, version, status)
        _client, method, path, _version, status = args
        return _is_refresh(method, path, status)
    return False


class AccessLogFilter(RedactSecrets):
    def filter(self, record: logging.LogRecord) -> bool:
        if is_successful_refresh(record.args):
            return False
        return super().filter(record)


class AccessLog:
    """ASGI middleware: one ``actas.access`` line per HTTP request, once it is answered
    (or has failed: a request that raised before answering is logged as the 500 the
    server sends, one whose client left first as 499), but none for a successful
    token refresh."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None  # none sent yet

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        except asyncio.CancelledError:
            if status is None:  # the client went away before any answer: nginx's 499
                status = CLIENT_CLOSED
            raise
        finally:
            if status is None:  # what the server answers for an app that answered nothing
                status = 500
            method = scope["method"]
            if not _is_refresh(method, scope["path"], status) \
                    and _log.isEnabledFor(logging.INFO):
                _log.info(FORMAT, _client(scope), method, _target(scope),
                          scope.get("http_version", "1.1"), status)


def _client(scope: Scope) -> str:
    """``address:port``; quoted, since behind a trusted proxy the address is whatever
    its ``X-Forwarded-For`` said, and must not write quotes or line breaks."""
    client = scope.get("client")
    return quote(f"{client[0]}:{client[1]}", safe=":.[]") if client else "-"


# What a query keeps as it was sent: printable ASCII but the space, and the quote and
# backslash that would make the line's quoted request ambiguous.
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


def _target(scope: Scope) -> str:
    """The request's path and query as uvicorn logs them: the (decoded) path quoted
    again. The query is logged as sent but for what no request line should hold and a
    log reader may take for a line break (a byte over 0x7F: Python's own splitlines
    breaks at 0x85), which is percent-encoded."""
    path = quote(scope.get("root_path", "") + scope["path"])
    query = scope.get("query_string", b"")
    return f"{path}?{quote_from_bytes(query, safe=_QUERY_SAFE)}" if query else path


def install() -> None:
    """Attach the filter to the access loggers (call before serving), once each."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(each, AccessLogFilter) for each in logger.filters):
            logger.addFilter(AccessLogFilter())
