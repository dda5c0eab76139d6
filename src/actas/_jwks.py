"""Where a verifier's keys come from: a JWKS URL (fetched, cached), a document, or a PEM.

Fetched once and kept. A token with an unknown ``kid`` (after a key
rotation) triggers at most one refetch per ``refetch_interval``, so a flood
of tokens with invented kids cannot turn into a flood of requests to actas.
The ``kid`` is only ever a dictionary key here: never a path, never SQL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from actas._errors import TokenKeyUnknown
from actas._jwk import VerifyingKey, from_jwks, from_pem

log = logging.getLogger("actas.jwks")


class FetchWouldBlock(Exception):
    """Keys must be fetched, but this thread runs an event loop: fetch from a worker thread.

    Raised instead of blocking the loop (which, when actas itself is served by
    the same loop, would never be answered). Async integrations catch it and
    retry the whole verification in a thread.
    """


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

MAX_DOCUMENT_BYTES = 256 * 1024


class KeySource:
    def __init__(
        self,
        *,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        pem: str | bytes | None = None,
        refetch_interval: float = 60.0,
        max_age: float = 3600.0,
        http_client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if sum(x is not None for x in (jwks_url, jwks, pem)) != 1:
            raise ValueError("give exactly one of jwks_url, jwks or pem")
        self._url = jwks_url
        self._pem_key = from_pem(pem) if pem is not None else None
        self._keys: dict[str, VerifyingKey] = from_jwks(jwks) if jwks is not None else {}
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._http = http_client
        self._monotonic = monotonic
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the URL was fetched (for tests and metrics)

    def get(self, kid: str | None) -> VerifyingKey:
        if self._pem_key is not None:
            return self._pem_key
        if kid is not None:
            key = self._keys.get(kid)
            if key is not None and (self._url is None or not self._stale()):
                return key
        if self._url is not None and self._may_fetch(kid):
            if _in_event_loop():
                raise FetchWouldBlock(self._url)
            self._refresh()
            if kid is not None and kid in self._keys:
                return self._keys[kid]
        raise TokenKeyUnknown(
            "The session token was signed by a key that is not in the JWKS."
            if kid is not None else "The session token has no kid.")

    def _stale(self) -> bool:
        fetched = self._fetched_at
        return (self._url is not None and fetched is not None
                and self._monotonic() - fetched > self._max_age)

    def _may_fetch(self, kid: str | None) -> bool:
        fetched = self._fetched_at
        if fetched is None:
            return True
        age = self._monotonic() - fetched
        if age > self._max_age:
            return True
        return kid is not None and kid not in self._keys and age >= self._refetch_interval

    def _refresh(self) -> None:
        with self._lock:
            # Stamped before fetching: a failing JWKS endpoint is not hammered either.
            self._fetched_at = self._monotonic()
            self.fetches += 1
            try:
                self._keys = from_jwks(self._download())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("could not fetch JWKS from %s: %s", self._url, exc)

    def _download(self) -> Mapping[str, Any]:
        assert self._url is not None
        client = self._http or httpx.Client(timeout=5.0)
        try:
            response = client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_DOCUMENT_BYTES:
                raise ValueError("JWKS document too large")
            document = response.json()
        finally:
            if self._http is None:
                client.close()
        if not isinstance(document, Mapping):
            raise ValueError("JWKS document is not an object")
        return document
