"""The documentation in docs/ stays true to the server: every operation the OpenAPI
document lists is in docs/api.md, every setting is in docs/configuration.md, and the
README's screenshots exist."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from actas.server import settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_served_operation_is_in_the_api_reference(app_client: TestClient) -> None:
    reference = (ROOT / "docs" / "api.md").read_text()
    listed = set(re.findall(r"^\| (GET|POST|PATCH|PUT|DELETE) \| `([^`]+)`", reference,
                            flags=re.MULTILINE))
    document = app_client.get("/openapi.json").json()
    served = {(method.upper(), path) for path, item in document["paths"].items()
              for method in item}
    assert served - listed == set(), "add these to docs/api.md"
    assert listed - served <= {("GET", "/openapi.json"), ("GET", "/docs"),
                               ("GET", "/healthz"), ("GET", "/readyz"),
                               ("GET", "/v1/actas.js"), ("GET", "/.well-known/jwks.json"),
                               ("GET", "/.well-known/openid-configuration"),
                               ("GET", "/docs/oauth2-redirect"),
                               ("GET", "/docs/assets/{name}")} | {
        pair for pair in listed if pair[1].startswith("/docs")}


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = [var for var in settings._ENV.values() if f"`{var}`" not in reference]
    assert missing == []


def test_the_readme_shows_the_story_in_screenshots_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    shots = re.findall(r"\(docs/screenshots/([\w.-]+\.png)\)", readme)
    assert len(shots) >= 6
    assert [s for s in shots if not (ROOT / "docs" / "screenshots" / s).exists()] == []


def test_the_docs_stand_on_their_own() -> None:
    """The repository's docs never send a reader outside it for the design."""
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "../shared" not in page.read_text(), page.name
