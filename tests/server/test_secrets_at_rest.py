"""Nothing secret is written to the database in the clear."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from actas.server import Instance, credentials
from actas.server.db.schema import Base, SecretKey, User
from tests.conftest import SECRET_KEY
from tests.support.flows import PASSWORD, create_user, error_code, mint, sign_in


def _dump(engine: Engine) -> str:
    """Every row of every table as text (binary columns decoded byte for byte)."""
    lines = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                values = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
                lines.append(f"{table.name}: {' | '.join(values)}")
    return "\n".join(lines)


def test_passwords_cookies_and_keys_are_not_stored_in_the_clear(
        backend: TestClient, browser: TestClient, engine: Engine) -> None:
    user = create_user(backend)
    mint(browser, sign_in(browser))
    client_cookie = browser.cookies.get("__Host-client")
    assert client_cookie and client_cookie.startswith("ct_")

    dump = _dump(engine)

    assert user["id"] in dump and credentials.digest(client_cookie) in dump  # rows are there
    assert PASSWORD not in dump
    assert client_cookie not in dump
    assert SECRET_KEY not in dump


def test_password_hash_is_argon2id(backend: TestClient, engine: Engine) -> None:
    user = create_user(backend)
    with engine.connect() as connection:
        stored = connection.scalar(select(User.password_hash).where(User.id == user["id"]))
    assert stored is not None and stored.startswith("$argon2id$")


@pytest.mark.parametrize("settings_overrides", [{"secret_key": None}], ids=["no-secret-key"])
def test_generated_secret_key_is_returned_once_stored_hashed_and_authenticates(
        settings_overrides: dict[str, Any], instance: Instance, app_client: TestClient,
        engine: Engine) -> None:
    assert instance.settings.secret_key is None

    generated = instance.ensure_secret_key()
    again = instance.ensure_secret_key()

    assert generated is not None and generated.reveal().startswith("sk_")
    assert again is None
    with engine.connect() as connection:
        digests = connection.scalars(select(SecretKey.digest)).all()
    assert digests == [credentials.digest(generated.reveal())]
    assert generated.reveal() not in _dump(engine)

    def get_users(key: str) -> Any:
        return app_client.get("/v1/users", headers={"Authorization": f"Bearer {key}"})

    assert get_users(generated.reveal()).status_code == 200
    for wrong in ("sk_" + "x" * 43, SECRET_KEY):
        refused = get_users(wrong)
        assert refused.status_code == 401
        assert error_code(refused) == "authentication_invalid"
