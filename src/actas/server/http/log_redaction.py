"""Keep secrets out of access logs: the ticket in ``/v1/tickets/accept?ticket=…``.

An actor token's accept link carries its secret in the query string, and
uvicorn's access log prints full paths. A ticket whose redemption was
refused (say, nested impersonation) is still valid, so it must not sit in a
log file. This filter rewrites the path argument of uvicorn's access records.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"(?P<name>[?&](?:ticket|token)=)[^&\s]+")


def redact(path: str) -> str:
    return _SECRET_PARAMS.sub(r"\g<name>[redacted]", path)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Attach the filter to uvicorn's access logger (call before serving)."""
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
