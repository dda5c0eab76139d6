"""Session list at scale: GET /v1/sessions by user and by actor, p95 against table size.

    .venv/bin/python bench/session_list.py [--sessions 1000000] [--database-url URL]

Seeds sessions straight into a fresh database (1 in 50 impersonated, spread
over 10,000 users), then times the Backend API list filtered by user, by
actor, by user and status, and paging back with the keyset cursor
(``before_id``), once at a tenth of the size and once at full size, in one
run. DESIGN's target: p95 under 20 ms, independent of table size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from sqlalchemy import insert
from starlette.testclient import TestClient

from actas.server import Instance, create_app, load_settings
from actas.server.clients import create as create_client
from actas.server.db.schema import Session, User
from actas.server.ids import SESSION, USER, new_id

SECRET = "sk_bench_" + "s" * 40
USERS = 10_000


def seed(instance: Instance, start: int, count: int, user_ids: list[str], client_id: str
         ) -> None:
    now = instance.now_ms()
    rng = random.Random(start)
    with instance.transaction() as db:
        for batch in range(start, start + count, 10_000):
            rows = []
            for i in range(batch, min(batch + 10_000, start + count)):
                at = now - (start + count - i) * 10
                impersonated = i % 50 == 0
                rows.append({
                    "id": new_id(SESSION, at), "user_id": rng.choice(user_ids),
                    "client_id": client_id, "status": rng.choice(["active", "ended"]),
                    "actor": {"sub": f"op_{i % 20}"} if impersonated else None,
                    "actor_sub": f"op_{i % 20}" if impersonated else None,
                    "actor_token_id": None, "return_to_session_id": None,
                    "last_active_at": at, "expire_at": now + 86_400_000,
                    "abandon_at": now + 86_400_000, "ended_at": None, "created_at": at,
                    "updated_at": at})
            db.execute(insert(Session), rows)


def measure(client: TestClient, user_ids: list[str], runs: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(7)
    queries = {
        "by user": lambda: {"user_id": rng.choice(user_ids)},
        "by actor": lambda: {"actor_sub": f"op_{rng.randrange(20)}"},
        "by user, active": lambda: {"user_id": rng.choice(user_ids), "status": "active"},
        "impersonated, page 5": lambda: {"impersonated": "true", "limit": 10,
                                         "offset": 40},
    }
    results = {}
    for name, params in queries.items():
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get("/v1/sessions", params=params())
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
        samples.sort()
        results[name] = (statistics.median(samples), samples[int(len(samples) * 0.95) - 1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    settings = load_settings({}, data_dir=tempfile.mkdtemp(), database_url=args.database_url,
                             secret_key=SECRET, password_hashing="test-only-insecure")
    instance = Instance.start(settings)
    now = instance.now_ms()
    user_ids = [new_id(USER, now) for _ in range(USERS)]
    with instance.transaction() as db:
        db.execute(insert(User), [{
            "id": uid, "username": None, "first_name": None, "last_name": None,
            "password_hash": None, "primary_email_address_id": None, "external_id": None,
            "public_metadata": {}, "private_metadata": {}, "unsafe_metadata": {},
            "banned": False, "protected": False, "last_sign_in_at": None,
            "last_active_at": None, "created_at": now, "updated_at": now} for uid in user_ids])
        client_id = create_client(db, now)[0].id
    app = create_app(instance)
    tenth = args.sessions // 10
    table: dict[int, dict[str, tuple[float, float]]] = {}
    with TestClient(app, base_url="http://actas.test",
                    headers={"Authorization": f"Bearer {SECRET}"}) as client:
        for size, start in ((tenth, 0), (args.sessions, tenth)):
            began = time.perf_counter()
            seed(instance, start, size - start, user_ids, client_id)
            print(f"seeded to {size:,} sessions in {time.perf_counter() - began:.0f} s")
            table[size] = measure(client, user_ids, args.runs)
    print(f"\n{instance.engine.url.get_backend_name()}: median / p95 ms")
    print(f"{'':24s}" + "".join(f"{size:>20,}" for size in table))
    for name in next(iter(table.values())):
        print(f"{name:24s}" + "".join(f"{m[name][0]:>10.2f} /{m[name][1]:>7.2f}"
                                      for m in table.values()))


if __name__ == "__main__":
    main()
