"""The audit chain at a million events: the dashboard's status, the full CLI run, and a
token refresh while that run goes on.

    .venv/bin/python -m bench.audit_chain [--events 1000000] [--database-url URL]

Seeds a valid chain straight into a fresh database, then measures in one run:
the dashboard's audit page (status from the sealed checkpoint plus the newest
100 events), ``actas audit verify``'s full walk (``verify_all``), and the
latency of a token refresh while that walk runs, against the same refresh
idle. Targets: the page under 100 ms, the walk under 30 s, and refreshes not
held up (before: 9.7 s per page view at 157,000 events, a refresh waiting
9.5 s behind it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

from sqlalchemy import insert, update
from starlette.testclient import TestClient

from actas.server import Instance, audit_verification, create_app, load_settings, operators
from actas.server.audit import GENESIS, HASHED_FIELDS
from actas.server.db.schema import AuditChainHead, AuditEvent

SECRET = "sk_bench_" + "a" * 40
ORIGIN = "http://localhost:3000"


def seed(instance: Instance, count: int) -> None:
    now = instance.now_ms()
    prev, batch = GENESIS, []
    with instance.transaction() as db:
        for seq in range(1, count + 1):
            row = {"seq": seq, "id": f"evt_{seq:026d}", "type": "session.created",
                   "occurred_at": now - (count - seq), "actor_sub": f"op_{seq % 20}",
                   "user_id": f"user_{seq % 10_000}", "session_id": None,
                   "actor_token_id": None, "reason": "bench", "ip_address": "127.0.0.1",
                   "user_agent": "bench", "data": {"n": seq}}
            row["prev_hash"] = prev
            row["hash"] = prev = instance.audit._hash_of(
                prev, {name: row[name] for name in HASHED_FIELDS})
            batch.append(row)
            if len(batch) == 20_000:
                db.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            db.execute(insert(AuditEvent), batch)
        db.execute(update(AuditChainHead).values(last_seq=count, last_hash=prev))


def timed(call: object, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    settings = load_settings({}, data_dir=tempfile.mkdtemp(), database_url=args.database_url,
                             secret_key=SECRET, password_hashing="test-only-insecure",
                             frontend_api_url="http://actas.test", allowed_origins=ORIGIN,
                             cookie_secure=False,
                             operator_second_factor="optional")  # a password is enough here
    instance = Instance.start(settings)
    began = time.perf_counter()
    seed(instance, args.events)
    print(f"seeded {args.events:,} events in {time.perf_counter() - began:.0f} s "
          f"({instance.engine.url.get_backend_name()})")
    with instance.transaction() as db:
        operators.create(db, instance, email="bench@support.test", role="owner",
                         password="bench password")

    app = create_app(instance)
    with TestClient(app, base_url="http://actas.test") as dashboard, \
            TestClient(app, base_url="http://actas.test", headers={"Origin": ORIGIN}) as browser:
        api = {"Authorization": f"Bearer {SECRET}"}
        browser.post("/v1/users", headers=api, json={"email_address": ["ada@example.com"],
                                                     "password": "bench password"})
        session = browser.post("/v1/client/sign_ins", json={
            "identifier": "ada@example.com", "password": "bench password"}).json()
        session_id = session["response"]["created_session_id"]

        def refresh() -> None:
            response = browser.post(f"/v1/client/sessions/{session_id}/tokens", json={})
            assert response.status_code == 200, response.text

        idle = timed(refresh, 200)

        started = time.perf_counter()
        result = audit_verification.verify_all(instance)
        walk_s = time.perf_counter() - started
        assert result.ok, result
        print(f"actas audit verify (full walk): {result.events:,} events in {walk_s:.1f} s "
              f"({result.events / walk_s:,.0f} events/s)")

        for _ in range(100):  # newer than the checkpoint, as between two worker rounds
            refresh()
        form = dashboard.get("/dashboard/sign_in").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        dashboard.post("/dashboard/sign_in", data={"email": "bench@support.test",
                                                   "password": "bench password",
                                                   "csrf_token": token})
        page = timed(lambda: dashboard.get("/dashboard/audit"), 30)
        print(f"dashboard audit page: median {statistics.median(page):.1f} ms, "
              f"max {page[-1]:.1f} ms")

        during: list[float] = []
        walker = threading.Thread(target=audit_verification.verify_all, args=(instance,))
        walker.start()
        while walker.is_alive():
            during += timed(refresh, 1)
        walker.join()
        during.sort()
        print(f"token refresh idle:             median {statistics.median(idle):.1f} ms, "
              f"max {idle[-1]:.1f} ms")
        print(f"token refresh during the walk:  median {statistics.median(during):.1f} ms, "
              f"max {during[-1]:.1f} ms ({len(during)} refreshes)")


if __name__ == "__main__":
    main()
