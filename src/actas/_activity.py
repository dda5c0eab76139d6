"""Reporting what impersonators did in the application, off the request path.

With reporting on (it is off by default, for privacy), each integration hands
every request of an impersonated session to an ``ActivityReporter`` once it is
answered: its method, its route *template* (``/orders/{order_id}``, never the
raw path, whose ids and query would say more than "viewed an order"), its
status, when, and whether the SDK refused it as a read-only write. Never a
body, a header or a query value. actas stores them with the impersonation, and
shows them to operators and to the impersonated user.

The request never waits for actas: ``record`` puts the entry on a bounded
queue (a few microseconds) and a background thread sends batches to
``POST /v1/impersonation_activity`` with the Backend API secret key. When the
queue is full or actas cannot be reached, entries are dropped and counted
(``dropped``), with a warning at most once a minute: activity is a record
for people, not a control, and must not hold up the application.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from actas._auth import Auth

log = logging.getLogger("actas.activity")

_STOP = object()
WARN_EVERY_S = 60.0


class ActivityReporter:
    """Sends the requests of impersonated sessions to actas in batches, from a thread.

    ``api_url`` is the actas server (``ACTAS_FRONTEND_API_URL``) and ``secret_key``
    a Backend API secret key. ``max_queue`` bounds what waits to be sent;
    ``batch_size`` entries at most go in one request, sent at least every
    ``flush_interval`` seconds while there is something to send.
    """

    def __init__(self, *, api_url: str, secret_key: str, max_queue: int = 10_000,
                 batch_size: int = 200, flush_interval: float = 2.0, timeout: float = 5.0,
                 http_client: httpx.Client | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self._url = api_url.rstrip("/") + "/v1/impersonation_activity"
        self._headers = {"Authorization": f"Bearer {secret_key}"}
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(timeout=timeout)
        self._now = now
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_warning = -WARN_EVERY_S
        self.sent = 0
        self.dropped = 0

    def record(self, auth: Auth, *, method: str, route: str | None, status: int,
               refused: bool = False) -> None:
        """Queue one answered request of ``auth``'s session; nothing for a session that
        is not an impersonation. Never blocks and never raises."""
        if auth.actor is None or auth.session_id is None:
            return
        entry = {"session_id": auth.session_id, "method": method,
                 "route": route or "(no route)", "status": status,
                 "occurred_at": int(self._now() * 1000), "refused": refused}
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._drop(1, "the queue is full")
            return
        if self._thread is None:
            self._start()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far was sent (or dropped); for tests and exit."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return
        if self._thread is None:
            self._start()
        done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop the thread (and close its HTTP client)."""
        self.flush(timeout)
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
        if self._owns_client and (self._thread is None or not self._thread.is_alive()):
            self._client.close()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="actas-activity",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch: list[dict[str, Any]] = []
            waiters: list[threading.Event] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._flush_interval
            stop = False
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                    break  # a flush: send now
                else:
                    batch.append(item)
                if stop or len(batch) >= self._batch_size:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if batch:
                self._send(batch)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            response = self._client.post(self._url, json={"entries": batch},
                                         headers=self._headers)
        except httpx.HTTPError as error:
            self._drop(len(batch), f"actas is unreachable ({type(error).__name__})")
            return
        if response.status_code >= 400:
            self._drop(len(batch), f"actas answered {response.status_code}")
            return
        self.sent += len(batch)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("actas: dropped %d impersonation activity entries (%s); %d so far",
                        count, why, self.dropped)
