"""Is the dashboard's user list fast at 100,000 users? Times against a trivial page, one run.

    .venv/bin/python bench/dashboard_users.py [--users 100000] [--database-url URL]

Seeds users straight into a fresh database (no password hashing: the list
never reads it), signs an operator in, then times the dashboard's users
page (first page, a later page, a search by email, a search by name) and,
as the baseline measured in the same run, the server's trivial /healthz.
Prints the median and p95 of each in ms and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert
from starlette.testclient import TestClient

from actas.server import Instance, create_app, load_settings, operators
from actas.server.db.schema import EmailAddress, User
from actas.server.ids import EMAIL_ADDRESS, USER, new_id


def seed(instance: Instance, count: int) -> None:
    start = instance.now_ms() - count * 1000
    with instance.transaction() as db:
        for batch in range(0, count, 5000):
            users, emails = [], []
            for i in range(batch, min(batch + 5000, count)):
                at = start + i * 1000
                user_id, email_id = new_id(USER, at), new_id(EMAIL_ADDRESS, at)
                users.append({"id": user_id, "username": None, "first_name": f"First{i}",
                              "last_name": f"Last{i}", "password_hash": None,
                              "primary_email_address_id": email_id, "external_id": None,
                              "public_metadata": {}, "private_metadata": {},
                              "unsafe_metadata": {}, "banned": False, "protected": False,
                              "last_sign_in_at": None, "last_active_at": None,
                              "created_at": at, "updated_at": at})
                emails.append({"id": email_id, "user_id": user_id,
                               "email_address": f"user{i}@example.com", "created_at": at,
                               "updated_at": at})
            db.execute(insert(User), users)
            db.execute(insert(EmailAddress), emails)
        operators.create(db, instance, email="bench@support.test", role="support",
                         password="bench password")


def timed(client: TestClient, path: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp())
    settings = load_settings({}, data_dir=str(data_dir), database_url=args.database_url,
                             password_hashing="test-only-insecure", cookie_secure=False,
                             secret_key="sk_bench_" + "b" * 40,
                             operator_second_factor="optional")  # a password is enough here
    instance = Instance.start(settings)
    started = time.perf_counter()
    seed(instance, args.users)
    print(f"seeded {args.users} users in {time.perf_counter() - started:.1f} s "
          f"({instance.engine.url.get_backend_name()})\n")
    with TestClient(create_app(instance), base_url="http://actas.test") as client:
        form = client.get("/dashboard/sign_in").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/dashboard/sign_in", data={"email": "bench@support.test",
                                                "password": "bench password",
                                                "csrf_token": token})
        baseline = statistics.median(timed(client, "/healthz", args.runs))
        pages = {
            "users, first page": "/dashboard/users",
            "users, page 2000": "/dashboard/users?page=2000",
            "search by email": "/dashboard/users?q=user77777%40example.com",
            "search by name": "/dashboard/users?q=Last4242",
        }
        print(f"{'':22s} {'median ms':>10s} {'p95 ms':>8s} {'x /healthz':>11s}")
        print(f"{'/healthz (baseline)':22s} {baseline:10.2f}")
        for name, path in pages.items():
            samples = sorted(timed(client, path, args.runs))
            median = statistics.median(samples)
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"{name:22s} {median:10.2f} {p95:8.2f} {median / baseline:11.1f}")


if __name__ == "__main__":
    main()
