"""The actas command: serve the server (or the whole demo with dev), manage users,
operators and signing keys, start an impersonation from a terminal, and verify the
audit log."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actas._errors import ActasError, ConfigurationInvalid, ResourceNotFound
from actas.server.instance import Instance
from actas.server.settings import load_settings


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="sqlite:///path or postgresql://… "
                        "(env ACTAS_DATABASE_URL; default: a SQLite file in the data dir)")
    parser.add_argument("--data-dir", help="where actas keeps its SQLite file and instance "
                        "secret (env ACTAS_DATA_DIR; default ./.actas)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (applies migrations first)")
    _settings_flags(serve)
    serve.add_argument("--host", help="address (or name) to listen on (env ACTAS_HOST; 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (env ACTAS_PORT; 4000)")
    serve.add_argument("--frontend-api-url", help="public URL of this server, the tokens' iss "
                       "(env ACTAS_FRONTEND_API_URL)")
    serve.add_argument("--allowed-origins", help="comma-separated browser origins allowed to "
                       "call the Frontend API (env ACTAS_ALLOWED_ORIGINS)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="serving processes on this machine, sharing the database "
                       "(default 1; about one per core)")

    dev = commands.add_parser("dev", help="actas + the demo app on SQLite, with demo data")
    dev.add_argument("--host", default="localhost",
                     help="interface for both servers (default localhost)")
    dev.add_argument("--port", type=int, default=4000,
                     help="actas: its dashboard, APIs and docs (default 4000)")
    dev.add_argument("--app-port", type=int, default=3000, help="the demo app (default 3000)")
    dev.add_argument("--data-dir", default=".actas/dev",
                     help="where the demo's SQLite file, instance secret and Backend API key "
                     "live (default .actas/dev)")

    impersonate = commands.add_parser(
        "impersonate", help="print a one-time sign-in link to act as a user (support work "
        "from a terminal), as an operator and under the same policy as the dashboard")
    _settings_flags(impersonate)
    impersonate.add_argument("user", help="the user's id (user_…) or email address")
    impersonate.add_argument("--as", dest="operator", required=True,
                             help="the operator acting (id or email): their role applies")
    impersonate.add_argument("--reason", help="why (required unless ACTAS_REQUIRE_REASON is "
                             "off); recorded, and shown to the user")
    impersonate.add_argument("--mode", choices=["read_only", "full"], default="read_only",
                             help="read_only (default) or full, if the operator's role may")
    impersonate.add_argument("--minutes", type=int, default=30,
                             help="hard limit of the impersonation (default 30)")

    migrate = commands.add_parser("migrate", help="apply database migrations")
    _settings_flags(migrate)

    keys = commands.add_parser("keys", help="signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser(
        "rotate", help="add a new signing key; it is published at once and signs after the lead")
    _settings_flags(rotate)
    rotate.add_argument("--publish-lead", type=int, default=300, metavar="SECONDS",
                        help="how long the new key is published before it signs (default 300, "
                        "so verifiers' cached JWKS learn it first)")

    users = commands.add_parser("users", help="application users")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    create = user_commands.add_parser("create", help="create a user")
    _settings_flags(create)
    create.add_argument("--email", required=True)
    create.add_argument("--username")
    create.add_argument("--first-name")
    create.add_argument("--last-name")
    create.add_argument("--password", help="the password (prompted, or read from stdin, "
                        "when omitted; a flag is visible to other local users)")
    create.add_argument("--no-password", action="store_true", help="create without a password")

    operators = commands.add_parser("operators", help="dashboard operators (support staff)")
    operator_commands = operators.add_subparsers(dest="operators_command", required=True)
    new_operator = operator_commands.add_parser("create", help="create an operator")
    _settings_flags(new_operator)
    new_operator.add_argument("--email", required=True)
    new_operator.add_argument("--name")
    new_operator.add_argument("--role", required=True,
                              choices=["owner", "admin", "support", "viewer"],
                              help="owner/admin/support may impersonate; only owner may "
                              "impersonate protected users; viewer may not impersonate")
    new_operator.add_argument("--password", help="prompted, or read from stdin, when omitted")
    listing = operator_commands.add_parser("list", help="every operator, one JSON line each")
    _settings_flags(listing)
    for name, what in (("disable", "disable an operator: signs them out of the dashboard and "
                                   "ends every impersonation they run"),
                       ("enable", "enable a disabled operator again"),
                       ("set-role", "change an operator's role")):
        change = operator_commands.add_parser(name, help=what)
        _settings_flags(change)
        change.add_argument("operator", help="the operator's id (op_…) or email address")
        if name == "set-role":
            change.add_argument("role", choices=["owner", "admin", "support", "viewer"])

    machines = commands.add_parser(
        "machines", help="machine clients: your admin tool, starting impersonations through "
        "the token endpoint (RFC 8693) without the Backend API's secret key")
    machine_commands = machines.add_subparsers(dest="machines_command", required=True)
    new_machine = machine_commands.add_parser(
        "create", help="create one; prints its client id and secret (shown only once)")
    _settings_flags(new_machine)
    new_machine.add_argument("--name", required=True, help="what it is, e.g. 'Admin console'")
    new_machine.add_argument("--protected", action="store_true",
                             help="may impersonate protected users")
    new_machine.add_argument("--full", action="store_true",
                             help="may start full impersonations (else read-only only)")
    new_machine.add_argument("--public-key", metavar="PEM_FILE", type=Path,
                             help="it signs in with assertions signed by its private key "
                             "(private_key_jwt; RSA, P-256 or Ed25519) instead of a secret")
    listed = machine_commands.add_parser("list", help="every machine client, one JSON line "
                                         "each (never a secret)")
    _settings_flags(listed)
    revoke = machine_commands.add_parser("revoke", help="revoke one: its secret stops working")
    _settings_flags(revoke)
    revoke.add_argument("client_id")

    audit = commands.add_parser("audit", help="the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the whole hash chain (with progress; locks nothing); exit 1 "
        "and name the first broken event if any")
    _settings_flags(verify)
    verify.add_argument("--resume", action="store_true",
                        help="continue an interrupted run where it stopped")
    return parser


def _instance(args: argparse.Namespace, *, existing: bool = False, **extra: Any) -> Instance:
    """The instance the flags name; with ``existing``, refuse to create a new, empty
    database where the operator meant to read theirs (say, ``actas audit verify`` run
    without the ``--data-dir`` that ``actas dev`` uses)."""
    settings = load_settings(database_url=args.database_url, data_dir=args.data_dir, **extra)
    if existing:
        _require_database(settings.database_url)
    return Instance.start(settings)


def _require_database(database_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not os.path.exists(url.database):
        raise ConfigurationInvalid(
            f"There is no actas database at {url.database}. Give --data-dir (actas dev and "
            "make run keep theirs in .actas/dev) or --database-url.")


def _serve(args: argparse.Namespace) -> None:
    from actas.server import serving

    instance = _instance(args, host=args.host, port=args.port,
                         frontend_api_url=args.frontend_api_url,
                         allowed_origins=args.allowed_origins)
    settings = instance.settings
    # Before a secret key is generated and shown: a server that cannot start must
    # not print a key that nothing will accept.
    server = serving.server(settings, workers=args.workers)
    new_key = instance.ensure_secret_key()
    print(f"actas {settings.frontend_api_url}  (database: {instance.engine.url!r})")
    if settings.password_hashing == "test-only-insecure":  # noqa: S105  (a preset name)
        print("WARNING: ACTAS_PASSWORD_HASHING=test-only-insecure: passwords are hashed with "
              "parameters meant for test suites only.", file=sys.stderr)
    if new_key is not None:
        print("\nA Backend API secret key was generated. It is shown only this once and "
              "stored only as a hash:\n\n"
              f"    {new_key.reveal()}\n\n"
              "Keep it in ACTAS_SECRET_KEY for your application's backend.\n")
    if not _has_operators(instance):
        print(f"\nThe dashboard ({settings.frontend_api_url}/dashboard) needs an operator to "
              "sign in; create the first one with:\n\n"
              "    actas operators create --email you@example.com --role owner\n")
    # Flushed now: under systemd or docker stdout is a pipe, and a key still in
    # the buffer when the process dies would be lost for good (only its hash is kept).
    sys.stdout.flush()
    # Each process builds its own app from the environment, as this one resolved it.
    flags = {"ACTAS_DATABASE_URL": args.database_url, "ACTAS_DATA_DIR": args.data_dir,
             "ACTAS_HOST": args.host, "ACTAS_PORT": args.port and str(args.port),
             "ACTAS_FRONTEND_API_URL": args.frontend_api_url,
             "ACTAS_ALLOWED_ORIGINS": args.allowed_origins}
    os.environ.update({name: value for name, value in flags.items() if value})
    os.environ[serving.SERVER_PID] = str(os.getpid())  # its workers end with it
    instance.engine.dispose()
    try:
        server.serve()
    except RuntimeError as error:  # granian binds in Rust and says so in a RuntimeError
        if "in use" not in str(error):
            raise
        raise ConfigurationInvalid(f"Cannot listen on {settings.host}:{settings.port}: "
                                   "address already in use.") from None


def _has_operators(instance: Instance) -> bool:
    from sqlalchemy import select

    from actas.server.db.schema import Operator

    with instance.snapshot() as db:
        return db.scalar(select(Operator.id).limit(1)) is not None


def _rotate(args: argparse.Namespace) -> None:
    instance = _instance(args, existing=True)
    settings = instance.settings
    with instance.transaction() as db:
        key = instance.keys.rotate(
            db, algorithm=settings.signing_algorithm, now_ms=instance.now_ms(),
            lead_ms=args.publish_lead * 1000,
            token_lifetime_ms=(settings.session_token_lifetime + settings.clock_skew) * 1000,
        )
        print(json.dumps({"kid": key.kid, "algorithm": key.algorithm,
                          "signs_from": key.signs_from}))


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    return (getpass.getpass("Password: ") if sys.stdin.isatty()
            else sys.stdin.readline().rstrip("\n"))


def _create_operator(args: argparse.Namespace) -> None:
    from actas.server import operators

    password = _read_password(args.password)
    instance = _instance(args)
    with instance.transaction() as db:
        operator = operators.create(db, instance, email=args.email, role=args.role,
                                    password=password, name=args.name)
        print(json.dumps({"id": operator.id, "email_address": operator.email_address,
                          "role": operator.role}))


def _machines(args: argparse.Namespace) -> None:
    from actas.server import machine_clients
    from actas.server.audit import RequestOrigin

    instance = _instance(args, existing=args.machines_command != "create")
    origin = RequestOrigin(user_agent="actas cli")
    with instance.transaction() as db:
        if args.machines_command == "create":
            pem = args.public_key.read_text() if args.public_key else None
            row, secret = machine_clients.create(
                db, instance, name=args.name, may_impersonate_protected=args.protected,
                may_start_full=args.full, public_key_pem=pem, origin=origin)
            if secret is None:
                print(json.dumps({"client_id": row.id, "name": row.name,
                                  "token_endpoint_auth_method": "private_key_jwt"}))
                return
            print(json.dumps({"client_id": row.id, "client_secret": secret.reveal(),
                              "name": row.name}))
            print("The secret is shown only this once; actas keeps only its digest.",
                  file=sys.stderr)
            return
        if args.machines_command == "revoke":
            row = machine_clients.revoke(db, instance, args.client_id, origin=origin)
            print(json.dumps({"client_id": row.id, "revoked_at": row.revoked_at}))
            return
        for row in machine_clients.list_all(db):
            print(json.dumps({"client_id": row.id, "name": row.name,
                              "may_impersonate_protected": row.may_impersonate_protected,
                              "may_start_full": row.may_start_full,
                              "token_endpoint_auth_method": "private_key_jwt"
                              if row.public_key_pem else "client_secret_basic",
                              "last_used_at": row.last_used_at, "revoked_at": row.revoked_at}))


def _change_operator(args: argparse.Namespace) -> None:
    from actas.server import operators
    from actas.server.audit import RequestOrigin

    instance = _instance(args, existing=True)
    by, origin = "cli", RequestOrigin(user_agent="actas cli")
    with instance.transaction() as db:
        if args.operators_command == "list":
            for operator in operators.list_all(db):
                print(json.dumps({"id": operator.id, "email_address": operator.email_address,
                                  "name": operator.name, "role": operator.role,
                                  "disabled": operator.disabled}))
            return
        operator = operators.find(db, args.operator)
        if args.operators_command == "set-role":
            operators.set_role(db, instance, operator, args.role, by=by, origin=origin)
        else:
            operators.set_disabled(db, instance, operator, args.operators_command == "disable",
                                   by=by, origin=origin)
        print(json.dumps({"id": operator.id, "email_address": operator.email_address,
                          "role": operator.role, "disabled": operator.disabled}))


def _verify_audit(args: argparse.Namespace) -> int:
    from actas.server import audit_verification

    instance = _instance(args, existing=True)
    interactive = sys.stderr.isatty()
    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if interactive:
            bar = "#" * (percent // 4)
            print(f"\r  [{bar:<25}] {done:,}/{total:,} events", end="", file=sys.stderr,
                  flush=True)
        elif percent // 10 != shown[0]:  # a line per tenth in a log
            shown[0] = percent // 10
            print(f"  verified {done:,}/{total:,} events", file=sys.stderr, flush=True)

    result = audit_verification.verify_all(instance, resume=args.resume, progress=progress)
    if interactive:
        print(file=sys.stderr)
    if result.ok:
        resumed = (" (resumed: run without --resume to check from the first event)"
                   if args.resume else "")
        print(f"audit chain OK: {result.events} events, head {result.head_hash}{resumed}")
        return 0
    where = f"event {result.broken_seq}" + (f" ({result.broken_id})" if result.broken_id else "")
    print(f"audit chain BROKEN at {where}: {result.problem}", file=sys.stderr)
    return 1


def _impersonate(args: argparse.Namespace) -> None:
    from actas.server import operators, users
    from actas.server.audit import RequestOrigin
    from actas.server.impersonation import actor_tokens
    from actas.server.impersonation.policy import Requester

    instance = _instance(args, existing=True)
    with instance.transaction() as db:
        operator = operators.find(db, args.operator)
        user = (users.get(db, args.user) if args.user.startswith("user_")
                else users.find_by_identifier(db, args.user.strip().lower()))
        if user is None:
            raise ResourceNotFound(f"No user has the email address {args.user!r}.",
                                   param_name="user")
        user_id = user.id
    issued = actor_tokens.create(
        instance, requester=Requester.of_operator(operator), user_id=user_id,
        actor={"sub": operator.id, "email": operator.email_address,
               "name": operator.name or operator.email_address},
        reason=args.reason, origin=RequestOrigin(user_agent="actas cli"), expires_in=600,
        session_max_duration=args.minutes * 60, mode=args.mode)
    print(issued.url)
    print(f"Open it within 10 minutes; it works once. {issued.row.mode.replace('_', '-')}, "
          f"at most {args.minutes} min, as {operator.email_address}; the user will see it.",
          file=sys.stderr)


def _create_user(args: argparse.Namespace) -> None:
    from actas.server import users

    password = None if args.no_password else _read_password(args.password)
    instance = _instance(args)
    password_hash = users.hash_password(instance, password)  # not under the write lock
    with instance.transaction() as db:
        user = users.create(db, instance, email_addresses=[args.email], username=args.username,
                            first_name=args.first_name, last_name=args.last_name,
                            password_hash=password_hash)
        print(json.dumps({"id": user.id, "email_address": args.email}))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
        elif args.command == "dev":
            from actas.server import dev

            dev.run(dev.DevConfig(host=args.host, port=args.port, app_port=args.app_port,
                                  data_dir=args.data_dir))
        elif args.command == "migrate":
            _instance(args)
            print("migrations applied")
        elif args.command == "keys":
            _rotate(args)
        elif args.command == "users":
            _create_user(args)
        elif args.command == "operators" and args.operators_command == "create":
            _create_operator(args)
        elif args.command == "operators":
            _change_operator(args)
        elif args.command == "machines":
            _machines(args)
        elif args.command == "audit":
            return _verify_audit(args)
        elif args.command == "impersonate":
            _impersonate(args)
    except ActasError as error:
        print(f"actas: {error.message} ({error.code})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
