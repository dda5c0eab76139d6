"""``load_settings``: environment parsing, CLI overrides, defaults, validation, secrets."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path
from typing import Any

import pytest

from actas import ConfigurationInvalid
from actas.server.credentials import Secret
from actas.server.settings import Settings, load_settings

INSTANCE_SECRET = "an-instance-secret-of-at-least-32-chars"


def _load(tmp_path: Path, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings whose data dir is the test's own (never ``./.actas``)."""
    return load_settings({"ACTAS_DATA_DIR": str(tmp_path), **(env or {})}, **overrides)


def test_environment_variables_are_parsed_into_typed_values(tmp_path: Path) -> None:
    settings = _load(tmp_path, {
        "ACTAS_PORT": "8080",
        "ACTAS_ALLOWED_ORIGINS": "https://app.example.com/dashboard, http://localhost:3000/ ,",
        "ACTAS_COOKIE_SECURE": "false",
        "ACTAS_SIGNING_ALGORITHM": "EdDSA",
        "ACTAS_SESSION_TOKEN_LIFETIME": "120",
    })

    assert settings.port == 8080
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.cookie_secure is False
    assert settings.signing_algorithm == "EdDSA"
    assert settings.session_token_lifetime == 120


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False), ("off", False),
])
def test_cookie_secure_accepts_true_and_false_spellings(tmp_path: Path, value: str,
                                                        expected: bool) -> None:
    assert _load(tmp_path, {"ACTAS_COOKIE_SECURE": value}).cookie_secure is expected


def test_cookies_are_secure_by_default(tmp_path: Path) -> None:
    assert _load(tmp_path).cookie_secure is True


def test_cli_overrides_win_over_the_environment(tmp_path: Path) -> None:
    env = {"ACTAS_PORT": "8080", "ACTAS_HOST": "10.0.0.1"}

    settings = _load(tmp_path, env, port=9090, host=None)  # None: flag not given

    assert settings.port == 9090
    assert settings.host == "10.0.0.1"


def test_an_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    assert _load(tmp_path, {"ACTAS_PORT": ""}).port == 4000


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    assert _load(tmp_path).database_url == f"sqlite:///{tmp_path / 'actas.db'}"


def test_default_frontend_api_url_is_built_from_host_and_port(tmp_path: Path) -> None:
    assert _load(tmp_path).frontend_api_url == "http://127.0.0.1:4000"
    settings = _load(tmp_path, {"ACTAS_HOST": "auth.internal", "ACTAS_PORT": "8443"})
    assert settings.frontend_api_url == "http://auth.internal:8443"


def test_frontend_api_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"ACTAS_FRONTEND_API_URL": "https://auth.example.com/"})
    assert settings.frontend_api_url == "https://auth.example.com"


@pytest.mark.parametrize(("variable", "value"), [
    ("ACTAS_PORT", "0"),
    ("ACTAS_PORT", "65536"),
    ("ACTAS_PORT", "eighty"),
    ("ACTAS_SESSION_TOKEN_LIFETIME", "5"),
    ("ACTAS_SESSION_MAX_LIFETIME", "1.5"),
    ("ACTAS_FRONTEND_API_URL", "ftp://auth.example.com"),
    ("ACTAS_FRONTEND_API_URL", "auth.example.com"),
    ("ACTAS_ALLOWED_ORIGINS", "http://localhost:3000,localhost:4000"),
    ("ACTAS_SECRET_KEY", "pk_" + "k" * 40),
    ("ACTAS_SECRET_KEY", "sk_too_short"),
    ("ACTAS_SIGNING_ALGORITHM", "HS256"),
    ("ACTAS_SIGNING_ALGORITHM", "none"),
    ("ACTAS_COOKIE_SECURE", "maybe"),
    ("ACTAS_PASSWORD_HASHING", "md5"),
    ("ACTAS_INSTANCE_SECRET", "short"),
])
def test_an_invalid_value_raises_naming_its_environment_variable(
        tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(ConfigurationInvalid) as raised:
        _load(tmp_path, {variable: value})
    assert variable in raised.value.message
    assert raised.value.code == "configuration_invalid"


def test_an_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationInvalid, match="prot"):
        _load(tmp_path, prot=80)


def test_instance_secret_is_generated_owner_only_once_and_read_back(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    env = {"ACTAS_DATA_DIR": str(data_dir)}

    first = load_settings(env).instance_secret
    path = data_dir / "instance_secret"
    mode = stat.S_IMODE(path.stat().st_mode)
    second = load_settings(env).instance_secret

    assert mode == 0o600
    assert len(first.reveal()) >= 32
    assert path.read_text().strip() == first.reveal()
    assert second == first


def test_a_given_instance_secret_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"ACTAS_INSTANCE_SECRET": INSTANCE_SECRET})
    assert settings.instance_secret.reveal() == INSTANCE_SECRET
    assert not (tmp_path / "instance_secret").exists()


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = _load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_secrets_never_show_in_repr_or_str(tmp_path: Path) -> None:
    secret_key = "sk_live_" + "v" * 40
    settings = _load(tmp_path, {"ACTAS_SECRET_KEY": secret_key,
                                "ACTAS_INSTANCE_SECRET": INSTANCE_SECRET})

    assert settings.secret_key == Secret(secret_key)
    for shown in (repr(settings), str(settings), repr(settings.secret_key),
                  str(settings.instance_secret), f"{settings.secret_key}"):
        assert secret_key not in shown
        assert INSTANCE_SECRET not in shown


def test_trusted_proxies_are_networks_and_a_wildcard_is_refused(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"ACTAS_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16,::1"})
    assert settings.trusted_proxies == ("10.0.0.5/32", "10.1.0.0/16", "::1/128")
    assert _load(tmp_path).trusted_proxies == ()
    for bad in ("*", "proxy.internal", "10.0.0.0/33"):
        with pytest.raises(ConfigurationInvalid, match="ACTAS_TRUSTED_PROXIES"):
            _load(tmp_path, {"ACTAS_TRUSTED_PROXIES": bad})


def test_trusting_every_address_or_a_mistyped_network_is_refused(tmp_path: Path) -> None:
    for bad in ("0.0.0.0/0", "::/0", "10.0.0.5/8"):
        with pytest.raises(ConfigurationInvalid, match="ACTAS_TRUSTED_PROXIES"):
            _load(tmp_path, {"ACTAS_TRUSTED_PROXIES": bad})
