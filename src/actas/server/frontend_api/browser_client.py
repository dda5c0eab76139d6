"""``GET /v1/actas.js``: the browser SDK (``@actas/browser``), served by the server itself.

Pages load it with ``import { Actas } from "https://<frontend api>/v1/actas.js"``.
The file is generated from ``js/packages/browser`` by ``js/scripts/build.mjs``
and shipped inside the package (``actas/server/static/actas.js``).
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter(include_in_schema=False)

BUNDLE = "actas.js"
# Short enough that an upgrade reaches every page within minutes.
_CACHE = "public, max-age=300"


@functools.cache
def bundle() -> bytes:
    """The packaged browser SDK, read once."""
    return (resources.files("actas.server") / "static" / BUNDLE).read_bytes()


@router.get("/v1/actas.js")
def browser_client() -> Response:
    # A cross-origin module import is a CORS fetch: the app's CORS middleware
    # answers it for the allowed origins, the only pages the SDK can work on.
    return Response(bundle(), media_type="text/javascript", headers={
        "Cache-Control": _CACHE,
        "X-Content-Type-Options": "nosniff",
    })
