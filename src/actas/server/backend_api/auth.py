"""The Backend API's authentication: a secret key in ``Authorization: Bearer sk_…``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from actas._errors import SecretKeyInvalid, SecretKeyMissing
from actas.server import credentials
from actas.server.db.schema import SecretKey
from actas.server.http.origins import instance_of

# Declared for the OpenAPI document only; the check itself is below.
secret_key_scheme = HTTPBearer(bearerFormat="sk_…", auto_error=False,
                               description="The instance's Backend API secret key.")


def require_secret_key(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(secret_key_scheme)],
) -> None:
    """FastAPI dependency: raise unless the request carries a valid secret key."""
    header = request.headers.get("authorization")
    if not header:
        raise SecretKeyMissing(
            "The Authorization header is missing. Send `Authorization: Bearer sk_…` "
            "with your instance's secret key."
        )
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(credentials.SECRET_KEY_PREFIX):
        raise SecretKeyInvalid(
            "The Authorization header must be `Bearer sk_…` with a secret key.",
            code="authorization_header_format_invalid",
        )
    instance = instance_of(request)
    configured = instance.settings.secret_key
    if configured is not None and hmac.compare_digest(key.encode(), configured.reveal().encode()):
        return
    with instance.transaction() as db:
        found = db.scalar(select(SecretKey.id).where(
            SecretKey.digest == credentials.digest(key), SecretKey.revoked_at.is_(None)))
    if found is None:
        raise SecretKeyInvalid("The secret key is not valid for this instance.")
