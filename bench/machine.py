"""What every bench prints first, and the small helpers they share."""

from __future__ import annotations

import os
import platform
import time

import httpx
from tests.support.processes import free_port

__all__ = ["cpu_seconds", "describe", "free_port", "wait_for"]


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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its descendants that
    are still running (Linux ``/proc``): what a server spent, without its load generator."""
    ticks, children = 0, {pid}
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The command name, in parentheses, may hold spaces: split after it.
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    grew = True
    while grew:
        found = {child for child, (parent, _) in stats.items() if parent in children}
        grew = not found <= children
        children |= found
    ticks = sum(stats[p][1] for p in children if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")
