"""``/``: what this server is, with links to the dashboard, the API docs and the health
check; and the favicon every page of it uses."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

import actas
from actas.server.dashboard import pages

router = APIRouter()


@router.get("/")
def landing(request: Request) -> Response:
    return pages.render(request, "landing.html", version=actas.__version__)


@router.get("/favicon.svg")
@router.get("/favicon.ico")  # asked for by browsers whatever the page says
def favicon() -> Response:
    return Response(pages.favicon(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
