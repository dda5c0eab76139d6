"""A bounded LRU of verified tokens, admitting a token on its second sighting.

Most session tokens are presented many times (a browser calls its backend
with the same token for up to a minute), but a verifier also sees tokens only
once. Caching those one-hit tokens costs every first-seen verification the
memory it retains and the evictions it causes, for nothing. So a token is
admitted on its second sighting (a "doorkeeper" set of hashes remembers the
first); from the third on it is a cache hit. Each operation is one C-level
call on an ``OrderedDict`` or ``set``, so concurrent threads at worst miss
the cache, never corrupt it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TokenCache(Generic[V]):
    def __init__(self, compute: Callable[[str], V], maxsize: int) -> None:
        self._compute = compute
        self._maxsize = maxsize
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._seen_once: set[int] = set()

    def __call__(self, token: str) -> V:
        entries = self._entries
        value = entries.get(token)
        if value is not None:
            try:  # noqa: SIM105  (a bare try is cheaper than contextlib.suppress on a hit)
                entries.move_to_end(token)
            except KeyError:  # evicted by another thread meanwhile
                pass
            return value
        value = self._compute(token)  # raises for a bad token: failures are never cached
        digest = hash(token)
        seen = self._seen_once
        if digest in seen:
            seen.discard(digest)
            entries[token] = value
            if len(entries) > self._maxsize:
                try:  # noqa: SIM105
                    entries.popitem(last=False)
                except KeyError:
                    pass
        else:
            if len(seen) >= self._maxsize:
                seen.clear()
            seen.add(digest)
        return value

    def __len__(self) -> int:
        return len(self._entries)
