"""``/docs`` is served by actas alone: no CDN, no inline script, the dashboard's CSP."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

TYPES = {".css": "text/css", ".js": "text/javascript"}


def _references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href|data-openapi-url)=["']([^"']*)["']""", page)


def test_the_docs_page_and_everything_it_loads_come_from_this_server(
        app_client: TestClient) -> None:
    response = app_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    references = _references(page)
    assert len(references) == 4, references  # stylesheet, two scripts, the OpenAPI document
    for url in references:
        assert url.startswith("/") and not url.startswith("//"), url
        served = app_client.get(url)
        assert served.status_code == 200, url
        if url != "/openapi.json":
            expected = TYPES[url[url.rindex("."):]]
            assert served.headers["content-type"].partition(";")[0] == expected, url
            assert served.headers["x-content-type-options"] == "nosniff"
            assert not re.search(rb"""["'(]https?://(?!localhost)[^"')]*\.(js|css)\b""",
                                 served.content), url  # loads nothing from elsewhere
    assert "http://" not in page and "https://" not in page
    bundle = next(url for url in references if url.endswith("/swagger-ui-bundle.js"))
    assert "SwaggerUIBundle" in app_client.get(bundle).text


def test_the_docs_page_has_no_inline_script_and_a_strict_csp(app_client: TestClient) -> None:
    response = app_client.get("/docs")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "style=" not in response.text and "<style" not in response.text

    policy = dict(d.strip().split(" ", 1) for d in
                  response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert "script-src" not in policy  # so 'self' only, from default-src
    assert policy["frame-ancestors"] == "'none'"
    for sources in policy.values():
        assert "unsafe" not in sources and "cdn" not in sources and "*" not in sources
    assert response.headers["cache-control"] == "no-store"


def test_fastapis_cdn_page_and_its_oauth_redirect_are_gone(app_client: TestClient) -> None:
    assert "cdn" not in app_client.get("/docs").text
    assert app_client.get("/docs/oauth2-redirect").status_code == 404
    assert app_client.get("/docs/redoc.standalone.js").status_code == 404
