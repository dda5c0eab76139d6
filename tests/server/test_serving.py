"""Where ``actas serve`` listens: granian binds an IP address, so names are resolved."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

import pytest

from actas._errors import ConfigurationInvalid
from actas.server import app
from actas.server.serving import listen_address
from tests.support.processes import actas_env, run_actas


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", "0.0.0.0"),  # noqa: S104  (an address to bind, as an operator writes it)
    ("::1", "::1"),
    ("::", "::"),
])
def test_an_address_is_bound_as_given(host: str, address: str) -> None:
    assert listen_address(host, 4000) == address


def test_localhost_is_resolved_to_a_loopback_address() -> None:
    """``actas serve --host localhost`` used to crash: granian refused the name."""
    assert listen_address("localhost", 4000) in {"127.0.0.1", "::1"}


def test_a_name_with_both_families_binds_ipv4(monkeypatch: pytest.MonkeyPatch) -> None:
    def both(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
    monkeypatch.setattr(socket, "getaddrinfo", both)
    assert listen_address("localhost", 4000) == "127.0.0.1"


@pytest.mark.parametrize("host", [
    "x" * 64,       # not even a name: refused before any lookup (a label is 63 at most)
    "",
    "0",            # inet_aton's shorthand for 0.0.0.0: every interface, unasked
])
def test_a_host_that_is_no_address_is_a_configuration_error(host: str) -> None:
    with pytest.raises(ConfigurationInvalid) as raised:
        listen_address(host, 4000)
    assert "ACTAS_HOST" in raised.value.message


def test_a_name_that_does_not_resolve_is_a_configuration_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(*args: object, **kwargs: object) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nothing)
    with pytest.raises(ConfigurationInvalid):
        listen_address("auth.internal", 4000)


def test_a_serving_process_freezes_what_it_built(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The objects a serving process builds at start live as long as it does: frozen,
    the cyclic collector does not walk them again (a full collection of them under
    load was an 80-140 ms stall, every request of the process waiting)."""
    assert run_actas("migrate", "--data-dir", "data", cwd=tmp_path).returncode == 0
    for name, value in actas_env(ACTAS_DATA_DIR=str(tmp_path / "data")).items():
        if name.startswith("ACTAS_"):
            monkeypatch.setenv(name, value)
    gc.unfreeze()
    try:
        app.from_environment()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
