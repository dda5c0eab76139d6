"""Webhook isolation: how long a healthy endpoint waits when another one hangs.

    .venv/bin/python -m bench.webhook_isolation [--events 8]

Two runs in one process, on SQLite, through the serving process's webhook
``Dispatcher``: first with only a healthy receiver, then with an endpoint
that accepts each request and never answers registered first. Prints the
seconds until the healthy receiver has every event, and their ratio. Before
per-endpoint lanes, 8 events took 80.5 s with the hanging endpoint (0.3 s
without); the delivery timeout is 10 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import httpx
from starlette.testclient import TestClient
from tests.support.receivers import BadEndpoint, Receiver

from actas.server import Instance, create_app, load_settings, webhooks

SECRET = "sk_bench_" + "w" * 40


def run(events: int, *, with_hanging: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({}, data_dir=tmp, secret_key=SECRET,
                                 frontend_api_url="https://actas.test",
                                 password_hashing="test-only-insecure",
                                 webhooks_allow_private_networks=True)
        instance = Instance.start(settings)
        healthy, hanging = Receiver().start(), BadEndpoint("hang")
        headers = {"Authorization": f"Bearer {SECRET}"}
        try:
            with TestClient(create_app(instance), base_url="https://actas.test",
                            headers=headers) as api, httpx.Client(trust_env=False) as http:
                urls = ([hanging.url] if with_hanging else []) + [healthy.url]
                for url in urls:
                    api.post("/v1/webhook_endpoints",
                             json={"url": url, "event_types": ["actor_token.created"]})
                user = api.post("/v1/users", json={"email_address": ["ada@example.com"]})
                started = time.perf_counter()
                for _ in range(events):
                    api.post("/v1/actor_tokens", json={"user_id": user.json()["id"],
                                                       "actor": {"sub": "op"}, "reason": "r"})
                dispatcher = webhooks.Dispatcher(instance, http)
                while len(healthy.delivered) < events:
                    dispatcher.dispatch()  # what the worker does every round
                    time.sleep(0.01)
                elapsed = time.perf_counter() - started
                hanging.release()
                dispatcher.close()
                return elapsed
        finally:
            hanging.stop()
            healthy.stop()
            instance.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=8)
    args = parser.parse_args()
    alone = run(args.events, with_hanging=False)
    beside = run(args.events, with_hanging=True)
    print(f"{args.events} events to a healthy endpoint: {alone:.3f} s alone, "
          f"{beside:.3f} s beside a hanging endpoint (ratio {beside / alone:.2f}; "
          f"timeout {webhooks.TIMEOUT_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
