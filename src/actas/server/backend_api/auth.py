"""The Backend API's authentication: a secret key in ``Authorization: Bearer sk_…``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from starlette.concurrency import run_in_threadpool

from actas._errors import SecretKeyInvalid, SecretKeyMissing
from actas.server import credentials
from actas.server.db.schema import SecretKey
from actas.server.http.origins import instance_of
from actas.server.instance import Instance

# Declared for the OpenAPI document only; the check itself is below.
secret_key_scheme = HTTPBearer(bearerFormat="sk_…", auto_error=False,
                               description="The instance's Backend API secret key.")


async def require_secret_key(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(secret_key_scheme)],
) -> None:
    """FastAPI dependency: raise unless the request carries a valid secret key.

    ``async``: FastAPI runs a plain function in a worker thread, a hop every Backend
    API request paid for although the usual check (against ``ACTAS_SECRET_KEY``)
    reads nothing. A key kept in the database is looked up where reads are cheap
    (on the loop with SQLite, in a worker thread with PostgreSQL)."""
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
    found = (_stored(instance, key) if instance.reads_never_wait
             else await run_in_threadpool(_stored, instance, key))
    if not found:
        raise SecretKeyInvalid("The secret key is not valid for this instance.")


def _stored(instance: Instance, key: str) -> bool:
    """Whether ``key`` is one of the instance's unrevoked secret keys (by its digest)."""
    with instance.reading() as connection:
        return connection.execute(_UNREVOKED, {"digest": credentials.digest(key)}).first() \
            is not None


_UNREVOKED = select(SecretKey.id).where(SecretKey.digest == bindparam("digest"),
                                        SecretKey.revoked_at.is_(None))  # built once
