"""Password hashing: verify raises on every failure; hashes run a bounded number at a time."""

from __future__ import annotations

import os
import select
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from actas._errors import InvalidCredentials
from actas.server import passwords
from actas.server.passwords import HASHING_NICENESS, PasswordHasher, default_concurrency

CALLERS = 12
SLOTS = 3


class Instrumented:
    """A stand-in for argon2 that counts how many callers are inside it at once.

    The first callers are held inside until the test releases them, so that
    every other caller is trying to get in while the hasher is as full as the
    bound allows.
    """

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.calls = 0
        self.release = threading.Event()
        self.changed = threading.Condition()

    def _enter(self) -> None:
        with self.changed:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)
            self.changed.notify_all()
        self.release.wait(timeout=60)
        with self.changed:
            self.inside -= 1
            self.changed.notify_all()

    def hash(self, password: str) -> str:
        self._enter()
        return "hashed:" + password

    def verify(self, hash: str, password: str) -> bool:
        self._enter()
        return hash == "hashed:" + password

    def check_needs_rehash(self, hash: str) -> bool:
        return False


def test_no_more_than_the_bound_hash_at_once() -> None:
    inner = Instrumented()
    inner.release.set()  # the dummy hash made at construction
    hasher = PasswordHasher("test-only-insecure", max_concurrent=SLOTS, hasher=inner)
    inner.release.clear()
    arrived = threading.Barrier(CALLERS + 1, timeout=60)

    def call(i: int) -> None:
        arrived.wait()
        if i % 2:
            hasher.verify("hashed:pw", "pw")
        else:
            hasher.hash("pw")

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        done = [pool.submit(call, i) for i in range(CALLERS)]
        arrived.wait()  # every caller is on its way in
        with inner.changed:
            assert inner.changed.wait_for(lambda: inner.inside == SLOTS, timeout=60)
        inner.release.set()
        for future in done:
            future.result(timeout=60)

    assert inner.calls == CALLERS + 1
    assert inner.most == SLOTS


def test_by_default_the_bound_is_the_number_of_cores() -> None:
    assert default_concurrency() >= 1
    hasher = PasswordHasher("test-only-insecure")
    stored = hasher.hash("correct horse")
    hasher.verify(stored, "correct horse")
    with pytest.raises(InvalidCredentials):
        hasher.verify(stored, "wrong horse")
    with pytest.raises(InvalidCredentials):
        hasher.verify(None, "anything")  # no such user: still refused after a hash


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="thread niceness is Linux's")
def test_hashes_run_at_a_lower_cpu_priority_than_their_caller() -> None:
    """So that on a busy machine a sign-in's hash waits, not every browser's refresh."""
    seen: list[int] = []

    class Recording(Instrumented):
        def hash(self, password: str) -> str:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return "hashed:" + password

    hasher = PasswordHasher("test-only-insecure", max_concurrent=1, hasher=Recording())
    hasher.hash("pw")
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen and all(niceness == min(caller + HASHING_NICENESS, 19) for niceness in seen)
    assert caller == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # unchanged


def _forked_child_verifies(hasher: PasswordHasher, stored: str) -> None:
    """Fork; the child verifies ``stored`` and says so; fail if it never does."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a hash must finish, not wait on the parent's threads
        try:
            hasher.verify(stored, "pw")
            os.write(write, b"ok")
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 60)  # a bound on a hang, not a timing
        assert ready and os.read(read, 2) == b"ok"
    finally:
        os.close(read)
        os.kill(pid, signal.SIGKILL)  # a child stuck on a hash would never end by itself
        os.waitpid(pid, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_forked_child_hashes_on_threads_of_its_own() -> None:
    hasher = PasswordHasher("test-only-insecure")  # its pool has a thread in this process
    _forked_child_verifies(hasher, hasher.hash("pw"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX's")
def test_a_child_forked_while_a_pool_is_being_made_hashes() -> None:
    """The pools' lock, held at the fork by a thread the child does not have, would
    never be released there."""
    hasher = PasswordHasher("test-only-insecure")
    stored = hasher.hash("pw")
    with passwords._POOLS_LOCK:  # as another thread making a pool at that moment
        _forked_child_verifies(hasher, stored)
