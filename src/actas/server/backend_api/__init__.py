"""The Backend API (``/v1/…``, ``Authorization: Bearer sk_…``), in Clerk's shapes."""

from fastapi import APIRouter, Depends

from actas.server.backend_api import jwks, sessions, users
from actas.server.backend_api.auth import require_secret_key

router = APIRouter(dependencies=[Depends(require_secret_key)])
router.include_router(users.router)
router.include_router(sessions.router)
router.include_router(jwks.router)

__all__ = ["router"]
