"""Token refresh, two source trees side by side: which one costs less CPU per refresh?

    .venv/bin/python -m bench.refresh_ab --base /path/to/other/checkout/src \\
        [--connections 16] [--cycles 8] [--seconds 4] [--workers 2] [--sign-ins]

Starts ``actas serve`` on SQLite from each tree (``PYTHONPATH`` set to it), signs in 64
browsers on each, and then alternates short wrk runs between the two, in
turn order flipped every cycle, so that a neighbour's burst on a shared
machine lands on both alike. Prints each tree's median req/s, refreshes per
CPU-second its processes used, and p99. ``bench/refresh.py`` measures one
tree in absolute terms; this one says whether a change made refresh cheaper,
which back-to-back runs of that bench on a shared machine cannot (its
``/healthz`` moved 2,113-2,633 req/s within one hour on 2026-12-01).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

from bench.machine import describe
from bench.refresh import (
    BROWSERS,
    LUA,
    ORIGIN,
    serving,
    sign_in_browsers,
    signing_in_back_to_back,
    wrk,
)

HERE = Path(__file__).resolve().parent.parent / "src"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the other tree's src/ directory")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sign-ins", action="store_true",
                        help="one client signing in back to back during each run")
    args = parser.parse_args()
    print(describe())
    trees = {"base": args.base, "this tree": str(HERE)}
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, source in trees.items():
            os.environ["PYTHONPATH"] = source  # serving() starts the server with it
            url, pid = stack.enter_context(serving(None, args.workers))
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            sessions = scratch / "sessions.txt"
            sessions.write_text("".join(f"{sid} {cookie}\n"
                                        for sid, cookie in sign_in_browsers(url, BROWSERS)))
            script = scratch / "refresh.lua"
            script.write_text(LUA.replace("%ORIGIN%", ORIGIN))
            servers[name] = (url, pid, script, (str(sessions),))
            wrk(url, name="warm-up", seconds=2, connections=args.connections, script=script,
                args=(str(sessions),))
        for cycle in range(args.cycles):
            order = list(servers.items())
            for name, (url, pid, script, wrk_args) in order[::1 if cycle % 2 == 0 else -1]:
                with (signing_in_back_to_back(url) if args.sign_ins
                      else contextlib.nullcontext()):
                    run = wrk(url, name=name, seconds=args.seconds,
                              connections=args.connections, script=script, args=wrk_args,
                              server=pid)
                runs[name].append((run.rps, run.per_cpu_second or 0.0, run.p99_ms))
    during = ", password sign-ins running" if args.sign_ins else ""
    print(f"\nrefresh, {args.connections} connections{during}, --workers {args.workers}, "
          f"{args.cycles} alternating runs of {args.seconds:.0f} s each (medians)")
    print(f"{'':12} {'req/s':>8} {'per CPU-s':>10} {'p99 ms':>8}   per CPU-s, run by run")
    for name, rows in runs.items():
        rps, per_cpu, p99 = (statistics.median(row[i] for row in rows) for i in range(3))
        print(f"{name:12} {rps:8,.0f} {per_cpu:10,.0f} {p99:8.1f}   "
              f"{', '.join(f'{row[1]:,.0f}' for row in rows)}")


if __name__ == "__main__":
    main()
