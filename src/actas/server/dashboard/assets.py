"""The dashboard's own files: its stylesheet, its one small script (live timers and
relative times) and the favicon. Served by actas itself; no page loads anything from
elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter()
_STATIC = Path(__file__).parent / "static"


def _file(name: str, media_type: str, max_age: int) -> Response:
    return Response((_STATIC / name).read_bytes(), media_type=media_type,
                    headers={"Cache-Control": f"public, max-age={max_age}",
                             "X-Content-Type-Options": "nosniff"})


@router.get("/dashboard/dashboard.css")
def stylesheet() -> Response:
    return _file("dashboard.css", "text/css; charset=utf-8", 300)


@router.get("/dashboard/dashboard.js")
def script() -> Response:
    return _file("dashboard.js", "text/javascript; charset=utf-8", 300)


@router.get("/favicon.svg")
@router.get("/favicon.ico")  # asked for by browsers whatever the page says
def favicon() -> Response:
    return _file("favicon.svg", "image/svg+xml", 86400)
