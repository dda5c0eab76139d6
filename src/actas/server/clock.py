"""Time, injected: every expiry and lifetime in the server asks a ``Clock``."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (the unit of every stored timestamp)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FrozenClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, *, seconds: float = 0, ms: int = 0) -> None:
        self._now_ms += int(seconds * 1000) + ms
