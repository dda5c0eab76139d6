"""What goes into the access log: every request but a successful token refresh,
with secrets redacted (``log_redaction``).

A signed-in browser refreshes its session token about every 50 s, so at
50,000 browsers the refresh is 1,000 lines a second of the same success,
which say nothing an operator reads (the audit log holds what matters), and
formatting and writing them cost a tenth of a refresh's CPU. A refused
refresh (401, 403, 404, 429, 5xx) is logged like any other request, so is
every other route.

The filter reads the access records as the servers write them: uvicorn's
``(client, method, path with query, HTTP version, status)`` and granian's
mapping of ``method``, ``path`` (percent-decoded: quoted again here, as uvicorn
does, so a request cannot forge a log line), ``query_string``, ``status`` and
more. A record of any other shape is only redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote

from actas.server.frontend_api.token_route import PATH as REFRESH_PATH
from actas.server.http.log_redaction import RedactSecrets

# uvicorn's (``actas dev``) and granian's (``actas serve``).
ACCESS_LOGGERS = ("uvicorn.access", "granian.access")


def _is_refresh(method: object, path: object, status: object) -> bool:
    return (status == 200 and method == "POST" and isinstance(path, str)
            and REFRESH_PATH.fullmatch(path.partition("?")[0]) is not None)


def is_successful_refresh(args: object) -> bool:
    """Whether an access record's arguments are a token refresh that succeeded."""
    if isinstance(args, Mapping):  # granian's atoms
        return _is_refresh(args.get("method"), args.get("path"), args.get("status"))
    if isinstance(args, tuple) and len(args) == 5:  # uvicorn's
        _client, method, path, _version, status = args
        return _is_refresh(method, path, status)
    return False


class AccessLogFilter(RedactSecrets):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping) and "path" in args and "query_string" in args:
            # granian's: the path percent-decoded and the query apart. The path is
            # quoted again, as uvicorn logs it, so that a "%0A" in a request cannot
            # write a line of its own into the log; the query is rejoined, so that
            # it is judged and redacted as the server reads it, and logged where the
            # format prints the path.
            path, query = quote(str(args["path"])), args["query_string"]
            record.args = args = {**args, "path": f"{path}?{query}" if query else path,
                                  "query_string": ""}
        if is_successful_refresh(args):
            return False
        return super().filter(record)


def install() -> None:
    """Attach the filter to the access loggers (call before serving), once each."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(each, AccessLogFilter) for each in logger.filters):
            logger.addFilter(AccessLogFilter())
