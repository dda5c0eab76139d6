"""Keep secrets out of access logs: the ticket in ``/v1/tickets/accept?ticket=…``.

An actor token's accept link carries its secret in the query string, and
uvicorn's access log prints full paths. A ticket whose redemption was
refused (say, nested impersonation) is still valid, so it must not sit in a
log file. This filter rewrites the string arguments of the access records.

The query is judged as the server reads it, not as it is spelt: each
``&``-separated parameter is decoded the way Starlette decodes it
(``parse_qsl``, blank values kept), so ``%74icket=tkt_…`` is the ``ticket``
it redeems as. A value is redacted when its decoded name is ``ticket`` or
``token`` (in any case), or when the decoded value holds anything shaped like
an actas secret (``tkt_…``, ``sk_…``, ``ct_…``) whatever the parameter is
called; a parameter whose very name holds a secret is redacted whole. Every
other parameter is logged exactly as it was sent.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote

from actas.server.credentials import CLIENT_TOKEN_PREFIX, SECRET_KEY_PREFIX
from actas.server.impersonation.actor_tokens import TICKET_PREFIX

REDACTED = "[redacted]"
_SECRET_NAMES = frozenset({"ticket", "token"})
# A purpose prefix at the start of a word: "tkt_…" anywhere in "1;ticket=tkt_…",
# but not the "sk_" ending "desk_lamp".
_SECRET_VALUE = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(re.escape(p) for p in (TICKET_PREFIX, SECRET_KEY_PREFIX, CLIENT_TOKEN_PREFIX))
    + ")", re.IGNORECASE)


def _redacted(parameter: str) -> str:
    """One ``name=value`` of a query, as it may be logged."""
    decoded = parse_qsl(parameter, keep_blank_values=True)
    if not decoded:
        return parameter
    ((name, value),) = decoded
    if _SECRET_VALUE.search(name):  # a secret sent as a name ("?tkt_…"): hide it all
        return REDACTED
    if name.casefold() in _SECRET_NAMES or _SECRET_VALUE.search(value):
        return f"{parameter.partition('=')[0]}={REDACTED}"
    return parameter


def _redacted_path(base: str) -> str:
    """The path part, with any secret in it hidden: a mail client that encodes the
    link's ``?`` (``/accept%3Fticket%3Dtkt_…``) puts the ticket there, unredeemed."""
    if not _SECRET_VALUE.search(unquote(unquote(base))):
        return base
    cut = _SECRET_VALUE.search(base) or re.search(r"%3F|%253F", base, re.IGNORECASE)
    return (base[:cut.start()] if cut else "/") + REDACTED


def redact(path: str) -> str:
    """``path`` with the value of every secret-bearing query parameter replaced."""
    base, question, query = path.partition("?")
    base = _redacted_path(base)
    if not query:
        return base + question
    # Split exactly where parse_qsl (and so the server) splits: '&' only, not ';'.
    return base + question + "&".join(_redacted(p) for p in query.split("&"))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):  # uvicorn's record, and actas serve's (http.access_log)
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True

