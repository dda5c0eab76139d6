"""``GET /docs``: the API's Swagger UI, served entirely by actas under a strict CSP.

FastAPI's own page loads Swagger UI from a public CDN (unpinned, without
subresource integrity) onto the origin the Frontend API trusts, starts it
with an inline script, and is blank offline. This page, its start-up script
(``static/api_docs.js``) and Swagger UI's files are all served from here,
under the dashboard's Content-Security-Policy (``'self'`` only, no inline
script). Swagger UI itself comes from the ``fastapi-offline`` package (a
dependency of the ``server`` extra; 1.7.7 ships Swagger UI 5.32.6).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from importlib import resources
from string import Template

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, Response

from actas.server.dashboard.pages import security_headers

PATH = "/docs"
# Swagger UI's files, by the name they are served under (below PATH), with their type.
_ASSETS = {
    "swagger-ui.css": ("fastapi_offline", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": ("fastapi_offline", "text/javascript; charset=utf-8"),
    "api_docs.js": ("actas.server", "text/javascript; charset=utf-8"),
}
# Swagger UI changes with actas's dependencies, so not for long.
_CACHE = "public, max-age=3600"

_PAGE = Template("""\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>actas API</title>
<link rel="stylesheet" href="$docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="$openapi"></div>
<script src="$docs/swagger-ui-bundle.js"></script>
<script src="$docs/api_docs.js"></script>
</body>
</html>
""")


@functools.cache
def asset(name: str) -> bytes:
    """A packaged docs file, read once."""
    package, _media_type = _ASSETS[name]
    return (resources.files(package) / "static" / name).read_bytes()


def install(app: FastAPI) -> None:
    """Serve the docs page and its files; FastAPI's own (``docs_url``) must be off."""
    assert app.docs_url is None, "FastAPI's CDN-loading docs page is still on"
    openapi_url = app.openapi_url or "/openapi.json"
    router = APIRouter(include_in_schema=False)

    @router.get(PATH)
    def page(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        body = _PAGE.substitute(docs=html.escape(root + PATH),
                                openapi=html.escape(root + openapi_url))
        return security_headers(request, HTMLResponse(body))

    for name, (_package, media_type) in _ASSETS.items():
        router.add_api_route(f"{PATH}/{name}", _file_endpoint(name, media_type))
    app.include_router(router)


def _file_endpoint(name: str, media_type: str) -> Callable[[], Response]:
    def endpoint() -> Response:
        return Response(asset(name), media_type=media_type, headers={
            "Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"})
    return endpoint
