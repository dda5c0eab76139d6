"""``actas dev``: actas and the demo application together, on SQLite, with seeded data.

For a first look and for the browser tests, never for production: cookies
are not ``Secure`` (plain http on localhost), webhooks may go to loopback and
private addresses (a receiver on this machine), the password hashing preset
is the production one but the demo passwords are printed on the terminal.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from actas.server import operators, users
from actas.server.app import create_app
from actas.server.db.schema import Operator
from actas.server.http import access_log
from actas.server.instance import Instance
from actas.server.settings import load_settings

OPERATOR_PASSWORD = "actas-demo-operator"  # noqa: S105  (printed demo credentials)
USER_PASSWORD = "actas-demo-user"  # noqa: S105

OPERATORS = [
    ("owner@example.com", "owner", "Olivia Owner"),
    ("support@example.com", "support", "Sam Support"),
    ("viewer@example.com", "viewer", "Vera Viewer"),
]
USERS: list[dict[str, Any]] = [
    {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
    {"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"},
    {"email": "alan@example.com", "first_name": "Alan", "last_name": "Turing"},
    {"email": "root@example.com", "first_name": "Root", "last_name": "Admin",
     "public_metadata": {"role": "admin"}},
]


@dataclass(frozen=True)
class DevConfig:
    host: str = "localhost"
    port: int = 4000
    app_port: int = 3000
    data_dir: str = ".actas/dev"
    extra: dict[str, Any] | None = None


def seed(instance: Instance) -> None:
    """Create the demo operators and users if they are not there yet."""
    user_password_hash = users.hash_password(instance, USER_PASSWORD)  # not under the lock
    with instance.transaction() as db:
        for email, role, name in OPERATORS:
            if db.scalar(select(Operator.id).where(Operator.email_address == email)) is None:
                operators.create(db, instance, email=email, role=role, name=name,
                                 password=OPERATOR_PASSWORD)
        for spec in USERS:
            if users.find_by_identifier(db, spec["email"]) is None:
                users.create(db, instance, email_addresses=[spec["email"]],
                             password_hash=user_password_hash, first_name=spec["first_name"],
                             last_name=spec["last_name"],
                             public_metadata=spec.get("public_metadata"))


def _load_demo_app(actas_url: str, app_url: str, secret_key: str) -> Any | None:
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module("examples.customer_app.app")
    except ImportError:
        return None
    # With the secret key, the demo app reports what impersonators do there.
    return module.create_app(actas_url=actas_url, app_url=app_url, secret_key=secret_key)


def run(config: DevConfig) -> None:
    import uvicorn

    actas_url = f"http://{config.host}:{config.port}"
    app_url = f"http://{config.host}:{config.app_port}"
    settings = load_settings(
        data_dir=config.data_dir, host=config.host, port=config.port,
        frontend_api_url=actas_url, allowed_origins=app_url, application_url=app_url,
        cookie_secure=False, webhooks_allow_private_networks=True,
        mail_console=True,  # notices to users are printed here, unless ACTAS_SMTP_URL is set
        operator_second_factor="optional",  # demo operators sign in with a password alone
        **(config.extra or {}))
    instance = Instance.start(settings)
    seed(instance)
    secret_key_file = Path(config.data_dir) / "dev_secret_key"
    if not secret_key_file.exists():
        with instance.transaction() as db:
            secret_key_file.write_text(instance.create_secret_key(db).reveal() + "\n")
        secret_key_file.chmod(0o600)
    demo = _load_demo_app(actas_url, app_url, secret_key_file.read_text().strip())

    print(f"""
actas dev — the impersonation story, end to end (SQLite in {config.data_dir})

  Dashboard:     {actas_url}/dashboard
  Demo app:      {app_url}{"" if demo else "   (not found: run from the repository root)"}
  API docs:      {actas_url}/docs

  Operators (dashboard), password {OPERATOR_PASSWORD}:
    owner@example.com (owner) · support@example.com (support) · viewer@example.com (viewer)
  Users (demo app), password {USER_PASSWORD}:
    ada@example.com · grace@example.com · alan@example.com · root@example.com (protected)
  Backend API secret key: {secret_key_file.read_text().strip()}

  Try: sign in to the dashboard as support@example.com, open Ada Lovelace, click
  Impersonate user, give a reason; you land in the demo app as Ada with a banner.
  The dashboard starts it read-only: the demo app's address form is disabled and
  its backend refuses the write; choose Full (as owner) and it works, while
  "Delete my account" is still refused. Stop impersonating ends it; Ada sees who
  came, in which mode, and what they did; the Audit log shows every step.
""", flush=True)

    access_log.install()

    async def serve_all() -> None:
        servers = [uvicorn.Server(uvicorn.Config(create_app(instance, background=True),
                                                 host=config.host, port=config.port,
                                                 log_level="warning"))]
        if demo is not None:
            servers.append(uvicorn.Server(uvicorn.Config(demo, host=config.host,
                                                         port=config.app_port,
                                                         log_level="warning")))
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve_all())
