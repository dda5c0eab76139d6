"""``/.well-known/jwks.json`` and ``/.well-known/openid-configuration`` (public)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from actas.server.http.origins import instance_of
from actas.server.signing_keys import published_jwks

router = APIRouter(tags=["Discovery"])

# Verifiers cache JWKS; a short max-age keeps rotation (publish-then-sign) quick.
_CACHE = "public, max-age=300"


@router.get("/.well-known/jwks.json", summary="Public keys that verify session tokens")
def jwks(request: Request, response: Response) -> dict[str, Any]:
    instance = instance_of(request)
    with instance.transaction() as db:
        document = published_jwks(db, instance.now_ms())
    response.headers["Cache-Control"] = _CACHE
    return document


@router.get("/.well-known/openid-configuration", summary="Discovery document")
def openid_configuration(request: Request, response: Response) -> dict[str, Any]:
    settings = instance_of(request).settings
    response.headers["Cache-Control"] = _CACHE
    return {
        "issuer": settings.frontend_api_url,
        "jwks_uri": f"{settings.frontend_api_url}/.well-known/jwks.json",
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [settings.signing_algorithm],
        "claims_supported": ["iss", "sub", "sid", "azp", "iat", "nbf", "exp", "jti", "v", "act",
                             "act_mode"],
        # RFC 8693 token exchange, for an application's admin tool (actas.server.oauth).
        "token_endpoint": f"{settings.frontend_api_url}/oauth/token",
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }
