"""``/``: what this server is, with links to the dashboard, the API docs and the health
check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

import actas
from actas.server.dashboard import pages

router = APIRouter()


@router.get("/")
def landing(request: Request) -> Response:
    return pages.render(request, "landing.html", version=actas.__version__)
