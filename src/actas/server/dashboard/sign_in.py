"""Operator sign-in and sign-out (argon2id, rate-limited)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from actas._errors import InvalidCredentials, TooManyRequests
from actas.server import operator_factors, rate_limits
from actas.server.audit import Record
from actas.server.dashboard import operator_sessions, pages
from actas.server.db.schema import Operator
from actas.server.http.origins import instance_of, request_origin

router = APIRouter()

FAILED = "operator.sign_in_failed"
# Where an operator signed in with a password goes next, by what is left to do.
STEP_PAGES = {"second_factor": "/dashboard/sign_in/second_factor",
              "enrol": "/dashboard/account/second_factor"}


def next_page(value: str | None) -> str:
    """Where to go after signing in: a dashboard page of this server, never elsewhere
    (``//evil.test``, ``/dashboard/../x``, a scheme: each falls back to the users page)."""
    fallback = "/dashboard/users"
    if not value or "\\" in value or any(ord(c) < 0x20 for c in value):
        return fallback
    path = value.split("?", 1)[0]
    if path != "/dashboard" and not path.startswith("/dashboard/"):
        return fallback
    if ".." in path or "//" in path or path.startswith("/dashboard/sign_"):
        return fallback
    return value


def sign_in_page(request: Request, *, status_code: int = 200, email: str = "",
          error: str | None = None, next_url: str | None = None) -> Response:
    instance = instance_of(request)
    token, new_cookie = operator_sessions.sign_in_csrf_token(instance, request)
    response = pages.render(request, "sign_in.html", status_code=status_code, email=email,
                            error=error, csrf_token=token,
                            next_url=next_page(next_url or request.query_params.get("next")))
    if new_cookie is not None:
        operator_sessions.set_sign_in_cookie(instance, response, new_cookie)
    return response


@router.get("/dashboard/sign_in")
def sign_in_form(request: Request) -> Response:
    return sign_in_page(request)


@router.post("/dashboard/sign_in")
def sign_in(request: Request, email: Annotated[str, Form(max_length=320)],
            password: Annotated[str, Form(max_length=1024)],
            csrf_token: Annotated[str, Form(max_length=128)] = "",
            next_url: Annotated[str, Form(alias="next", max_length=2000)] = "") -> Response:
    instance = instance_of(request)
    origin = request_origin(request)
    operator_sessions.check_sign_in_csrf(instance, request, csrf_token)
    email = email.strip().lower()
    # The limit first, in a short transaction of its own (a failure is reserved and
    # refunded on success); the password check runs outside any transaction, so an
    # argon2 run never holds the database's write lock (see rate_limits).
    with instance.transaction() as db:
        try:
            charge = rate_limits.OPERATOR_SIGN_IN.spend(db, account=email, origin=origin,
                                                        now_ms=instance.now_ms())
        except TooManyRequests as limited:
            return sign_in_page(request, status_code=429, email=email, next_url=next_url,
                         error=limited.message + " Or ask an owner to check your account.")
        operator = db.scalar(select(Operator).where(Operator.email_address == email))
    try:
        instance.passwords.verify(operator.password_hash if operator else None, password)
        if operator is None or operator.disabled:
            raise InvalidCredentials()
    except InvalidCredentials:
        instance.record_alone(Record(type=FAILED, origin=origin,
                                     data={"identifier": email}))
        return sign_in_page(request, status_code=401, email=email, next_url=next_url,
                     error="That email address and password do not match an operator.")
    with instance.transaction() as db:
        current = db.get(Operator, operator.id)
        if current is None or current.disabled or \
                current.password_hash != operator.password_hash:  # changed meanwhile
            return sign_in_page(request, status_code=401, email=email, next_url=next_url,
                         error="That email address and password do not match an operator.")
        rate_limits.refund(db, charge)  # a success is not a failed sign-in
        # A password alone completes sign-in only for whom no second factor is needed.
        pending = ("second_factor" if operator_factors.has_any(db, current.id) else
                   "enrol" if operator_factors.required_for(current, instance.settings)
                   else None)
        target = next_page(next_url)
        if pending is not None:
            target = f"{STEP_PAGES[pending]}?{urlencode({'next': target})}"
        response = pages.redirect(request, target)
        operator_sessions.start(db, instance, current, response, origin, pending=pending)
        instance.record(db, Record(type="operator.signed_in", actor_sub=current.id,
                                   origin=origin, data={"email": email}))
        return response


@router.post("/dashboard/sign_out")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    instance = instance_of(request)
    response = pages.redirect(request, "/dashboard/sign_in")
    with instance.transaction() as db:
        try:
            signed_in = operator_sessions.current(db, instance, request)
        except operator_sessions.NotSignedIn:
            return response
        operator_sessions.check_csrf(instance, signed_in, csrf_token)
        operator_sessions.end(db, instance, signed_in, response)
        instance.record(db, Record(type="operator.signed_out", actor_sub=signed_in.operator.id,
                                   origin=request_origin(request)))
    return response
