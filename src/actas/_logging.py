"""Log lines that say who: ``user_id`` and ``actor_sub`` on every record of a request.

    handler.addFilter(actas.AuthLogFilter())   # on the handler: a logger's own filters
                                               # do not see its children's records
    with actas.bind_auth(auth):          # the integrations do this for you
        log.info("refund issued")        # record.user_id, record.actor_sub set

So that every log line of an impersonated request names the impersonator.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from actas._auth import Auth

_current: contextvars.ContextVar[Auth | None] = contextvars.ContextVar("actas_auth",
                                                                       default=None)


@contextlib.contextmanager
def bind_auth(auth: Auth) -> Iterator[None]:
    """Make ``auth`` the current request's identity for log records, within the block."""
    token = _current.set(auth)
    try:
        yield
    finally:
        _current.reset(token)


def current_auth() -> Auth | None:
    return _current.get()


class AuthLogFilter(logging.Filter):
    """Adds ``user_id`` and ``actor_sub`` (``None`` when absent) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        auth = _current.get()
        record.user_id = auth.user_id if auth is not None else None
        record.actor_sub = auth.actor.sub if auth is not None and auth.actor else None
        return True
