"""Dashboard sign-in state: the operator session cookie and its CSRF token.

The cookie (``__actas_operator``, HttpOnly, SameSite=Strict, path
``/dashboard``) holds a random secret whose digest is stored. The CSRF token
is an HMAC of the operator session's id under a key derived from the
instance secret: a synchronizer token that needs no storage of its own.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session as Db
from starlette.responses import Response

from actas._errors import PermissionDenied
from actas.server import credentials, ids, operators
from actas.server.db.schema import Operator, OperatorSession
from actas.server.instance import Instance
from actas.server.sealing import derive_key

COOKIE = "__actas_operator"
PATH = "/dashboard"
LIFETIME_MS = 12 * 3600 * 1000
IDLE_MS = 3600 * 1000
TOKEN_PREFIX = "ops_"  # noqa: S105  (a purpose prefix, not a secret)


class NotSignedIn(Exception):
    """The request has no live operator session (the pages redirect to sign-in)."""


class CsrfFailed(PermissionDenied):
    code = "csrf_token_invalid"
    default_message = "This form has expired. Go back, reload the page and try again."


@dataclass(frozen=True)
class SignedInOperator:
    operator: Operator
    session_id: str
    csrf_token: str

    @property
    def permissions(self) -> frozenset[str]:
        return operators.permissions(self.operator)


def csrf_token(instance: Instance, session_id: str) -> str:
    key = derive_key(instance.settings.instance_secret, "dashboard-csrf")
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def start(db: Db, instance: Instance, operator: Operator, response: Response) -> None:
    now = instance.now_ms()
    secret = credentials.generate(TOKEN_PREFIX)
    db.add(OperatorSession(id=ids.new_id("opsess", now), operator_id=operator.id,
                           token_digest=credentials.digest(secret.reveal()),
                           expire_at=now + LIFETIME_MS, last_active_at=now, ended_at=None,
                           created_at=now))
    db.flush()
    response.set_cookie(COOKIE, secret.reveal(), max_age=LIFETIME_MS // 1000, path=PATH,
                        secure=instance.settings.cookie_secure, httponly=True,
                        samesite="strict")


def current(db: Db, instance: Instance, request: Request) -> SignedInOperator:
    """The signed-in operator, or raise ``NotSignedIn``; moves the idle timer."""
    cookie = request.cookies.get(COOKIE, "")
    if not cookie.startswith(TOKEN_PREFIX) or len(cookie) > 128:
        raise NotSignedIn
    now = instance.now_ms()
    row = db.scalar(select(OperatorSession).where(
        OperatorSession.token_digest == credentials.digest(cookie)))
    if row is None or row.ended_at is not None or now >= row.expire_at \
            or now >= row.last_active_at + IDLE_MS:
        raise NotSignedIn
    operator = db.get(Operator, row.operator_id)
    if operator is None or operator.disabled:
        raise NotSignedIn
    row.last_active_at = now
    return SignedInOperator(operator, row.id, csrf_token(instance, row.id))


def check_csrf(instance: Instance, signed_in: SignedInOperator, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, signed_in.csrf_token):
        raise CsrfFailed()


def end(db: Db, instance: Instance, signed_in: SignedInOperator, response: Response) -> None:
    row = db.get(OperatorSession, signed_in.session_id)
    if row is not None:
        row.ended_at = instance.now_ms()
    response.delete_cookie(COOKIE, path=PATH, secure=instance.settings.cookie_secure,
                           httponly=True, samesite="strict")
