"""What every bench prints first, and the small helpers they share."""

from __future__ import annotations

import os
import platform
import time

import httpx
from tests.support.processes import free_port

__all__ = ["describe", "free_port", "wait_for"]


def describe() -> str:
    """The machine a figure was measured on: CPU model, cores, Python."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"machine: {model}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def wait_for(url: str, *, timeout: float) -> None:
    """Poll ``url`` until it answers 200; ``timeout`` only bounds a hang."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)
