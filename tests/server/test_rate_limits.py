"""Rate limits: exact under concurrency on both databases, counted per account.

The parallel tests release many requests (or transactions) at once from
threads, like ``test_sign_in.py``'s parallel-guess test, and count outcomes:
exactly the budget gets through, whatever the interleaving.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from actas._errors import TooManyRequests
from actas.server import Instance, create_app, rate_limits
from actas.server.audit import RequestOrigin
from actas.server.clock import FrozenClock
from tests.conftest import APP_ORIGIN
from tests.support.flows import PASSWORD, create_user, error_code, sign_in

ORIGIN = RequestOrigin(ip_address="198.51.100.7")


def _all_at_once(count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count, timeout=120)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_spends_take_exactly_the_budget(instance: Instance) -> None:
    budget = rate_limits.Budget("test:parallel", limit=25)

    def spend(_: int) -> str:
        try:
            with instance.transaction() as db:
                rate_limits.spend(db, [(budget, "k")], now_ms=instance.now_ms(), what="tries")
        except TooManyRequests:
            return "refused"
        return "spent"

    assert Counter(_all_at_once(60, spend)) == {"spent": 25, "refused": 35}


def test_parallel_failed_sign_ins_at_many_identifiers_stop_at_the_address_limit(
        instance: Instance) -> None:
    """The finding: 129 of 150 parallel failures from one address got through a limit of 100."""
    app = create_app(instance)  # one app, as in production; warmed up before the race
    with TestClient(app, base_url="https://actas.test", headers={"Origin": APP_ORIGIN}) as warm:
        assert warm.get("/v1/client").status_code in {200, 401}

    def guess(i: int) -> int:
        with TestClient(app, base_url="https://actas.test",
                        headers={"Origin": APP_ORIGIN}) as client:
            return client.post("/v1/client/sign_ins", json={
                "identifier": f"nobody{i}@example.com", "password": "guess!!!"}).status_code

    statuses = Counter(_all_at_once(150, guess))

    assert statuses == {422: rate_limits.USER_SIGN_IN.per_address, 429: 50}


def test_every_identifier_of_an_account_shares_its_budget(backend: TestClient,
                                                          browser: TestClient) -> None:
    create_user(backend, email_address=["ada@example.com", "lovelace@example.com"],
                username="ada")
    identifiers = ["ada@example.com", "ada", "lovelace@example.com"]
    for i in range(rate_limits.USER_SIGN_IN.per_account_and_address):
        wrong = browser.post("/v1/client/sign_ins", json={
            "identifier": identifiers[i % len(identifiers)], "password": "guess!!!"})
        assert error_code(wrong) == "form_credentials_invalid"

    for identifier in identifiers:
        limited = browser.post("/v1/client/sign_ins",
                               json={"identifier": identifier, "password": PASSWORD})
        assert limited.status_code == 429 and error_code(limited) == "too_many_requests"


def test_a_successful_sign_in_does_not_use_the_budget(backend: TestClient,
                                                      browser: TestClient) -> None:
    create_user(backend)
    for _ in range(rate_limits.USER_SIGN_IN.per_account_and_address + 5):
        sign_in(browser)


def test_the_limit_answers_when_to_retry(instance: Instance, clock: FrozenClock) -> None:
    budget = rate_limits.Budget("test:retry", limit=1)
    clock.advance(ms=rate_limits.WINDOW_MS - clock.now_ms() % rate_limits.WINDOW_MS)  # a start
    with instance.transaction() as db:
        rate_limits.spend(db, [(budget, "k")], now_ms=instance.now_ms(), what="tries")
    clock.advance(seconds=60)

    with pytest.raises(TooManyRequests) as limited, instance.transaction() as db:
        rate_limits.spend(db, [(budget, "k")], now_ms=instance.now_ms(), what="tries")

    assert limited.value.meta["retry_after_seconds"] == 14 * 60
    assert "Wait 14 minutes" in limited.value.message
    clock.advance(seconds=14 * 60)
    with instance.transaction() as db:
        rate_limits.spend(db, [(budget, "k")], now_ms=instance.now_ms(), what="tries")


def test_a_refused_spend_charges_none_of_its_budgets(instance: Instance) -> None:
    roomy = rate_limits.Budget("test:roomy", limit=10)
    full = rate_limits.Budget("test:full", limit=1)
    with instance.transaction() as db:
        rate_limits.spend(db, [(full, "k")], now_ms=instance.now_ms(), what="tries")
    with instance.transaction() as db:
        for _ in range(3):
            with pytest.raises(TooManyRequests):
                rate_limits.spend(db, [(roomy, "k"), (full, "k")], now_ms=instance.now_ms(),
                                  what="tries")
    with instance.transaction() as db:
        assert rate_limits.count(db, scope="test:roomy", key="k",
                                 now_ms=instance.now_ms()) == 1  # none charged, + this count


def test_old_counters_are_pruned(instance: Instance, clock: FrozenClock) -> None:
    budget = rate_limits.Budget("test:prune", limit=5)
    with instance.transaction() as db:
        rate_limits.spend(db, [(budget, "k")], now_ms=instance.now_ms(), what="tries")
    clock.advance(ms=rate_limits.WINDOW_MS)
    with instance.transaction() as db:
        assert rate_limits.prune(db, now_ms=instance.now_ms()) == 0  # kept for late refunds
    clock.advance(ms=rate_limits.KEEP_AFTER_WINDOW_MS + 1)
    with instance.transaction() as db:
        assert rate_limits.prune(db, now_ms=instance.now_ms()) == 1


# -- sign-up ----------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sign_ups_per_address": 3}


def test_sign_ups_are_limited_per_address(browser: TestClient, clock: FrozenClock) -> None:
    def sign_up(n: int) -> Any:
        return browser.post("/v1/client/sign_ups", json={
            "email_address": f"new{n}@example.com", "password": PASSWORD})

    assert [sign_up(n).status_code for n in range(3)] == [200, 200, 200]
    limited = sign_up(3)
    assert limited.status_code == 429 and error_code(limited) == "too_many_requests"
    assert limited.json()["errors"][0]["meta"]["retry_after_seconds"] > 0
    clock.advance(ms=rate_limits.WINDOW_MS)
    assert sign_up(4).status_code == 200
