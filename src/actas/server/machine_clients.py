"""Machine clients: an application's own admin tool, allowed to start impersonations
through the token endpoint (``actas.server.oauth``) with a credential of its own rather
than the Backend API's secret key. The secret (``mcs_…``) is shown once and stored as a
digest; each client's rights are scoped (protected users, full mode) and it can be
revoked. Created and revoked from the command line (``actas machines``)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session as Db

from actas._errors import FormParamInvalid, ResourceNotFound
from actas.server import credentials, ids, operators
from actas.server.audit import Record, RequestOrigin
from actas.server.credentials import Secret
from actas.server.db.schema import MachineClient

if TYPE_CHECKING:
    from actas.server.instance import Instance

CLIENT = "mc"
SECRET_PREFIX = "mcs_"  # noqa: S105  (a purpose prefix, not a secret)
# What a dummy digest is compared against when the client does not exist, so that the
# time taken does not say which client ids exist.
_DUMMY_DIGEST = credentials.digest("mcs_" + "0" * 40)


def create(db: Db, instance: Instance, *, name: str, may_impersonate_protected: bool = False,
           may_start_full: bool = False, origin: RequestOrigin) -> tuple[MachineClient, Secret]:
    name = name.strip()
    if not name or len(name) > 200:
        raise FormParamInvalid("A machine client needs a name (at most 200 characters).",
                               param_name="name")
    now = instance.now_ms()
    secret = credentials.generate(SECRET_PREFIX)
    row = MachineClient(id=ids.new_id(CLIENT, now), name=name,
                        secret_digest=credentials.digest(secret.reveal()),
                        may_impersonate_protected=may_impersonate_protected,
                        may_start_full=may_start_full, created_at=now, last_used_at=None,
                        revoked_at=None)
    db.add(row)
    db.flush()
    instance.record(db, Record(type="machine_client.created", origin=origin,
                               data={"client_id": row.id, "name": name,
                                     "may_impersonate_protected": may_impersonate_protected,
                                     "may_start_full": may_start_full}))
    return row, secret


def authenticate(db: Db, instance: Instance, client_id: str, secret: str
                 ) -> MachineClient | None:
    """The client whose id and secret these are, if it is not revoked; else ``None``."""
    row = db.get(MachineClient, client_id) if len(client_id) <= 40 else None
    expected = row.secret_digest if row is not None and row.secret_digest else _DUMMY_DIGEST
    matches = hmac.compare_digest(credentials.digest(secret), expected)
    if row is None or not row.secret_digest or not matches or row.revoked_at is not None:
        return None
    row.last_used_at = instance.now_ms()
    return row


def permissions(client: MachineClient) -> frozenset[str]:
    granted = {operators.IMPERSONATE}
    if client.may_impersonate_protected:
        granted.add(operators.IMPERSONATE_PROTECTED)
    return frozenset(granted)


def revoke(db: Db, instance: Instance, client_id: str, *, origin: RequestOrigin
           ) -> MachineClient:
    row = db.get(MachineClient, client_id)
    if row is None:
        raise ResourceNotFound("No such machine client.", client_id=client_id)
    if row.revoked_at is None:
        row.revoked_at = instance.now_ms()
        instance.record(db, Record(type="machine_client.revoked", origin=origin,
                                   data={"client_id": row.id, "name": row.name}))
    return row


def list_all(db: Db) -> list[MachineClient]:
    return list(db.scalars(select(MachineClient).order_by(MachineClient.id)))
