"""Token refresh over real HTTP: POST /v1/client/sessions/{id}/tokens against GET /healthz.

    .venv/bin/python bench/refresh.py [--requests 2000]

Starts ``actas serve`` (SQLite, one uvicorn worker) as a child process,
signs a user in with httpx (keep-alive, one connection), then alternates
rounds of the trivial endpoint and of token refreshes, and prints the
median per request of each and their ratio. DESIGN's target: refresh
within 2x of the same server's trivial endpoint.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

SECRET = "sk_bench_" + "r" * 40
ORIGIN = "http://localhost:3000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--algorithm", default="RS256")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ACTAS_SECRET_KEY": SECRET, "ACTAS_ALLOWED_ORIGINS": ORIGIN,
           "ACTAS_COOKIE_SECURE": "false", "ACTAS_PASSWORD_HASHING": "test-only-insecure",
           "ACTAS_SIGNING_ALGORITHM": args.algorithm}
    server = subprocess.Popen(
        [sys.executable, "-m", "actas.server.cli", "serve", "--port", str(port),
         "--data-dir", tempfile.mkdtemp(), "--frontend-api-url", url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            client.post("/v1/users", headers={"Authorization": f"Bearer {SECRET}"},
                        json={"email_address": ["bench@example.com"],
                              "password": "bench password"})
            signed_in = client.post("/v1/client/sign_ins", headers={"Origin": ORIGIN},
                                    json={"identifier": "bench@example.com",
                                          "password": "bench password"}).json()
            session_id = signed_in["response"]["created_session_id"]
            path = f"/v1/client/sessions/{session_id}/tokens"
            headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
            trivial, refresh = [], []
            for _ in range(10):
                n = args.requests // 10
                start = time.perf_counter()
                for _ in range(n):
                    client.get("/healthz")
                trivial.append((time.perf_counter() - start) / n * 1000)
                start = time.perf_counter()
                for _ in range(n):
                    assert client.post(path, headers=headers, content=b"{}").status_code == 200
                refresh.append((time.perf_counter() - start) / n * 1000)
    finally:
        server.terminate()
        server.wait(10)
    t, r = statistics.median(trivial), statistics.median(refresh)
    print(f"{args.algorithm}, SQLite, one uvicorn worker, sequential keep-alive requests")
    print(f"GET /healthz            {t:6.2f} ms")
    print(f"POST …/tokens (refresh) {r:6.2f} ms   {r / t:.1f}x the trivial endpoint")


if __name__ == "__main__":
    main()
