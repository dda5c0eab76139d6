"""Rendering dashboard pages: Jinja2 templates, autoescaped, with strict security headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from actas.server.http.origins import instance_of

_HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True,
                   lstrip_blocks=True)


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    seconds = max(0, ms // 1000)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60}:{seconds % 60:02d}"


_env.filters["when"] = _when
_env.filters["duration"] = _duration


def security_headers(request: Request, response: Response) -> Response:
    settings = instance_of(request).settings
    landing = urlsplit(settings.landing_url)
    # form-action also governs where a form's redirects may go: the
    # impersonate form ends at the application, so its origin is allowed.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        f"form-action 'self' {landing.scheme}://{landing.netloc}; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, template: str, *, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, **context)
    return security_headers(request, HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def redirect(request: Request, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    security_headers(request, response)
    return response


def stylesheet() -> str:
    return (_HERE / "static" / "dashboard.css").read_text()


def favicon() -> str:
    return (_HERE / "static" / "favicon.svg").read_text()
