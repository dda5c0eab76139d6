"""Operator roles and impersonation modes: the names the policy and the settings share."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["owner", "admin", "support", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

# An impersonation sees the account (read_only) or may also change it (full).
Mode = Literal["read_only", "full"]
MODES: tuple[Mode, ...] = get_args(Mode)
READ_ONLY: Mode = "read_only"
FULL: Mode = "full"
