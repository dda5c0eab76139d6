"""Webhooks go to public http(s) addresses only: refused at registration and at delivery.

Nothing here touches the network: names "resolve" through an injected resolver
(``Names``), and deliveries go through ``httpx.MockTransport``, which records
what would have been sent. A refusal that failed would therefore show up as a
recorded request, never as a packet to a private address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas._errors import WebhookUrlNotAllowed
from actas.server import Instance, webhook_urls, webhooks
from actas.server.clock import FrozenClock
from actas.server.db.schema import WebhookDelivery, WebhookEndpoint
from tests.conftest import make_settings
from tests.support.flows import create_actor_token, create_user, error_code

PUBLIC = "93.184.215.14"  # never contacted: every request here goes to a MockTransport
HOOKS = "https://hooks.example.com/in"


class Names:
    """A resolver with a fixed, editable table; unknown names do not resolve."""

    def __init__(self) -> None:
        self.table: dict[str, list[str]] = {"hooks.example.com": [PUBLIC]}
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        return self.table.get(host, [])


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def instance(tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
             settings_overrides: dict[str, Any], names: Names) -> Instance:
    settings = make_settings(tmp_path, database_url, **settings_overrides)
    return Instance.start(settings, clock=clock, engine=engine, resolve=names)


class Recorder:
    """An ``httpx.Client`` on a MockTransport: the requests that would have been sent."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self.client = httpx.Client(transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200)


@pytest.fixture
def recorder() -> Any:
    recorder = Recorder()
    yield recorder
    recorder.client.close()


def refusal(url: str, names: Names | None = None, *, allow_private: bool = False) -> str:
    with pytest.raises(WebhookUrlNotAllowed) as refused:
        webhook_urls.check(url, allow_private=allow_private, resolve=names or Names())
    assert refused.value.code == "webhook_url_not_allowed"
    reason: str = refused.value.meta["reason"]
    return reason


# -- the check ------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("http://10.0.0.1/hooks", "private"),
    ("http://192.168.1.20:8080/hooks", "private"),
    ("http://100.64.0.1/hooks", "private"),  # RFC 6598 shared address space
    ("http://127.0.0.1:5432/", "loopback"),
    ("http://[::1]/hooks", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),  # IPv4-mapped IPv6
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[fd00:ec2::254]/", "private"),  # unique local (AWS's IPv6 metadata address)
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "private"),  # site-local (deprecated, still routed in places)
    ("http://0.0.0.0:4000/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://hooks.example.com/", "scheme"),
    ("https://user:secret@hooks.example.com/in", "credentials"),
    ("https://nowhere.example.com/in", "unresolvable"),
])
def test_urls_that_are_not_public_http_are_refused(url: str, reason: str) -> None:
    assert refusal(url) == reason


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    names = Names()
    names.table["internal.example.com"] = ["10.1.2.3"]
    names.table["split.example.com"] = [PUBLIC, "169.254.169.254"]
    names.table["mapped.example.com"] = ["::ffff:127.0.0.1"]

    assert refusal("https://internal.example.com/in", names) == "private"
    assert refusal("https://split.example.com/in", names) == "link-local"
    assert refusal("https://mapped.example.com/in", names) == "loopback"


def test_private_networks_can_be_allowed_but_never_link_local() -> None:
    names = Names()
    names.table["receiver.internal"] = ["10.1.2.3"]

    for url in ("http://127.0.0.1:8080/hooks", "http://[::1]/hooks",
                "http://receiver.internal/hooks"):
        webhook_urls.check(url, allow_private=True, resolve=names)
    assert refusal("http://169.254.169.254/", names, allow_private=True) == "link-local"
    assert refusal("http://[fe80::1]/", names, allow_private=True) == "link-local"


def test_the_checked_address_is_the_one_connected_to() -> None:
    target = webhook_urls.check("https://Hooks.Example.com:8443/in?x=1", allow_private=False,
                                resolve=Names())

    assert target.url == httpx.URL(f"https://{PUBLIC}:8443/in?x=1")
    assert target.headers == {"Host": "hooks.example.com:8443"}
    # TLS names (and verifies the certificate of) the host, not the address.
    assert target.extensions == {"sni_hostname": "hooks.example.com"}


def test_the_setting_defaults_to_public_only(tmp_path: Path) -> None:
    from actas.server import load_settings

    base = {"ACTAS_DATA_DIR": str(tmp_path)}
    assert load_settings(base).webhooks_allow_private_networks is False
    allowed = load_settings({**base, "ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true"})
    assert allowed.webhooks_allow_private_networks is True


def test_every_address_category_is_recognised() -> None:
    public = ["8.8.8.8", "2606:4700::1111", PUBLIC]
    assert [webhook_urls.why_not_public(ipaddress.ip_address(a)) for a in public] == \
        [None, None, None]


# -- registering ----------------------------------------------------------------------------


def test_registration_refuses_internal_urls_with_a_stable_code(
        backend: TestClient, engine: Engine, names: Names) -> None:
    names.table["internal.example.com"] = ["10.0.0.5"]
    for url in ("http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.1/hooks",
                "http://127.0.0.1:4000/hooks", "http://[::1]:4000/hooks",
                "https://internal.example.com/hooks", "file:///etc/passwd",
                "https://user:pw@hooks.example.com/in"):
        response = backend.post("/v1/webhook_endpoints", json={"url": url})

        assert response.status_code == 422, (url, response.text)
        assert error_code(response) == "webhook_url_not_allowed", url
        assert "Webhooks cannot be sent to" in response.json()["errors"][0]["message"]
    with engine.connect() as connection:
        assert connection.execute(select(WebhookEndpoint.__table__)).all() == []


def test_a_public_url_is_registered(backend: TestClient, names: Names) -> None:
    response = backend.post("/v1/webhook_endpoints", json={"url": HOOKS})

    assert response.status_code == 200, response.text
    assert response.json()["url"] == HOOKS
    assert ("hooks.example.com", 443) in names.asked


# -- delivering -----------------------------------------------------------------------------


def test_a_name_that_turns_private_is_not_delivered_to(
        backend: TestClient, instance: Instance, names: Names, recorder: Recorder,
        engine: Engine, clock: FrozenClock) -> None:
    assert backend.post("/v1/webhook_endpoints", json={"url": HOOKS}).status_code == 200
    create_actor_token(backend, create_user(backend)["id"])  # an event to deliver
    names.table["hooks.example.com"] = ["10.0.0.7"]  # DNS rebinding after registration

    assert webhooks.deliver_due(instance, recorder.client) == 0

    assert recorder.sent == []
    with engine.connect() as connection:
        [delivery] = connection.execute(select(WebhookDelivery.__table__)).all()
    assert delivery.status == "pending" and delivery.attempts == 1  # retried later
    assert delivery.last_error.startswith("not sent: ")
    assert "private address (10.0.0.7)" in delivery.last_error

    # Public again by the retry: delivered, to the address that was checked.
    names.table["hooks.example.com"] = [PUBLIC]
    clock.advance(seconds=5)
    assert webhooks.deliver_due(instance, recorder.client) == 1
    [sent] = recorder.sent
    assert sent.url == httpx.URL(f"https://{PUBLIC}/in")
    assert sent.headers["host"] == "hooks.example.com"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"


def test_a_refused_delivery_gives_up_like_a_failing_one(
        backend: TestClient, instance: Instance, names: Names, recorder: Recorder,
        engine: Engine, clock: FrozenClock) -> None:
    assert backend.post("/v1/webhook_endpoints", json={"url": HOOKS}).status_code == 200
    create_actor_token(backend, create_user(backend)["id"])  # an event to deliver
    names.table["hooks.example.com"] = ["169.254.169.254"]

    for _ in range(webhooks.MAX_ATTEMPTS):
        webhooks.deliver_due(instance, recorder.client)
        clock.advance(seconds=24 * 3600)

    assert recorder.sent == []
    with engine.connect() as connection:
        [delivery] = connection.execute(select(WebhookDelivery.__table__)).all()
    assert delivery.status == "failed" and "link-local" in delivery.last_error
