"""Dashboard sign-in state: the operator session cookie and its CSRF token.

The cookie (``__actas_operator``, HttpOnly, SameSite=Strict, path
``/dashboard``) holds a random secret whose digest is stored. The CSRF token
is an HMAC of the operator session's id under a key derived from the
instance secret: a synchronizer token that needs no storage of its own.

The sign-in form has no session yet, so it gets a pre-session token: the
form page sets a random ``__actas_sign_in`` cookie (HttpOnly, SameSite=Strict)
and embeds its HMAC; the POST must bring both. A cross-site page can send
neither, so it cannot sign a victim's browser into the attacker's account
(login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session as Db
from starlette.responses import Response

from actas._errors import PermissionDenied, ResourceNotFound
from actas.server import credentials, ids, operator_factors, operators
from actas.server.audit import Record, RequestOrigin
from actas.server.db.schema import Operator, OperatorSession
from actas.server.instance import Instance
from actas.server.sealing import derive_key

COOKIE = "__actas_operator"
SIGN_IN_COOKIE = "__actas_sign_in"
SIGN_IN_COOKIE_MAX_AGE = 3600
PATH = "/dashboard"
LIFETIME_MS = 12 * 3600 * 1000
IDLE_MS = 3600 * 1000
TOKEN_PREFIX = "ops_"  # noqa: S105  (a purpose prefix, not a secret)


class NotSignedIn(Exception):
    """The request has no live operator session (the pages redirect to sign-in)."""


class SecondFactorPending(Exception):
    """Signed in with a password, with a step left (``step``: "second_factor" to check a
    code, "enrol" to set one up): the pages send the operator there."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class CsrfFailed(PermissionDenied):
    code = "csrf_token_invalid"
    default_message = "This form has expired. Go back, reload the page and try again."


@dataclass(frozen=True)
class SignedInOperator:
    operator: Operator
    session_id: str
    csrf_token: str
    pending: str | None = None
    second_factor_at: int | None = None
    second_factor_kind: str | None = None

    @property
    def permissions(self) -> frozenset[str]:
        return operators.permissions(self.operator)


def _mac(instance: Instance, purpose: str, value: str) -> str:
    key = derive_key(instance.settings.instance_secret, purpose)
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def csrf_token(instance: Instance, session_id: str) -> str:
    return _mac(instance, "dashboard-csrf", session_id)


def start(db: Db, instance: Instance, operator: Operator, response: Response,
          origin: RequestOrigin, *, pending: str | None = None,
          second_factor_kind: str | None = None) -> None:
    """A new session in ``response``'s cookie: with a sign-in step left (``pending``), or
    complete, signed in with a second factor already (``second_factor_kind``: a passkey)."""
    now = instance.now_ms()
    secret = credentials.generate(TOKEN_PREFIX)
    db.add(OperatorSession(id=ids.new_id("opsess", now), operator_id=operator.id,
                           token_digest=credentials.digest(secret.reveal()),
                           expire_at=now + LIFETIME_MS, last_active_at=now, ended_at=None,
                           created_at=now, ip_address=(origin.ip_address or "")[:64] or None,
                           user_agent=(origin.user_agent or "")[:512] or None,
                           pending=pending,
                           second_factor_at=now if second_factor_kind else None,
                           second_factor_kind=second_factor_kind))
    db.flush()
    response.set_cookie(COOKIE, secret.reveal(), max_age=LIFETIME_MS // 1000, path=PATH,
                        secure=instance.settings.cookie_secure, httponly=True,
                        samesite="strict")


def current(db: Db, instance: Instance, request: Request, *, allow_pending: bool = False
            ) -> SignedInOperator:
    """The signed-in operator, or raise ``NotSignedIn``; moves the idle timer. A session
    with a sign-in step left raises ``SecondFactorPending``, except on that step's own
    pages (``allow_pending``)."""
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
    if row.pending is not None and not allow_pending:
        raise SecondFactorPending(row.pending)
    row.last_active_at = now
    return SignedInOperator(operator, row.id, csrf_token(instance, row.id), row.pending,
                            row.second_factor_at, row.second_factor_kind)


def second_factor_checked(db: Db, instance: Instance, signed_in: SignedInOperator,
                          kind: str) -> None:
    """The operator just passed a second-factor check in this session: sign-in is
    complete, and a step-up is fresh."""
    row = db.get(OperatorSession, signed_in.session_id)
    if row is not None:
        row.pending, row.second_factor_at, row.second_factor_kind = (
            None, instance.now_ms(), kind)


def step_up_fresh(instance: Instance, signed_in: SignedInOperator) -> bool:
    at = signed_in.second_factor_at
    return at is not None and instance.now_ms() - at <= instance.settings.step_up_minutes * 60_000


def step_up_due(db: Db, instance: Instance, signed_in: SignedInOperator) -> bool:
    """Whether a second-factor check must come first, before impersonating or making or
    revoking an admin tool: the operator has a factor and has not used it within
    ``ACTAS_STEP_UP_MINUTES``, or has none while their role needs one (promoted since
    they signed in: the check page sends them to set one up)."""
    if operator_factors.has_any(db, signed_in.operator.id):
        return not step_up_fresh(instance, signed_in)
    return operator_factors.required_for(signed_in.operator, instance.settings)


def factor_change_due(db: Db, instance: Instance, signed_in: SignedInOperator) -> bool:
    """Whether a check of an existing factor must come before adding, replacing or
    removing one (with none yet, setting the first up needs none)."""
    return operator_factors.has_any(db, signed_in.operator.id) and \
        not step_up_fresh(instance, signed_in)


@dataclass(frozen=True)
class FactorChange:
    signed_in: SignedInOperator
    first: bool  # no factor yet: this one completes a sign-in waiting for it
    go_first: str | None  # where to go instead, first: the second step, or a step-up


def begin_factor_change(db: Db, instance: Instance, request: Request, csrf_token: str, *,
                        back: str) -> FactorChange:
    """Adding or replacing a factor: the signed-in operator (set-up may be pending), CSRF
    checked; never while the second step of sign-in is pending; and, with a factor
    already, after a fresh check of it (then back to ``back``)."""
    signed_in = current(db, instance, request, allow_pending=True)
    check_csrf(instance, signed_in, csrf_token)
    if signed_in.pending == "second_factor":
        return FactorChange(signed_in, False, "/dashboard/sign_in/second_factor")
    if factor_change_due(db, instance, signed_in):
        return FactorChange(signed_in, False, step_up_page(back))
    return FactorChange(signed_in, not operator_factors.has_any(db, signed_in.operator.id),
                        None)


def step_up_page(next_url: str) -> str:
    return f"/dashboard/step_up?{urlencode({'next': next_url})}"


def _sign_in_token(instance: Instance, nonce: str) -> str:
    return _mac(instance, "dashboard-sign-in-csrf", nonce)


def sign_in_csrf_token(instance: Instance, request: Request) -> tuple[str, str | None]:
    """The sign-in form's token, and a new cookie value to set (``None``: keep the one sent)."""
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if 32 <= len(nonce) <= 128:
        return _sign_in_token(instance, nonce), None
    nonce = secrets.token_urlsafe(32)
    return _sign_in_token(instance, nonce), nonce


def set_sign_in_cookie(instance: Instance, response: Response, nonce: str) -> None:
    response.set_cookie(SIGN_IN_COOKIE, nonce, max_age=SIGN_IN_COOKIE_MAX_AGE, path=PATH,
                        secure=instance.settings.cookie_secure, httponly=True,
                        samesite="strict")


def check_sign_in_csrf(instance: Instance, request: Request, submitted: str | None) -> None:
    """Refuse a sign-in POST that did not come from our own form, in this browser."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(instance, request):
        raise CsrfFailed("This sign-in came from another site and was refused.")
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not nonce or not submitted or \
            not hmac.compare_digest(submitted.encode(), _sign_in_token(instance, nonce).encode()):
        raise CsrfFailed()


def _own_origins(instance: Instance, request: Request) -> set[str]:
    public = urlsplit(instance.settings.frontend_api_url)
    return {f"{public.scheme}://{public.netloc}",
            f"{request.url.scheme}://{request.url.netloc}"}


def check_csrf(instance: Instance, signed_in: SignedInOperator, submitted: str | None) -> None:
    # Bytes: a str with non-ASCII characters would make compare_digest raise.
    if not submitted or not hmac.compare_digest(submitted.encode(), signed_in.csrf_token.encode()):
        raise CsrfFailed()


def live_of(db: Db, operator_id: str, now_ms: int) -> list[OperatorSession]:
    """An operator's sessions still in force, newest first."""
    rows = db.scalars(select(OperatorSession).where(
        OperatorSession.operator_id == operator_id, OperatorSession.ended_at.is_(None),
        OperatorSession.expire_at > now_ms).order_by(OperatorSession.created_at.desc()))
    return [r for r in rows if now_ms < r.last_active_at + IDLE_MS]


def end_one(db: Db, instance: Instance, session_id: str, *, by: SignedInOperator,
            origin: RequestOrigin) -> OperatorSession:
    """End one operator session: one's own, or (an owner) anyone's; audited."""
    row = db.get(OperatorSession, session_id, with_for_update=True)
    if row is None or (row.operator_id != by.operator.id and by.operator.role != "owner"):
        raise ResourceNotFound("No such operator session.", session_id=session_id)
    if row.ended_at is None:
        row.ended_at = instance.now_ms()
        instance.record(db, Record(
            type="operator.session_ended", actor_sub=by.operator.id, origin=origin,
            data={"operator_id": row.operator_id, "operator_session_id": row.id}))
    return row


def end(db: Db, instance: Instance, signed_in: SignedInOperator, response: Response) -> None:
    row = db.get(OperatorSession, signed_in.session_id)
    if row is not None:
        row.ended_at = instance.now_ms()
    response.delete_cookie(COOKIE, path=PATH, secure=instance.settings.cookie_secure,
                           httponly=True, samesite="strict")
