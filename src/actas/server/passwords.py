"""Password hashing with argon2id (``argon2-cffi``).

``verify`` follows argon2-cffi's rule: it raises on every failure and
returns only on success, so a forgotten check cannot pass a wrong password.

Each hash holds 64 MiB (the production preset) while it runs, so a burst of
sign-ups or sign-ins would take the process's memory with it: a
``PasswordHasher`` computes at most ``max_concurrent`` hashes at once (the
number of cores by default) and the rest wait their turn. The instance has
one, which every sign-in, sign-up, password change and operator sign-in goes
through, so the bound is process-wide.

Hashes run in threads of their own, at a lower CPU priority (nice
``HASHING_NICENESS`` on Linux): when the CPU is short, a 50 ms hash waits
rather than the token refreshes of every signed-in browser. Measured with
one client signing in back to back beside 64 refreshing connections
(``bench/refresh_ab.py --sign-ins``): refresh p99 137 → 120 ms, and 9% more
refreshes a second; sign-ins themselves then get about half the hashes a
second they got, on a saturated machine only (nice changes nothing while a
core is idle).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
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


# How much hashing yields to the rest of the process when the CPU is short (Linux nice).
HASHING_NICENESS = 10


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority (on Linux, nice is per thread, and argon2's
    own lane threads inherit it). Elsewhere hashing keeps the process's priority."""
    with contextlib.suppress(AttributeError, OSError):  # not on Linux: nothing is lost
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


# The hashing threads, shared by every hasher of a bound in the process (a process has one
# instance; a test suite makes many, and they must not make threads each).
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _forget_the_parents_threads() -> None:
    """In a forked child, which has none of its parent's threads: it makes pools of its
    own (a hash queued on the parent's pool would wait forever), under a lock of its
    own (the parent's may have been held, by a thread that is not here to release it)."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_the_parents_threads)


def _hashing_threads(size: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            pool = _POOLS[size] = ThreadPoolExecutor(
                size, thread_name_prefix="actas-argon2", initializer=_lower_priority)
        return pool


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
        self._threads = max_concurrent or default_concurrency()
        # Verified against when the user does not exist, so that a sign-in for
        # an unknown email costs the same time as one with a wrong password.
        self._dummy_hash = self.hash("actas-dummy-password")

    def hash(self, password: str) -> str:
        return _hashing_threads(self._threads).submit(self._hasher.hash, password).result()

    def verify(self, stored_hash: str | None, password: str) -> None:
        """Return if ``password`` matches ``stored_hash``; raise ``InvalidCredentials`` if not."""
        try:
            _hashing_threads(self._threads).submit(
                self._hasher.verify, stored_hash or self._dummy_hash, password).result()
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise InvalidCredentials() from None
        if stored_hash is None:
            raise InvalidCredentials()

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
