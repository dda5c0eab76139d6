"""Password hashing with argon2id (``argon2-cffi``).

``verify`` follows argon2-cffi's rule: it raises on every failure and
returns only on success, so a forgotten check cannot pass a wrong password.

Each hash holds 64 MiB (the production preset) while it runs, so a burst of
sign-ups or sign-ins would take the process's memory with it: a
``PasswordHasher`` computes at most ``max_concurrent`` hashes at once (the
number of cores by default) and the rest wait their turn. The instance has
one, which every sign-in, sign-up, password change and operator sign-in goes
through, so the bound is process-wide.
"""

from __future__ import annotations

import os
import threading
from typing import Literal, Protocol

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from actas._errors import InvalidCredentials

PasswordPreset = Literal["rfc9106-low-memory", "test-only-insecure"]

PRESETS: dict[PasswordPreset, argon2.PasswordHasher] = {
    # RFC 9106 §4's second recommended option (t=3, m=64 MiB, p=4): the
    # production default, about 50 ms per hash on one core.
    "rfc9106-low-memory": argon2.PasswordHasher.from_parameters(
        argon2.profiles.RFC_9106_LOW_MEMORY
    ),
    # Deliberately weak, so that test suites that sign up hundreds of users stay
    # fast. Never use it for real passwords; `actas serve` warns when it is on.
    "test-only-insecure": argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=16
    ),
}

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 hashes any length; the cap stops a 100 MB "password"


class Argon2(Protocol):
    """What ``PasswordHasher`` uses of ``argon2.PasswordHasher``."""

    def hash(self, password: str) -> str: ...

    def verify(self, hash: str, password: str) -> bool: ...

    def check_needs_rehash(self, hash: str) -> bool: ...


def default_concurrency() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PasswordHasher:
    def __init__(self, preset: PasswordPreset = "rfc9106-low-memory", *,
                 max_concurrent: int | None = None, hasher: Argon2 | None = None) -> None:
        self._hasher: Argon2 = hasher or PRESETS[preset]
        self._slots = threading.BoundedSemaphore(max_concurrent or default_concurrency())
        # Verified against when the user does not exist, so that a sign-in for
        # an unknown email costs the same time as one with a wrong password.
        self._dummy_hash = self.hash("actas-dummy-password")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> None:
        """Return if ``password`` matches ``stored_hash``; raise ``InvalidCredentials`` if not."""
        try:
            with self._slots:
                self._hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise InvalidCredentials() from None
        if stored_hash is None:
            raise InvalidCredentials()

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
