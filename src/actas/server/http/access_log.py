"""What goes into the access log: every request but a successful token refresh,
with secrets redacted (``log_redaction``).

A signed-in browser refreshes its session token about every 50 s, so at
50,000 browsers the refresh is 1,000 lines a second of the same success,
which say nothing an operator reads (the audit log holds what matters), and
formatting and writing them cost a tenth of a refresh's CPU. A refused
refresh (401, 403, 404, 429, 5xx) is logged like any other request, so is
every other route.

The filter reads uvicorn's access record as uvicorn writes it:
``(client, method, path with query, HTTP version, status)``. A record of
any other shape is only redacted.
"""

from __future__ import annotations

import logging

from actas.server.frontend_api.token_route import PATH as REFRESH_PATH
from actas.server.http.log_redaction import RedactSecrets

ACCESS_LOGGER = "uvicorn.access"


def is_successful_refresh(args: object) -> bool:
    """Whether an access record's arguments are a token refresh that succeeded."""
    if not isinstance(args, tuple) or len(args) != 5:
        return False
    _client, method, path, _version, status = args
    return (status == 200 and method == "POST" and isinstance(path, str)
            and REFRESH_PATH.fullmatch(path.partition("?")[0]) is not None)


class AccessLogFilter(RedactSecrets):
    def filter(self, record: logging.LogRecord) -> bool:
        if is_successful_refresh(record.args):
            return False
        return super().filter(record)


def install() -> None:
    """Attach the filter to uvicorn's access logger (call before serving), once."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(each, AccessLogFilter) for each in logger.filters):
        logger.addFilter(AccessLogFilter())
