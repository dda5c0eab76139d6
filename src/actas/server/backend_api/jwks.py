"""``GET /v1/jwks``: the public keys that verify session tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from actas.server.http.origins import instance_of
from actas.server.signing_keys import published_jwks

router = APIRouter(tags=["JWKS"])


@router.get("/v1/jwks", summary="The instance's JSON Web Key Set")
def get_jwks(request: Request) -> dict[str, Any]:
    instance = instance_of(request)
    with instance.transaction() as db:
        return published_jwks(db, instance.now_ms())
