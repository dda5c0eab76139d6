"""How ``actas serve`` runs the app: granian, N worker processes, one event loop each.

Granian rather than uvicorn, measured on the request that dominates an
install's traffic, the token refresh (``bench/README.md``, 2 workers, wrk at
64 connections, same machine, alternating runs): the same throughput
(2,040-2,607 against 2,144-2,307 refreshes a second) but a p99 of 52-60 ms
against uvicorn's 112-176 ms. Granian reads, parses and writes HTTP in Rust
threads, outside the GIL, so the Python event loop runs only the app; under
uvicorn the loop also parses and writes, between requests, and the
connections it serves last wait longest.

Every worker builds its own app from the ``ACTAS_*`` environment the parent
resolved (``app.from_environment``), started fresh (``spawn``: a forked
child would inherit the parent's threads' locks and pools without their
threads), and ends itself when the ``actas serve`` process that started it is
gone (``follow_the_server``).
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

from granian import log as granian_log
from granian.constants import HTTPModes, Interfaces, Loops
from granian.server import MPServer

from actas._errors import ConfigurationInvalid
from actas.server.http import access_log
from actas.server.settings import Settings

APP = "actas.server.app:from_environment"
# Set by ``actas serve`` for its workers: its own process id (``follow_the_server``).
SERVER_PID = "ACTAS_SERVE_PID"
# How often a worker looks for the ``actas serve`` process that started it.
FOLLOW_INTERVAL = 1.0
# How long a worker told to stop (SIGTERM) may finish its requests before it is ended.
FOLLOW_GRACE = 30.0

log = logging.getLogger("actas.serving")


def logging_config() -> dict[str, Any]:
    """granian's own logging, and the app's access log (``http.access_log``, which the
    app writes itself: granian's is off) on stdout beside it, one line per request."""
    config: dict[str, Any] = copy.deepcopy(granian_log.LOGGING_CONFIG)
    config["loggers"] = {**config["loggers"], access_log.LOGGER: {
        "handlers": ["access"], "level": "INFO", "propagate": False}}
    return config


def listen_address(host: str, port: int) -> str:
    """The IP address to bind for ``host``: granian takes only an address, so a
    name (``localhost``, the machine's own) is resolved here, to one address."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        found = []
    if not found:
        raise ConfigurationInvalid(
            f"Cannot listen on {host!r}: it is not an IP address, and it does not resolve "
            "to one. Give ACTAS_HOST / --host as an address (127.0.0.1, ::1, 0.0.0.0) or a "
            "name this machine resolves.")
    # Where a name has both, IPv4 first: a client given "localhost" tries both, but
    # much software (and every Docker port mapping) reaches only 127.0.0.1.
    found.sort(key=lambda each: each[0] != socket.AF_INET)
    address = str(found[0][4][0])
    if ipaddress.ip_address(address).is_unspecified:
        # "0", or a DNS blocker's answer: every interface, which only an address
        # written out (0.0.0.0, ::) may ask for.
        raise ConfigurationInvalid(
            f"{host!r} resolves to {address}, every interface of this machine: write "
            "ACTAS_HOST / --host as 0.0.0.0 or :: if that is what you mean.")
    return address


def server(settings: Settings, *, workers: int) -> MPServer:
    """The server for ``settings``' address; ConfigurationInvalid if it has none."""
    address = listen_address(settings.host, settings.port)
    multiprocessing.set_start_method("spawn", force=True)
    return MPServer(  # processes: this Python has a GIL
        APP,
        factory=True,
        address=address,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,  # the app writes it (http.access_log)
        log_dictconfig=logging_config(),
        # A worker that dies is started again (the app holds no state a restart loses).
        respawn_failed_workers=True,
    )


def follow_the_server(*, interval: float = FOLLOW_INTERVAL, grace: float = FOLLOW_GRACE
                      ) -> threading.Thread | None:
    """In a worker process: end it once the ``actas serve`` process that started it is
    gone; ``None`` (nothing to follow) in a process ``actas serve`` did not start.

    A server killed with SIGKILL (the OOM killer, ``kill -9``) runs no code to
    stop its workers, and granian's went on as orphans, holding the listening
    socket: the supervisor's restart then failed with "address already in use",
    while the orphans served on with no parent to restart them. A thread of
    each worker checks its parent every ``interval`` seconds; once it is no
    longer the server (the worker was handed to init), it sends the worker
    SIGTERM, which granian answers by finishing its requests and exiting, and
    ends the process outright if it is still there ``grace`` seconds later.
    """
    server_pid = os.environ.get(SERVER_PID, "")
    if not server_pid.isdigit():
        return None
    parent = int(server_pid)

    def follow() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the actas serve process (pid %d) is gone: worker %d stops", parent,
                    os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=follow, name="actas-follow-server", daemon=True)
    thread.start()
    return thread
