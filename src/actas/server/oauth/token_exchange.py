"""``POST /oauth/token``: RFC 8693 token exchange, for impersonation.

An application's admin tool authenticates as a machine client (``client_secret_basic``
or ``client_secret_post``, RFC 6749 §2.3.1) and exchanges:

- ``subject_token``: the user to act as, an actas user id
  (``subject_token_type=urn:actas:params:oauth:token-type:user_id``);
- ``actor_token`` (optional): the operator the tool acts for
  (``actor_token_type=urn:actas:params:oauth:token-type:operator_id``). Then that
  operator's role applies as in the dashboard, and the tool's own rights too (both must
  allow it). Without one, the tool itself is the actor;
- ``reason``, ``mode`` (``read_only`` by default) and ``duration`` (seconds): actas's
  parameters, as on an actor token;

for an actas ticket (``requested_token_type=urn:actas:params:oauth:token-type:ticket``,
the default): ``access_token`` is the ticket and ``url`` opens the application as the
user, exactly like an actor token's. The same policy, consent, approval rules and audit
events apply as everywhere else. Errors are RFC 6749 §5.2's.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from starlette.responses import JSONResponse

from actas._errors import (
    ActasError,
    FormParamInvalid,
    ImpersonationApprovalRequired,
    ImpersonationConsentRequired,
    ImpersonationForbiddenByUser,
    ImpersonationModeNotPermitted,
    ImpersonationNotPermitted,
    ImpersonationReasonRequired,
    ImpersonationRefused,
    ImpersonationTargetProtected,
)
from actas.server import machine_clients, operators
from actas.server.audit import Record
from actas.server.db.schema import Operator
from actas.server.http.origins import instance_of, request_origin
from actas.server.impersonation import actor_tokens
from actas.server.impersonation.policy import Requester
from actas.server.roles import FULL, MODES, READ_ONLY

# Not in the OpenAPI document, whose error schema is actas's envelope: this endpoint
# answers RFC 6749's errors instead. docs/api.md describes it.
router = APIRouter(tags=["OAuth"], include_in_schema=False)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105  (a URN)
USER_ID = "urn:actas:params:oauth:token-type:user_id"
OPERATOR_ID = "urn:actas:params:oauth:token-type:operator_id"
TICKET = "urn:actas:params:oauth:token-type:ticket"
JWT = "urn:ietf:params:oauth:token-type:jwt"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="actas"'
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers=headers)


def _client_credentials(request: Request, client_id: str, client_secret: str
                        ) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (unquote(user), unquote(password)) if sep else None
    if client_id and client_secret:
        return client_id, client_secret
    return None


Field = Annotated[str, Form(max_length=2000)]


@router.post("/oauth/token", summary="RFC 8693 token exchange: a ticket to act as a user")
def token(request: Request, grant_type: Field = "", subject_token: Field = "",
          subject_token_type: Field = "", actor_token: Field = "", actor_token_type: Field = "",
          requested_token_type: Field = "", reason: Field = "", mode: Field = READ_ONLY,
          duration: Field = "1800", client_id: Field = "",
          client_secret: Field = "") -> JSONResponse:
    instance = instance_of(request)
    origin = request_origin(request)
    given = _client_credentials(request, client_id, client_secret)
    with instance.transaction() as db:
        client = machine_clients.authenticate(db, instance, *given) if given else None
        if client is not None:
            client_name, client_key, rights = (client.name, client.id,
                                               machine_clients.permissions(client))
            may_full = client.may_start_full
    if client is None:
        instance.record_alone(Record(type="oauth.client_refused", origin=origin,
                                     data={"client_id": given[0][:40] if given else None}))
        return _error("invalid_client", "Unknown client, wrong secret, or a revoked client.",
                      401)
    if grant_type != TOKEN_EXCHANGE:
        return _error("unsupported_grant_type", f"Only {TOKEN_EXCHANGE} is supported.")
    if not subject_token or subject_token_type != USER_ID:
        return _error("invalid_request",
                      f"subject_token must be a user id, with subject_token_type={USER_ID}.")
    if requested_token_type not in ("", TICKET):
        return _error("invalid_request", f"requested_token_type: only {TICKET} is issued "
                      "(short-lived JWTs are not yet).")
    if mode not in MODES:
        return _error("invalid_request", f"mode must be one of {', '.join(MODES)}.")
    if not duration.isdigit() or not 1 <= int(duration) <= 86400:
        return _error("invalid_request", "duration is the impersonation's length in seconds, "
                      "1 to 86400.")
    if mode == FULL and not may_full:
        return _error("unauthorized_client", "This client may start read-only "
                      "impersonations only.")

    actor: dict[str, Any] = {"sub": client_key, "name": client_name, "client_id": client_key}
    requester = Requester("machine", rights)
    if actor_token or actor_token_type:
        if actor_token_type != OPERATOR_ID:
            return _error("invalid_request",
                          f"actor_token must be an operator id, with actor_token_type="
                          f"{OPERATOR_ID}.")
        with instance.transaction() as db:
            operator = db.get(Operator, actor_token)
            if operator is None or operator.disabled:
                return _error("invalid_grant", "actor_token names no enabled operator.")
            # The operator's role as in the dashboard, and the tool's rights too.
            requester = Requester("operator", operators.permissions(operator) & rights,
                                  operator)
            actor = {"sub": operator.id, "name": operator.name or operator.email_address,
                     "email": operator.email_address, "client_id": client_key}
    try:
        issued = actor_tokens.create(
            instance, requester=requester, user_id=subject_token, actor=actor, reason=reason,
            origin=origin, expires_in=300, session_max_duration=int(duration),
            mode=mode)
    except ImpersonationApprovalRequired as pending:
        approval = pending.meta.get("approval_id")
        return _error("invalid_grant", f"{pending.message} (approval {approval})")
    except (ImpersonationNotPermitted, ImpersonationTargetProtected,
            ImpersonationModeNotPermitted) as refused:
        return _error("unauthorized_client", refused.message)
    except (ImpersonationReasonRequired, FormParamInvalid) as bad:
        return _error("invalid_request", bad.message)
    except (ImpersonationConsentRequired, ImpersonationForbiddenByUser,
            ImpersonationRefused) as refused:
        return _error("invalid_grant", refused.message)
    except ActasError as error:
        return _error("invalid_request", error.message)
    return JSONResponse({
        "access_token": issued.ticket.reveal(), "issued_token_type": TICKET,
        "token_type": "N_A", "expires_in": 300, "url": issued.url,
        "mode": issued.row.mode}, headers=_NO_STORE)
