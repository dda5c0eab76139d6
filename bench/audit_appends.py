"""Audit appends per second from one and from two processes on PostgreSQL, against the
same writes without the chain's shared head row.

    .venv/bin/python -m bench.audit_appends [--seconds 10] [--threads 8] [--database-url URL]

Without ``--database-url`` a throwaway PostgreSQL is started (as the tests do).
Each process runs ``--threads`` threads that append events (``record_alone``:
one transaction each, which stages the event; the chaining round after the
commit is shared by the threads waiting at that moment, see
``actas.server.audit_chainer``) for ``--seconds``; the baseline threads write
one counter row of their own per transaction instead (the same commit, no
shared row). The chain is verified afterwards. The ratio says what the chain
costs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time

from actas.server import Instance, load_settings, rate_limits
from actas.server.audit import Record

SECRET = "sk_bench_" + "p" * 40
INSTANCE_SECRET = "bench-instance-secret-" + "b" * 32


def _instance(url: str) -> Instance:
    return Instance.start(load_settings({}, database_url=url, data_dir=tempfile.mkdtemp(),
                                        secret_key=SECRET, instance_secret=INSTANCE_SECRET,
                                        password_hashing="test-only-insecure"))


def _work(url: str, mode: str, threads: int, seconds: float, name: str,
          out: multiprocessing.Queue[int]) -> None:
    instance = _instance(url)
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        while time.monotonic() < stop:
            if mode == "audit":
                instance.record_alone(Record(type="bench.append", actor_sub=f"{name}-{n}"))
            else:
                with instance.transaction() as db:
                    rate_limits.count(db, scope="bench", key=f"{name}-{n}",
                                      now_ms=instance.now_ms())
            counts[n] += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    instance.engine.dispose()
    out.put(sum(counts))


def measure(url: str, mode: str, processes: int, threads: int, seconds: float) -> float:
    out: multiprocessing.Queue[int] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_work, args=(url, mode, threads, seconds, f"p{i}",
                                                        out)) for i in range(processes)]
    for proc in procs:
        proc.start()
    total = sum(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    server = None
    url = args.database_url
    if url is None:
        from tests.support.postgres import ThrowawayPostgres

        server = ThrowawayPostgres().start()
        url = server.url
    try:
        _instance(url)  # migrate once, before the processes race
        print(f"{args.threads} threads per process, {args.seconds:.0f} s each")
        for processes in (1, 2):
            base = measure(url, "baseline", processes, args.threads, args.seconds)
            chain = measure(url, "audit", processes, args.threads, args.seconds)
            print(f"{processes} process(es): {chain:8,.0f} appends/s   "
                  f"{base:8,.0f} unshared writes/s   ratio {chain / base:.2f}")
        checker = _instance(url)
        with checker.snapshot() as db:
            result = checker.audit.verify(db)
        print(f"chain after the run: {'OK' if result.ok else 'BROKEN'}, {result.events:,} events")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
