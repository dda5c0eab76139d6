"""Webhook receivers on loopback: one that records (and may fail) every POST, and
one that misbehaves (hangs, or closes the connection) for the isolation tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    """An HTTP server in a thread that records every POST; fails the first ``fail_first``."""

    def __init__(self) -> None:
        self.fail_first = 0
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = 500 if receiver.fail_first > len(receiver._requests) else 200
                    receiver._requests.append(Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                        status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]

    def types(self) -> list[str]:
        return [r.payload()["type"] for r in self.delivered]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float,
                 explain: Callable[[], str] = str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.delivered):
            if time.monotonic() > deadline:
                raise AssertionError(f"not received within {timeout} s: {self.requests}\n"
                                     f"{explain()}")
            time.sleep(0.05)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class BadEndpoint:
    """A listener on loopback that reads each request and then hangs until ``release``
    (``mode="hang"``) or closes the connection without answering (``mode="close"``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests_seen = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/hooks"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(30)
            try:
                connection.recv(65536)
            except OSError:
                return
            with self._lock:
                self.requests_seen += 1
            if self.mode == "hang":
                self._released.wait(120)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._socket.close()


def wait_until(condition: Callable[[], bool], explain: Callable[[], str] = str,
               timeout: float = 120) -> None:
    """Poll ``condition`` until it holds; ``timeout`` only bounds a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {explain()}")
        time.sleep(0.02)
