"""Impersonation end to end over real HTTP: create an actor token, redeem it in a fresh
browser, mint the first session token; against the same server's /healthz.

    .venv/bin/python -m bench.impersonation [--rounds 200] [--database-url URL]

Starts ``actas serve`` (one process, SQLite unless ``--database-url``) on
loopback, creates one user, then times ``--rounds`` impersonations, each
three requests on keep-alive connections: ``POST /v1/actor_tokens`` (the
Backend API), ``POST /v1/client/sign_ins`` with the ticket (a new browser),
``POST /v1/client/sessions/{id}/tokens``. Prints p50 and p95 of the whole
and of each step, and the p50 of a ``/healthz`` round trip measured in the
same run. The issue's target: p50 under 15 ms on SQLite.

Each round's browser is a new ``httpx.Client`` (its own cookie jar and
connection), made before the timer starts; they share one TLS context. Made
anew for each client, as ``httpx.Client()`` does by default, loading the CA
store cost the load generator's next timed request 1.5-2 ms of its own CPU
(create p50 6.4 ms against 4.4 ms with a shared one), though the requests here
are plain HTTP on loopback and no browser reloads its CA store per sign-in.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import time

import httpx
from bench.machine import describe
from bench.refresh import ORIGIN, PASSWORD, SECRET, serving


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    print(describe())
    steps: dict[str, list[float]] = {"create": [], "redeem": [], "first token": [],
                                     "whole": []}
    health: list[float] = []
    tls = ssl.create_default_context()  # one for every browser (see the module's docstring)
    with serving(args.database_url, 1) as (url, _pid), \
            httpx.Client(base_url=url, timeout=60, trust_env=False,
                         headers={"Authorization": f"Bearer {SECRET}"}) as api:
        user = api.post("/v1/users", json={"email_address": ["ada@example.com"],
                                           "password": PASSWORD})
        user.raise_for_status()
        user_id = user.json()["id"]
        for _ in range(args.rounds):
            start = time.perf_counter()
            api.get("/healthz").raise_for_status()
            health.append(time.perf_counter() - start)
            with httpx.Client(base_url=url, timeout=60, trust_env=False, verify=tls,
                              headers={"Origin": ORIGIN}) as browser:
                t0 = time.perf_counter()
                token = api.post("/v1/actor_tokens", json={
                    "user_id": user_id, "actor": {"sub": "op_bench"}, "reason": "bench"})
                token.raise_for_status()
                t1 = time.perf_counter()
                signed_in = browser.post("/v1/client/sign_ins", json={
                    "strategy": "ticket", "ticket": token.json()["token"]})
                signed_in.raise_for_status()
                t2 = time.perf_counter()
                session_id = signed_in.json()["response"]["created_session_id"]
                browser.post(f"/v1/client/sessions/{session_id}/tokens",
                             json={}).raise_for_status()
                t3 = time.perf_counter()
            for name, seconds in (("create", t1 - t0), ("redeem", t2 - t1),
                                  ("first token", t3 - t2), ("whole", t3 - t0)):
                steps[name].append(seconds)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{database}, one process, {args.rounds} impersonations, sequential")
    base = statistics.median(health) * 1000
    for name, values in steps.items():
        p50, p95 = statistics.median(values) * 1000, _percentile(values, 0.95) * 1000
        print(f"{name:12} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   {p50 / base:5.1f}x /healthz")
    print(f"{'/healthz':12} p50 {base:6.2f} ms")


if __name__ == "__main__":
    main()
