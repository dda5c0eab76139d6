"""An actor token is redeemable exactly once: one after another, and all at once.

The first tests run in-process (on SQLite and PostgreSQL) and pin down the
refusal codes. The others fire 50 simultaneous redemptions over real HTTP,
each from its own fresh client (how a leaked ticket would be replayed), half
through ``POST /v1/client/sign_ins`` and half through ``GET /v1/tickets/accept``:
at one ``actas serve`` on SQLite, then spread over two ``actas serve``
processes that share one PostgreSQL database. Exactly one may win; every
other one must be told ``ticket_already_used`` (never a 500, 409 or 503), and
the database, the token and the audit log must all agree on the one winner.
"""

from __future__ import annotations

import re
import secrets
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from starlette.testclient import TestClient

from actas.server import Instance, create_app
from actas.server.clock import FrozenClock
from tests.conftest import APP_ORIGIN, BACKENDS, SECRET_KEY
from tests.support.databases import own_database
from tests.support.flows import PASSWORD
from tests.support.processes import ActasServer, actas_env

Route = Literal["sign_ins", "accept"]
HttpClient = httpx.Client | TestClient  # the same calls, over the network or in-process
ROUTES: tuple[Route, ...] = ("sign_ins", "accept")
ACTOR = {"sub": "op_alice"}
REASON = "ticket #1"
RACERS = 50
PG_ROUNDS = 5
INSTANCE_SECRET = "race-instance-secret-" + "r" * 32
HERE = "in-process"  # the server column of an Outcome from a TestClient
# One TLS context for every racer: building one per client (and loading the CA
# bundle 50 times) would cost more than the race itself. No request uses TLS.
_TLS = ssl.create_default_context()
_HTML_CODE = re.compile(r"<code>([a-z_]+)</code>")


# -- steps ----------------------------------------------------------------------------------


def create_user(api: HttpClient) -> str:
    email = f"race-{uuid.uuid4().hex[:10]}@example.com"
    response = api.post("/v1/users", json={"email_address": [email], "password": PASSWORD})
    assert response.status_code == 200, response.text
    user_id: str = response.json()["id"]
    return user_id


def create_actor_token(api: HttpClient, user_id: str, **fields: Any) -> dict[str, Any]:
    body = {"user_id": user_id, "actor": ACTOR, "reason": REASON, **fields}
    response = api.post("/v1/actor_tokens", json=body)
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    assert token["status"] == "pending" and token["token"].startswith("tkt_")
    return token


def redeem(client: HttpClient, route: Route, ticket: str) -> Any:  # an httpx-style response
    if route == "sign_ins":
        return client.post("/v1/client/sign_ins", json={"strategy": "ticket", "ticket": ticket},
                           headers={"Origin": APP_ORIGIN})
    return client.get("/v1/tickets/accept", params={"ticket": ticket}, follow_redirects=False)


@dataclass(frozen=True)
class Outcome:
    """One redemption attempt, as the client saw it."""

    server: str
    route: Route
    status: int
    code: str | None  # the refusal's error code (JSON envelope or HTML page)
    session_id: str | None  # the new session, when sign_ins succeeded
    detail: str  # for assertion messages

    @classmethod
    def of(cls, server: str, route: Route, response: Any) -> Outcome:
        code = session_id = None
        if response.status_code >= 400:
            if response.headers.get("content-type", "").startswith("text/html"):
                found = _HTML_CODE.search(response.text)
                code = found.group(1) if found else None
            else:
                try:
                    code = response.json()["errors"][0]["code"]
                except (ValueError, KeyError, IndexError, TypeError):
                    code = None
        elif route == "sign_ins" and response.status_code == 200:
            session_id = response.json()["response"]["created_session_id"]
        shown = code or response.headers.get("location") or response.text[:300]
        detail = f"{server} {route} -> {response.status_code} {shown}"
        return cls(server, route, response.status_code, code, session_id, detail)

    @property
    def succeeded(self) -> bool:
        return (self.route, self.status) in {("sign_ins", 200), ("accept", 303)}


def redeem_all_at_once(urls: list[str], ticket: str, racers: int = RACERS) -> list[Outcome]:
    """``racers`` fresh clients, spread over ``urls`` and both routes, released together."""
    barrier = threading.Barrier(racers, timeout=120)

    def race(i: int) -> Outcome:
        route = ROUTES[i % len(ROUTES)]
        url = urls[i // len(ROUTES) % len(urls)]
        with httpx.Client(base_url=url, timeout=60, trust_env=False, verify=_TLS) as client:
            try:
                # Connect first, so that the barrier releases requests, not TCP handshakes.
                assert client.get("/healthz").status_code == 200
            except BaseException:
                barrier.abort()  # the others fail at once instead of waiting out the timeout
                raise
            barrier.wait()
            return Outcome.of(url, route, redeem(client, route, ticket))

    with ThreadPoolExecutor(max_workers=racers) as pool:
        return list(pool.map(race, range(racers)))


def assert_exactly_one_winner(api: httpx.Client, outcomes: list[Outcome], *, user_id: str,
                              token_id: str, servers: list[ActasServer]) -> None:
    """One success and N-1 ``ticket_already_used``; one session; token and audit agree."""
    logs = "\n".join(f"--- stderr of {s.url} (tail) ---\n{s.stderr()[-3000:]}"
                     for s in servers)
    tally = Counter("won" if o.succeeded else f"{o.status} {o.code}" for o in outcomes)
    everything = "\n".join(o.detail for o in outcomes)
    assert tally == {"won": 1, "400 ticket_already_used": len(outcomes) - 1}, \
        f"{dict(tally)}\n{everything}\n{logs}"
    [winner] = [o for o in outcomes if o.succeeded]

    sessions = api.get("/v1/sessions", params={"user_id": user_id, "limit": 500})
    assert sessions.status_code == 200, sessions.text
    assert len(sessions.json()) == 1, f"{sessions.text}\n{logs}"
    [session] = sessions.json()
    assert session["actor"]["sub"] == ACTOR["sub"] and session["status"] == "active", session
    if winner.session_id is not None:
        assert winner.session_id == session["id"]

    token = api.get(f"/v1/actor_tokens/{token_id}")
    assert token.status_code == 200, token.text
    assert token.json()["status"] == "accepted"
    assert token.json()["session_id"] == session["id"]

    accepted = audit_events(api, "actor_token.accepted", user_id)
    assert [(e["actor_token_id"], e["session_id"]) for e in accepted] == \
        [(token_id, session["id"])]
    # Every loser came from 127.0.0.1 with the same code for the same token: the first
    # refusal is recorded in full, the others only counted for one summary event
    # when the window closes (tests/server/impersonation/test_redemption_limits.py).
    # The windows are fixed 15-minute ones on the servers' real clocks: a race that
    # straddles a boundary records a first refusal in each.
    refused = audit_events(api, "actor_token.redemption_refused", user_id)
    assert 1 <= len(refused) <= 2, f"{refused}\n{logs}"
    assert {(e["actor_token_id"], e["data"]["code"]) for e in refused} == \
        {(token_id, "ticket_already_used")}, f"{refused}\n{logs}"
    chain = api.get("/v1/audit_events/verify")
    assert chain.status_code == 200 and chain.json()["ok"], chain.text


def audit_events(api: HttpClient, type: str, user_id: str | None = None
                 ) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"type": type, "limit": 500}
    if user_id is not None:
        params["user_id"] = user_id
    response = api.get("/v1/audit_events", params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


# -- one after another (in-process, SQLite and PostgreSQL) ---------------------------------


@pytest.fixture
def other_browser(instance: Instance) -> Iterator[TestClient]:
    """A second browser on APP_ORIGIN with its own cookie jar (someone else's machine)."""
    with TestClient(create_app(instance), base_url="https://actas.test",
                    headers={"Origin": APP_ORIGIN}) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES)
def test_a_redeemed_ticket_is_refused_as_already_used(
        route: Route, backend: TestClient, browser: TestClient,
        other_browser: TestClient) -> None:
    user_id = create_user(backend)
    token = create_actor_token(backend, user_id)

    first = Outcome.of(HERE, route, redeem(browser, route, token["token"]))
    second = Outcome.of(HERE, route, redeem(other_browser, route, token["token"]))
    again = Outcome.of(HERE, route, redeem(browser, route, token["token"]))

    assert first.succeeded, first.detail
    assert (second.status, second.code) == (400, "ticket_already_used"), second.detail
    assert (again.status, again.code) == (400, "ticket_already_used"), again.detail
    assert len(audit_events(backend, "actor_token.accepted", user_id)) == 1


@pytest.mark.parametrize("route", ROUTES)
def test_each_unusable_ticket_is_refused_with_its_own_code(
        route: Route, backend: TestClient, browser: TestClient, other_browser: TestClient,
        clock: FrozenClock) -> None:
    user_id = create_user(backend)
    used = create_actor_token(backend, user_id)
    assert Outcome.of(HERE, "sign_ins", redeem(browser, "sign_ins", used["token"])).succeeded
    revoked = create_actor_token(backend, user_id)
    assert backend.post(f"/v1/actor_tokens/{revoked['id']}/revoke").status_code == 200
    expired = create_actor_token(backend, user_id, expires_in_seconds=1)
    clock.advance(seconds=1)
    tickets = {
        "used": used["token"],
        "unknown": "tkt_" + secrets.token_urlsafe(32),
        "revoked": revoked["token"],
        "expired": expired["token"],
    }

    outcomes = {name: Outcome.of(HERE, route, redeem(other_browser, route, ticket))
                for name, ticket in tickets.items()}

    assert {name: (o.status, o.code) for name, o in outcomes.items()} == {
        "used": (400, "ticket_already_used"),
        "unknown": (400, "ticket_invalid"),
        "revoked": (400, "ticket_revoked"),
        "expired": (400, "ticket_expired"),
    }, [o.detail for o in outcomes.values()]
    refused = audit_events(backend, "actor_token.redemption_refused", user_id)
    assert sorted((e["actor_token_id"], e["data"]["code"]) for e in refused) == sorted([
        (used["id"], "ticket_already_used"),
        (revoked["id"], "ticket_revoked"),
        (expired["id"], "ticket_expired"),
    ])
    anonymous = [e for e in audit_events(backend, "actor_token.redemption_refused")
                 if e["user_id"] is None]  # an unknown ticket names no user or token
    assert [(e["actor_token_id"], e["data"]["code"]) for e in anonymous] == \
        [(None, "ticket_invalid")]


def test_a_ticket_works_until_the_last_millisecond_of_its_lifetime(
        backend: TestClient, browser: TestClient, other_browser: TestClient,
        clock: FrozenClock) -> None:
    user_id = create_user(backend)
    early = create_actor_token(backend, user_id, expires_in_seconds=1)
    late = create_actor_token(backend, user_id, expires_in_seconds=1)

    clock.advance(ms=999)
    in_time = Outcome.of(HERE, "sign_ins", redeem(browser, "sign_ins", early["token"]))
    clock.advance(ms=1)
    too_late = Outcome.of(HERE, "sign_ins", redeem(other_browser, "sign_ins", late["token"]))

    assert in_time.succeeded, in_time.detail
    assert (too_late.status, too_late.code) == (400, "ticket_expired"), too_late.detail


# -- all at once, over HTTP -----------------------------------------------------------------


def serve(workdir: Path, database_url: str) -> ActasServer:
    """``actas serve`` configured like one replica of a deployment (shared secrets)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = actas_env(ACTAS_SECRET_KEY=SECRET_KEY, ACTAS_INSTANCE_SECRET=INSTANCE_SECRET,
                    ACTAS_ALLOWED_ORIGINS=APP_ORIGIN, ACTAS_DATABASE_URL=database_url,
                    # Every racer comes from 127.0.0.1 and replays one ticket: limits
                    # high enough that all of them race (this test is about exactly once).
                    ACTAS_TICKET_FAILURES_PER_ADDRESS="100000",
                    ACTAS_TICKET_FAILURES_PER_TICKET="100000")
    return ActasServer(["--data-dir", "data"], cwd=workdir, env=env)


def backend_api(server: ActasServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {SECRET_KEY}"},
                        timeout=30, trust_env=False)


def test_fifty_simultaneous_redemptions_on_one_sqlite_server_make_one_session(
        tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'actas.db'}"
    with serve(tmp_path / "server", database_url) as server, backend_api(server) as api:
        user_id = create_user(api)
        token = create_actor_token(api, user_id)

        outcomes = redeem_all_at_once([server.url], token["token"])

        assert_exactly_one_winner(api, outcomes, user_id=user_id, token_id=token["id"],
                                  servers=[server])


@pytest.fixture(scope="module")
def dedicated_postgres_database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test server: the shared one is emptied between tests."""
    with own_database(postgres_url, "actas_race") as url:
        yield url


@pytest.fixture(scope="module")
def replicas(dedicated_postgres_database: str, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[list[ActasServer]]:
    """Two ``actas serve`` processes on one PostgreSQL database.

    Started one after the other: this test is about redeeming, not about two
    replicas migrating an empty database at the same moment.
    """
    workdir = tmp_path_factory.mktemp("replicas")
    with serve(workdir / "a", dedicated_postgres_database) as first, \
            serve(workdir / "b", dedicated_postgres_database) as second:
        yield [first, second]


@pytest.mark.postgresql
@pytest.mark.skipif("postgresql" not in BACKENDS, reason="ACTAS_TEST_BACKENDS excludes it")
@pytest.mark.parametrize("round_", range(1, PG_ROUNDS + 1))
def test_fifty_simultaneous_redemptions_on_two_postgresql_replicas_make_one_session(
        round_: int, replicas: list[ActasServer]) -> None:
    with backend_api(replicas[round_ % 2]) as api:
        user_id = create_user(api)
        token = create_actor_token(api, user_id)

        outcomes = redeem_all_at_once([s.url for s in replicas], token["token"])

        assert Counter(o.route for o in outcomes) == {"sign_ins": 25, "accept": 25}
        assert Counter(o.server for o in outcomes) == {replicas[0].url: 26, replicas[1].url: 24}
        assert_exactly_one_winner(api, outcomes, user_id=user_id, token_id=token["id"],
                                  servers=replicas)
