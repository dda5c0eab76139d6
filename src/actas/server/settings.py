"""All server configuration, in one frozen object built in exactly one place.

``load_settings`` reads ``ACTAS_*`` environment variables and CLI overrides
(CLI wins), validates them, and resolves the instance secret (generated and
kept in the data directory on first start when not given). Nothing else in
the server reads the environment.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from actas._errors import ConfigurationInvalid
from actas._jws import ALGORITHMS, Algorithm
from actas.server import private_files
from actas.server.credentials import SECRET_KEY_PREFIX, Secret
from actas.server.passwords import PasswordPreset
from actas.server.roles import ROLES, Role

DAY = 86_400


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    instance_secret: Secret
    frontend_api_url: str
    # The Backend API secret key given by the operator, if any; keys generated
    # by actas itself live (hashed) in the database.
    secret_key: Secret | None = None
    allowed_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 4000
    session_token_lifetime: int = 60
    session_max_lifetime: int = 7 * DAY
    session_inactivity_timeout: int = 1 * DAY
    clock_skew: int = 5
    signing_algorithm: Algorithm = "RS256"
    password_hashing: PasswordPreset = "rfc9106-low-memory"  # noqa: S105  (a preset name)
    cookie_secure: bool = True
    max_body_bytes: int = 1_000_000
    # Webhooks go to public addresses only unless this is on (local development,
    # a receiver on the same private network); see actas.server.webhook_urls.
    webhooks_allow_private_networks: bool = False
    # Rate limits per 15-minute window (see actas.server.rate_limits).
    sign_ups_per_address: int = 20
    ticket_failures_per_address: int = 20
    ticket_failures_per_ticket: int = 10
    # Impersonation policy.
    application_url: str | None = None  # where an accepted ticket lands; see landing_url
    actor_token_max_expires_in: int = 1 * DAY
    impersonation_max_duration: int = 4 * 3600
    impersonation_inactivity_timeout: int = 600
    require_reason: bool = True
    allow_nested_impersonation: bool = False
    # Operator roles that may start a full impersonation; every other role that may
    # impersonate starts read-only ones only. The Backend API may start either.
    full_impersonation_roles: tuple[Role, ...] = ("owner", "admin")
    # How long what impersonators did in the application (reported by its SDK) is kept.
    impersonation_activity_retention_days: int = 90
    # "<metadata>.<key>=<value>" alternatives that make a user protected.
    protected_metadata_rules: tuple[str, ...] = (
        "public_metadata.role=admin", "private_metadata.role=admin")
    # The user's say (actas.server.impersonation.consent): the preference of a user who
    # set none, how long an access request waits for an answer, and the longest grant.
    impersonation_preference_default: str = "allowed"
    access_request_expires_in: int = 3 * DAY
    access_grant_max_duration: int = 7 * DAY
    # Operators' second factor (actas.server.operator_factors): "required" for every role
    # that may impersonate (the default; `actas dev` makes it optional) or "optional";
    # and how recent a second-factor check must be to start an impersonation.
    operator_second_factor: str = "required"
    step_up_minutes: int = 10
    # Four eyes (actas.server.impersonation.approvals): which operator impersonations a
    # second operator must approve first ("always", "full", "protected", "override",
    # "longer_than=<minutes>"); how long a request waits, and an approval lasts unused.
    approval_required_for: tuple[str, ...] = ()
    approval_request_expires_in: int = DAY
    approval_expires_in: int = 3600
    # Notices to users (actas.server.notices), sent by email from the mail outbox
    # (actas.server.mail): through ACTAS_SMTP_URL, or printed (ACTAS_MAIL_CONSOLE, as
    # `actas dev` does); with neither, none are queued.
    smtp_url: Secret | None = None
    mail_from: str | None = None
    mail_console: bool = False
    impersonation_notices: tuple[str, ...] = ("start", "end", "requests")
    mail_templates_dir: Path | None = None
    complaints_contact: str | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For / -Proto actas
    # believes; none by default: the socket's peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def landing_url(self) -> str:
        """Where the browser goes after accepting an impersonation ticket."""
        if self.application_url:
            return self.application_url
        return self.allowed_origins[0] if self.allowed_origins else self.frontend_api_url

    @functools.cached_property
    def trusted_origins(self) -> frozenset[str]:
        """Origins allowed to call the Frontend API: the configured ones and actas's own."""
        return frozenset((*self.allowed_origins, origin_of(self.frontend_api_url)))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_ENV = {
    "host": "ACTAS_HOST",
    "port": "ACTAS_PORT",
    "database_url": "ACTAS_DATABASE_URL",
    "data_dir": "ACTAS_DATA_DIR",
    "secret_key": "ACTAS_SECRET_KEY",
    "instance_secret": "ACTAS_INSTANCE_SECRET",
    "frontend_api_url": "ACTAS_FRONTEND_API_URL",
    "allowed_origins": "ACTAS_ALLOWED_ORIGINS",
    "session_token_lifetime": "ACTAS_SESSION_TOKEN_LIFETIME",
    "session_max_lifetime": "ACTAS_SESSION_MAX_LIFETIME",
    "session_inactivity_timeout": "ACTAS_SESSION_INACTIVITY_TIMEOUT",
    "signing_algorithm": "ACTAS_SIGNING_ALGORITHM",
    "password_hashing": "ACTAS_PASSWORD_HASHING",
    "cookie_secure": "ACTAS_COOKIE_SECURE",
    "application_url": "ACTAS_APPLICATION_URL",
    "actor_token_max_expires_in": "ACTAS_ACTOR_TOKEN_MAX_EXPIRES_IN",
    "impersonation_max_duration": "ACTAS_IMPERSONATION_MAX_DURATION",
    "impersonation_inactivity_timeout": "ACTAS_IMPERSONATION_INACTIVITY_TIMEOUT",
    "require_reason": "ACTAS_REQUIRE_REASON",
    "allow_nested_impersonation": "ACTAS_ALLOW_NESTED_IMPERSONATION",
    "full_impersonation_roles": "ACTAS_FULL_IMPERSONATION_ROLES",
    "impersonation_activity_retention_days": "ACTAS_IMPERSONATION_ACTIVITY_RETENTION_DAYS",
    "protected_metadata_rules": "ACTAS_PROTECTED_METADATA_RULES",
    "webhooks_allow_private_networks": "ACTAS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
    "trusted_proxies": "ACTAS_TRUSTED_PROXIES",
    "impersonation_preference_default": "ACTAS_IMPERSONATION_PREFERENCE_DEFAULT",
    "access_request_expires_in": "ACTAS_ACCESS_REQUEST_EXPIRES_IN",
    "access_grant_max_duration": "ACTAS_ACCESS_GRANT_MAX_DURATION",
    "operator_second_factor": "ACTAS_OPERATOR_SECOND_FACTOR",
    "step_up_minutes": "ACTAS_STEP_UP_MINUTES",
    "approval_required_for": "ACTAS_APPROVAL_REQUIRED_FOR",
    "approval_request_expires_in": "ACTAS_APPROVAL_REQUEST_EXPIRES_IN",
    "approval_expires_in": "ACTAS_APPROVAL_EXPIRES_IN",
    "smtp_url": "ACTAS_SMTP_URL",
    "mail_from": "ACTAS_MAIL_FROM",
    "mail_console": "ACTAS_MAIL_CONSOLE",
    "impersonation_notices": "ACTAS_IMPERSONATION_NOTICES",
    "mail_templates_dir": "ACTAS_MAIL_TEMPLATES_DIR",
    "complaints_contact": "ACTAS_COMPLAINTS_CONTACT",
    "sign_ups_per_address": "ACTAS_SIGN_UPS_PER_ADDRESS",
    "ticket_failures_per_address": "ACTAS_TICKET_FAILURES_PER_ADDRESS",
    "ticket_failures_per_ticket": "ACTAS_TICKET_FAILURES_PER_TICKET",
}

_INT_BOUNDS = {
    "port": (1, 65_535),
    "session_token_lifetime": (10, 3_600),
    "session_max_lifetime": (60, 365 * DAY),
    "session_inactivity_timeout": (60, 365 * DAY),
    "actor_token_max_expires_in": (60, 30 * DAY),
    "impersonation_max_duration": (60, DAY),
    "impersonation_inactivity_timeout": (30, DAY),
    "impersonation_activity_retention_days": (1, 3650),
    "sign_ups_per_address": (1, 1_000_000),
    "ticket_failures_per_address": (1, 1_000_000),
    "ticket_failures_per_ticket": (1, 1_000_000),
    "access_request_expires_in": (60, 30 * DAY),
    "access_grant_max_duration": (60, 90 * DAY),
    "approval_request_expires_in": (60, 30 * DAY),
    "approval_expires_in": (60, DAY),
    "step_up_minutes": (1, 24 * 60),
}


def load_settings(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build ``Settings`` from ``environ`` (default ``os.environ``) and overrides.

    Overrides are the CLI's flags; ``None`` means "not given".
    """
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {
        name: env[var] for name, var in _ENV.items() if env.get(var, "") != ""
    }
    raw.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(raw) - set(_ENV) - {"extra"}
    if unknown:
        raise ConfigurationInvalid(f"Unknown settings: {', '.join(sorted(unknown))}.")

    values: dict[str, Any] = {}
    for name, (low, high) in _INT_BOUNDS.items():
        if name in raw:
            values[name] = _int(name, raw[name], low, high)
    host = str(raw.get("host", "127.0.0.1"))
    port = values.get("port", 4000)
    data_dir = Path(raw.get("data_dir", ".actas"))
    values["data_dir"] = data_dir
    values["host"] = host
    values["database_url"] = _database_url(
        str(raw.get("database_url") or f"sqlite:///{data_dir / 'actas.db'}"))
    values["frontend_api_url"] = _url(
        "frontend_api_url", str(raw.get("frontend_api_url", f"http://{host}:{port}"))
    ).rstrip("/")
    origins = raw.get("allowed_origins", ())
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    values["allowed_origins"] = tuple(origin_of(_url("allowed_origins", o)) for o in origins)

    if "secret_key" in raw:
        key = raw["secret_key"]
        key = key.reveal() if isinstance(key, Secret) else str(key)
        if not key.startswith(SECRET_KEY_PREFIX) or len(key) < 32:
            raise ConfigurationInvalid(
                "ACTAS_SECRET_KEY must start with 'sk_' and be at least 32 characters long."
            )
        values["secret_key"] = Secret(key)

    if "signing_algorithm" in raw:
        if raw["signing_algorithm"] not in ALGORITHMS:
            raise ConfigurationInvalid(
                f"ACTAS_SIGNING_ALGORITHM must be one of {', '.join(ALGORITHMS)}."
            )
        values["signing_algorithm"] = raw["signing_algorithm"]
    if "password_hashing" in raw:
        if raw["password_hashing"] not in get_args(PasswordPreset):
            raise ConfigurationInvalid(
                f"ACTAS_PASSWORD_HASHING must be one of {', '.join(get_args(PasswordPreset))}."
            )
        values["password_hashing"] = raw["password_hashing"]
    for name in ("cookie_secure", "require_reason", "allow_nested_impersonation",
                 "webhooks_allow_private_networks", "mail_console"):
        if name in raw:
            values[name] = _bool(name, raw[name])
    if "application_url" in raw:
        values["application_url"] = _url("application_url", str(raw["application_url"]))
    if "full_impersonation_roles" in raw:
        values["full_impersonation_roles"] = _roles(raw["full_impersonation_roles"])
    if "protected_metadata_rules" in raw:
        values["protected_metadata_rules"] = _rules(raw["protected_metadata_rules"])
    if "impersonation_preference_default" in raw:
        value = str(raw["impersonation_preference_default"]).strip().lower()
        if value not in ("allowed", "ask", "never"):
            raise ConfigurationInvalid("ACTAS_IMPERSONATION_PREFERENCE_DEFAULT must be allowed, "
                                       f"ask or never, got {value!r}.")
        values["impersonation_preference_default"] = value
    if "operator_second_factor" in raw:
        value = str(raw["operator_second_factor"]).strip().lower()
        if value not in ("required", "optional"):
            raise ConfigurationInvalid("ACTAS_OPERATOR_SECOND_FACTOR must be required or "
                                       f"optional, got {value!r}.")
        values["operator_second_factor"] = value
    if "approval_required_for" in raw:
        values["approval_required_for"] = _approval_rules(raw["approval_required_for"])
    if "smtp_url" in raw:
        values["smtp_url"] = _smtp_url(raw["smtp_url"])
    if "mail_from" in raw:
        values["mail_from"] = str(raw["mail_from"]).strip()
    if "impersonation_notices" in raw:
        values["impersonation_notices"] = _notices(raw["impersonation_notices"])
    if "mail_templates_dir" in raw:
        folder = Path(raw["mail_templates_dir"])
        if not folder.is_dir():
            raise ConfigurationInvalid(f"ACTAS_MAIL_TEMPLATES_DIR is not a directory: {folder}.")
        values["mail_templates_dir"] = folder
    if "complaints_contact" in raw:
        values["complaints_contact"] = str(raw["complaints_contact"]).strip() or None
    if "trusted_proxies" in raw:
        values["trusted_proxies"] = _networks(raw["trusted_proxies"])
    if "extra" in raw:
        values["extra"] = dict(raw["extra"])

    values["instance_secret"] = _instance_secret(raw.get("instance_secret"), data_dir)
    return Settings(**values)


def _roles(value: Any) -> tuple[Role, ...]:
    names = ([n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str)
             else [str(n) for n in value])
    unknown = [n for n in names if n not in ROLES]
    if unknown:
        raise ConfigurationInvalid(
            f"ACTAS_FULL_IMPERSONATION_ROLES names unknown roles ({', '.join(unknown)}); "
            f"roles are {', '.join(ROLES)}, comma-separated (or empty: none).")
    return tuple(r for r in ROLES if r in names)


def _int(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigurationInvalid(f"{_ENV[name]} must be a whole number, got {value!r}.") from None
    if not low <= number <= high:
        raise ConfigurationInvalid(f"{_ENV[name]} must be between {low} and {high}, got {number}.")
    return number


def _database_url(value: str) -> str:
    scheme = value.partition("://")[0].partition("+")[0].lower()
    if "://" not in value or scheme not in {"sqlite", "postgresql", "postgres"}:
        raise ConfigurationInvalid(
            "ACTAS_DATABASE_URL must be sqlite:///path/to/file.db or "
            "postgresql://user:password@host:port/database."
        )
    return value


def _rules(value: Any) -> tuple[str, ...]:
    rules = [r.strip() for r in value.split(",")] if isinstance(value, str) else list(value)
    for rule in filter(None, rules):
        path, sep, _expected = rule.partition("=")
        where, dot, key = path.partition(".")
        if not sep or not dot or not key or where not in {
                "public_metadata", "private_metadata"}:  # never user-writable unsafe_metadata
            raise ConfigurationInvalid(
                "ACTAS_PROTECTED_METADATA_RULES entries look like "
                f"'public_metadata.role=admin', got {rule!r}."
            )
    return tuple(filter(None, rules))


APPROVAL_RULES = ("always", "full", "protected", "override")


def _approval_rules(value: Any) -> tuple[str, ...]:
    items = [i.strip().lower() for i in value.split(",")] if isinstance(value, str) \
        else [str(i) for i in value]
    rules = []
    for item in filter(None, items):
        name, _, minutes = item.partition("=")
        if item in APPROVAL_RULES or (name == "longer_than" and minutes.isdigit()
                                      and 0 < int(minutes) <= 24 * 60):
            rules.append(item)
            continue
        raise ConfigurationInvalid(
            "ACTAS_APPROVAL_REQUIRED_FOR takes always, full, protected, override and "
            f"longer_than=<minutes>, comma-separated; got {item!r}.")
    return tuple(rules)


NOTICE_KINDS = ("start", "end", "requests", "digest")


def _notices(value: Any) -> tuple[str, ...]:
    items = [i.strip() for i in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [i for i in items if i and i not in NOTICE_KINDS]
    if unknown:
        raise ConfigurationInvalid(
            f"ACTAS_IMPERSONATION_NOTICES takes {', '.join(NOTICE_KINDS)} (comma-separated, or "
            f"empty for none); got {', '.join(unknown)}.")
    return tuple(k for k in NOTICE_KINDS if k in items)


def _smtp_url(value: Any) -> Secret:
    """``smtp://[user:password@]host[:port]`` (STARTTLS when the server offers it),
    ``smtps://…`` (TLS from the start). Kept as a Secret: it may hold a password."""
    text = value.reveal() if isinstance(value, Secret) else str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigurationInvalid(
            "ACTAS_SMTP_URL must look like smtp://user:password@mail.example.com:587 or "
            "smtps://…:465.")
    return Secret(text)


def _networks(value: Any) -> tuple[str, ...]:
    """Addresses or CIDR networks, as uvicorn's proxy-headers middleware takes them. A
    wildcard is refused: believing every peer lets any client choose its address."""
    items = [i.strip() for i in value.split(",")] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in filter(None, items):
        try:
            network = ipaddress.ip_network(item, strict=True)  # 10.0.0.5/8 is a typo, not /8
        except ValueError:
            network = None
        if network is None or network.prefixlen == 0:
            raise ConfigurationInvalid(
                "ACTAS_TRUSTED_PROXIES lists the addresses or networks of your reverse "
                f"proxies, comma-separated (e.g. 10.0.0.5,10.1.0.0/16); got {item!r}. "
                "Trusting every address would let any client choose its own.")
        out.append(str(network))
    return tuple(out)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationInvalid(f"{_ENV[name]} must be true or false, got {value!r}.")


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationInvalid(f"{_ENV[name]} must be an http(s) URL, got {value!r}.")
    return value


def _instance_secret(given: Any, data_dir: Path) -> Secret:
    if given is not None:
        value = given.reveal() if isinstance(given, Secret) else str(given)
        if len(value) < 32:
            raise ConfigurationInvalid("ACTAS_INSTANCE_SECRET must be at least 32 characters long.")
        return Secret(value)
    path = data_dir / "instance_secret"
    if path.exists():
        return Secret(path.read_text().strip())
    private_files.private_directory(data_dir)
    value = secrets.token_urlsafe(48)
    # Created with owner-only permissions from the first byte, not chmod-ed after.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return Secret(value)
