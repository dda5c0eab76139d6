"""The audit log: who did what to whom, why and from where; filtering; the hash chain.

Events are caused through the HTTP API and read back through it. Tampering
goes straight to the database (SQLAlchemy Core), as someone with write access
to it but without the instance secret would; ``actas audit verify`` runs as a
real child process against the same database.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as Db
from starlette.testclient import TestClient

from actas.server import Instance
from actas.server.audit import GENESIS, HASHED_FIELDS, Record, RequestOrigin
from actas.server.clock import FrozenClock
from actas.server.db.schema import (
    AuditChainHead,
    AuditEvent,
    AuditStaged,
    Base,
    RateLimitCounter,
)
from tests.conftest import make_settings
from tests.support.flows import create_user, error_code
from tests.support.processes import actas_env, described, run_actas
from tests.support.receivers import wait_until

EVENTS = Base.metadata.tables[AuditEvent.__tablename__]
HEAD = Base.metadata.tables[AuditChainHead.__tablename__]
STAGED = Base.metadata.tables[AuditStaged.__tablename__]
REASON = "ticket #42"
OTHER_SECRET = "another-instance-secret-" + "o" * 32


# -- steps --------------------------------------------------------------------------------


def impersonate(backend: TestClient, user_id: str, actor_sub: str = "op_alice",
                reason: str | None = REASON, **headers: str) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user_id, "actor": {"sub": actor_sub}}
    if reason is not None:
        body["reason"] = reason
    response = backend.post("/v1/actor_tokens", json=body, headers=headers)
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


def redeem(browser: TestClient, token: dict[str, Any], **headers: str) -> str:
    response = browser.post("/v1/client/sign_ins",
                            json={"strategy": "ticket", "ticket": token["token"]},
                            headers=headers)
    assert response.status_code == 200, response.text
    session_id: str = response.json()["response"]["created_session_id"]
    return session_id


def events(backend: TestClient, params: Any = None) -> list[dict[str, Any]]:
    response = backend.get("/v1/audit_events", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def verify(backend: TestClient) -> dict[str, Any]:
    response = backend.get("/v1/audit_events/verify")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def activity(backend: TestClient, browser: TestClient) -> list[dict[str, Any]]:
    """Six events of a whole impersonation and a revoked ticket; oldest first."""
    ada = create_user(backend)
    session_id = redeem(browser, impersonate(backend, ada["id"]))
    assert backend.post(f"/v1/sessions/{session_id}/revoke").status_code == 200
    unused = impersonate(backend, ada["id"], "op_bob", "ticket #43")
    assert backend.post(f"/v1/actor_tokens/{unused['id']}/revoke").status_code == 200
    written = list(reversed(events(backend)))
    assert [e["type"] for e in written] == [
        "actor_token.created", "session.created", "actor_token.accepted", "session.revoked",
        "actor_token.created", "actor_token.revoked"]
    return written


def only(found: list[dict[str, Any]], type: str) -> dict[str, Any]:
    matching = [e for e in found if e["type"] == type]
    assert len(matching) == 1, found
    return matching[0]


# -- who, whom, why, where ---------------------------------------------------------------


def test_creating_an_actor_token_records_who_whom_why_and_where(
        backend: TestClient, clock: FrozenClock) -> None:
    ada = create_user(backend)

    token = impersonate(backend, ada["id"], **{"User-Agent": "support-console/2.1"})

    event = only(events(backend), "actor_token.created")
    assert event["object"] == "audit_event"
    assert event["actor_sub"] == "op_alice"
    assert event["user_id"] == ada["id"]
    assert event["actor_token_id"] == token["id"]
    assert event["reason"] == REASON
    assert event["ip_address"] == "testclient"
    assert event["user_agent"] == "support-console/2.1"
    assert event["occurred_at"] == clock.now_ms()
    assert event["session_id"] is None
    assert event["data"]["actor"] == {"sub": "op_alice"}
    # The ticket itself is a credential: never in the log.
    assert token["token"] not in json.dumps(event)


def test_redeeming_records_the_acceptance_and_a_session_carrying_the_actor(
        backend: TestClient, browser: TestClient) -> None:
    ada = create_user(backend)
    token = impersonate(backend, ada["id"])

    session_id = redeem(browser, token, **{"User-Agent": "Mozilla/5.0 (support laptop)"})

    found = events(backend)
    assert [e["type"] for e in found] == [
        "actor_token.accepted", "session.created", "actor_token.created"]
    for type in ("actor_token.accepted", "session.created"):
        event = only(found, type)
        assert event["actor_sub"] == "op_alice", type
        assert event["user_id"] == ada["id"], type
        assert event["session_id"] == session_id, type
        assert event["actor_token_id"] == token["id"], type
        assert event["reason"] == REASON, type
        assert event["user_agent"] == "Mozilla/5.0 (support laptop)", type
        assert event["ip_address"] == "testclient", type
        assert event["data"]["actor"]["sub"] == "op_alice", type
        assert event["data"]["actor"]["sid"] == token["id"], type


def test_revoking_an_impersonation_session_records_it(backend: TestClient,
                                                      browser: TestClient) -> None:
    ada = create_user(backend)
    token = impersonate(backend, ada["id"])
    session_id = redeem(browser, token)

    assert backend.post(f"/v1/sessions/{session_id}/revoke").status_code == 200

    event = events(backend)[0]
    assert event["type"] == "session.revoked"
    assert event["session_id"] == session_id
    assert event["actor_sub"] == "op_alice"
    assert event["user_id"] == ada["id"]
    assert event["actor_token_id"] == token["id"]
    assert event["data"]["actor"]["sub"] == "op_alice"
    assert event["data"]["ended_by"] == "backend_api"


@pytest.mark.parametrize("case", ["missing_reason", "banned", "self"])
def test_a_policy_refusal_is_recorded_with_the_api_error_code(
        backend: TestClient, case: str) -> None:
    ada = create_user(backend)
    actor_sub = "op_alice"
    reason: str | None = REASON
    if case == "missing_reason":
        reason = None
    elif case == "banned":
        assert backend.post(f"/v1/users/{ada['id']}/ban").status_code == 200
    else:
        actor_sub = ada["id"]
    body: dict[str, Any] = {"user_id": ada["id"], "actor": {"sub": actor_sub}}
    if reason is not None:
        body["reason"] = reason

    response = backend.post("/v1/actor_tokens", json=body,
                            headers={"User-Agent": "support-console/2.1"})

    assert response.status_code == 403, response.text
    code = error_code(response)
    assert code == {"missing_reason": "impersonation_reason_required",
                    "banned": "impersonation_target_banned",
                    "self": "impersonation_self"}[case]
    event = events(backend)[0]
    assert event["type"] == "impersonation.refused"
    assert event["data"]["code"] == code
    assert event["actor_sub"] == actor_sub
    assert event["user_id"] == ada["id"]
    assert event["reason"] == reason
    assert event["ip_address"] == "testclient"
    assert event["user_agent"] == "support-console/2.1"
    assert event["data"]["actor"] == {"sub": actor_sub}
    # The refused request's own transaction rolled back: no ticket was issued.
    assert events(backend, {"type": "actor_token.created"}) == []
    assert backend.get("/v1/actor_tokens").json() == []


def test_a_refused_redemption_is_recorded(backend: TestClient, browser: TestClient) -> None:
    ada = create_user(backend)
    token = impersonate(backend, ada["id"])
    redeem(browser, token)

    again = browser.post("/v1/client/sign_ins",
                         json={"strategy": "ticket", "ticket": token["token"]})

    assert again.status_code != 200
    event = events(backend)[0]
    assert event["type"] == "actor_token.redemption_refused"
    assert event["data"]["code"] == error_code(again) == "ticket_already_used"
    assert event["actor_token_id"] == token["id"]
    assert event["actor_sub"] == "op_alice" and event["user_id"] == ada["id"]


# -- listing ------------------------------------------------------------------------------


def test_list_filters_by_actor_user_types_and_time(backend: TestClient, browser: TestClient,
                                                    clock: FrozenClock) -> None:
    ada = create_user(backend, "ada@example.com")
    bob = create_user(backend, "bob@example.com")
    t0 = clock.now_ms()
    a = impersonate(backend, ada["id"], "op_alice")
    clock.advance(seconds=1)
    b = impersonate(backend, bob["id"], "op_alice")
    clock.advance(seconds=1)
    c = impersonate(backend, ada["id"], "op_bob")
    clock.advance(seconds=1)
    t3 = clock.now_ms()
    redeem(browser, a)

    def found(params: Any) -> list[tuple[str, str]]:
        return [(e["type"], e["actor_token_id"]) for e in events(backend, params)]

    created, accepted, session = "actor_token.created", "actor_token.accepted", "session.created"
    assert found({"actor_sub": "op_alice"}) == [
        (accepted, a["id"]), (session, a["id"]), (created, b["id"]), (created, a["id"])]
    assert found({"user_id": ada["id"]}) == [
        (accepted, a["id"]), (session, a["id"]), (created, c["id"]), (created, a["id"])]
    assert found({"actor_sub": "op_alice", "user_id": bob["id"]}) == [(created, b["id"])]
    assert found([("type", created), ("type", session)]) == [
        (session, a["id"]), (created, c["id"]), (created, b["id"]), (created, a["id"])]
    assert found({"type": accepted}) == [(accepted, a["id"])]
    # Both bounds are exclusive.
    assert found({"occurred_after": t0, "occurred_before": t3}) == [
        (created, c["id"]), (created, b["id"])]
    assert found({"occurred_after": t3 - 1}) == [(accepted, a["id"]), (session, a["id"])]
    assert found({"occurred_before": t0 + 1}) == [(created, a["id"])]
    assert found({"actor_sub": "op_nobody"}) == []


def test_cursor_pages_are_newest_first_without_duplicates_or_gaps(
        backend: TestClient, browser: TestClient) -> None:
    ada = create_user(backend)
    for n in range(7):
        impersonate(backend, ada["id"], f"op_{n}")
    redeem(browser, impersonate(backend, ada["id"], "op_last"))  # 3 events
    everything = events(backend, {"limit": 500})
    assert [e["seq"] for e in everything] == list(range(10, 0, -1))

    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = backend.get("/v1/audit_events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["data"])
        if len(pages) == 1:
            # Written while paging: keyset paging neither repeats nor shifts.
            impersonate(backend, ada["id"], "op_meanwhile")
        if page["next_cursor"] is None:
            break
        assert len(pages) < 10, "paging does not end"
        params["cursor"] = page["next_cursor"]

    assert all(len(page) <= 3 for page in pages)
    assert [e["id"] for page in pages for e in page] == [e["id"] for e in everything]
    assert events(backend, {"limit": 1})[0]["actor_sub"] == "op_meanwhile"


def test_cursor_paging_composes_with_filters(backend: TestClient, browser: TestClient) -> None:
    ada = create_user(backend)
    for n in range(5):
        session_id = redeem(browser, impersonate(backend, ada["id"], f"op_{n}"))
        assert backend.post(f"/v1/sessions/{session_id}/revoke").status_code == 200
    wanted = events(backend, {"type": "session.created", "limit": 500})
    assert len(wanted) == 5

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"type": "session.created", "limit": 2}
    while True:
        page = backend.get("/v1/audit_events", params=params).json()
        seen += page["data"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert seen == wanted


def test_list_rejects_a_malformed_cursor(backend: TestClient) -> None:
    response = backend.get("/v1/audit_events", params={"cursor": "1 OR 1=1"})
    assert response.status_code == 422


# -- the chain ----------------------------------------------------------------------------


def test_an_empty_chain_verifies(backend: TestClient) -> None:
    result = verify(backend)
    assert result["ok"] is True and result["events"] == 0 and result["head_hash"] == GENESIS


def test_the_chain_verifies_after_real_activity(backend: TestClient, browser: TestClient
                                               ) -> None:
    written = activity(backend, browser)

    result = verify(backend)

    assert result["object"] == "audit_chain_verification"
    assert result["ok"] is True, result
    assert result["events"] == len(written) == 6
    assert result["head_hash"] == written[-1]["hash"]
    assert result["broken_seq"] is None and result["broken_id"] is None
    for before, after in itertools.pairwise(written):
        assert after["prev_hash"] == before["hash"]


def test_concurrent_appends_keep_the_chain_gapless_and_valid(instance: Instance) -> None:
    threads, per_thread = 6, 8
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            for i in range(per_thread):
                instance.record_alone(Record(type="test.concurrent", actor_sub=f"op_{n}",
                                             data={"i": i}))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert errors == []
    with instance.transaction() as db:
        result = instance.audit.verify(db)
        seqs = db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert result.ok, result
    assert list(seqs) == list(range(1, threads * per_thread + 1))


# -- staged, then chained ------------------------------------------------------------------


def _stage_without_chaining(instance: Instance, record: Record) -> None:
    """What a process that stopped between its commit and the chaining leaves behind."""
    with Db(instance.engine) as db, db.begin():
        instance.record(db, record)


def _chained(instance: Instance) -> list[AuditEvent]:
    with instance.snapshot() as db:
        return list(db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_an_event_is_in_the_chain_when_its_transaction_returns(instance: Instance) -> None:
    with instance.transaction() as db:
        instance.record(db, Record(type="test.first", actor_sub="op_a"))
        instance.record(db, Record(type="test.second", actor_sub="op_a"))

    assert [(e.seq, e.type) for e in _chained(instance)] == [(1, "test.first"),
                                                             (2, "test.second")]
    with Db(instance.engine) as db:
        assert db.scalar(select(func.count()).select_from(AuditStaged)) == 0


def test_a_failed_chaining_never_fails_the_write_that_recorded_the_event(
        instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chaining runs inside the writer's transaction on SQLite and after it on
    PostgreSQL; either way a failure there is no failure of the write: the event
    stays staged, sealed, and a later round (the worker's) chains it."""
    chain_staged = instance.audit.chain_staged
    failures = iter([RuntimeError("the chain head is unreachable")])

    def failing_once(db: Db, **kwargs: Any) -> list[AuditEvent]:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return chain_staged(db, **kwargs)

    monkeypatch.setattr(instance.audit, "chain_staged", failing_once)
    with instance.transaction() as db:
        instance.record(db, Record(type="test.recorded", actor_sub="op_a"))
        db.add(RateLimitCounter(scope="test", key="written with the event", window_start=0,
                                hits=1, expires_at=1))

    with Db(instance.engine) as db:  # the write committed
        assert db.scalar(select(RateLimitCounter.key)) == "written with the event"
    instance.chainer.chain_all()  # the worker's sweep (after_commit may have done it)
    assert [e.type for e in _chained(instance)] == ["test.recorded"]
    with instance.snapshot() as db:
        assert instance.audit.verify(db).ok


def test_a_write_that_fails_at_its_commit_fails_with_its_events(instance: Instance) -> None:
    """The events are chained just before the commit on SQLite; the caller's own writes
    are flushed first, so their failure (here a duplicate key) is the caller's error,
    never logged away as a chaining failure while nothing was committed."""
    counter = {"scope": "test", "key": "k", "window_start": 0, "hits": 1, "expires_at": 1}
    with pytest.raises(IntegrityError), instance.transaction() as db:
        instance.record(db, Record(type="test.lost"))
        db.add(RateLimitCounter(**counter))
        db.flush()
        db.add(RateLimitCounter(**counter))  # the same key: refused when written

    instance.chainer.chain_all()
    assert _chained(instance) == []
    with Db(instance.engine) as db:
        assert db.scalar(select(func.count()).select_from(RateLimitCounter)) == 0


def test_a_rolled_back_transaction_leaves_no_event(instance: Instance) -> None:
    with pytest.raises(ZeroDivisionError), instance.transaction() as db:
        instance.record(db, Record(type="test.rolled_back"))
        1 / 0  # noqa: B018

    instance.chainer.chain_all()
    assert _chained(instance) == []


def test_events_left_staged_by_a_stopped_process_are_chained_at_the_next_start(
        tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
        instance: Instance) -> None:
    instance.record_alone(Record(type="test.before"))
    _stage_without_chaining(instance, Record(type="test.staged", actor_sub="op_a",
                                             reason=REASON, data={"n": 1}))
    assert [e.type for e in _chained(instance)] == ["test.before"]

    restarted = Instance.start(make_settings(tmp_path, database_url), clock=clock,
                               engine=engine)

    chained = _chained(restarted)
    assert [e.type for e in chained] == ["test.before", "test.staged"]
    assert (chained[1].actor_sub, chained[1].reason, chained[1].data) == (
        "op_a", REASON, {"n": 1})
    with restarted.snapshot() as db:
        assert restarted.audit.verify(db).ok


def test_a_sealed_copy_of_a_chained_event_is_caught_by_the_next_writer_too(
        instance: Instance, engine: Engine) -> None:
    """A writer does not check its own fresh events for being copies of chained ones
    (``chain_staged``'s ``own``), but still checks everything else its batch takes: a
    staged row copied, seal and all, before the original was chained is recorded as
    altered by whichever transaction chains it, not chained a second time."""
    _stage_without_chaining(instance, Record(type="actor_token.created", actor_sub="op_a"))
    with engine.begin() as connection:
        original = connection.execute(select(STAGED)).one()._asdict()
        del original["id"]
    instance.chainer.chain_all()
    [first] = _chained(instance)
    with engine.begin() as connection:
        connection.execute(insert(STAGED).values(**original))  # the copy, still sealed

    instance.record_alone(Record(type="test.next"))  # an ordinary writer chains the copy

    chained = _chained(instance)
    assert [e.type for e in chained] == [
        "actor_token.created", "audit.staged_event_altered", "test.next"]
    assert chained[1].data["claimed_event_id"] == first.id
    assert [e.id for e in chained].count(first.id) == 1
    with instance.snapshot() as db:
        assert instance.audit.verify(db).ok


@pytest.mark.parametrize("case", ["edited", "forged", "non_ascii_seal", "unparseable",
                                  "replayed"])
def test_a_staged_event_edited_or_forged_before_chaining_is_recorded_as_altered(
        instance: Instance, engine: Engine, database_url: str, case: str) -> None:
    """Between its commit and its chaining an event is only sealed, not chained: a
    change in that window is caught by the seal, and the chain says so in its place.
    Nothing written there can stop the chaining of the events after it."""
    if case == "unparseable" and not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's json column refuses text that does not parse")
    if case == "replayed":
        instance.record_alone(Record(type="actor_token.created", actor_sub="op_a"))
        [first] = _chained(instance)
    _stage_without_chaining(instance, Record(type="actor_token.created", actor_sub="op_a",
                                             reason=REASON))
    claimed = None
    with engine.begin() as connection:
        if case == "edited":
            connection.execute(update(STAGED).values(reason="nothing to see here"))
        elif case == "non_ascii_seal":
            connection.execute(update(STAGED).values(mac="é" * 64))
        elif case == "unparseable":
            connection.exec_driver_sql("UPDATE audit_staged SET data = '{not json'")
        else:  # forged, or a copy of an event already chained (to make it appear twice)
            claimed = "evt_" + "F" * 26 if case == "forged" else first.id
            connection.execute(delete(STAGED))
            connection.execute(insert(STAGED).values(
                event_id=claimed, type="actor_token.created", occurred_at=1,
                actor_sub="op_mallory", reason="routine", data={}, mac="0" * 64))
    _stage_without_chaining(instance, Record(type="test.after"))

    instance.chainer.chain_all()

    chained = _chained(instance)[1:] if case == "replayed" else _chained(instance)
    altered, after = chained
    assert altered.type == "audit.staged_event_altered"
    assert altered.actor_sub is None and altered.reason is None
    assert altered.data["claimed_type"] == "actor_token.created"
    if claimed is not None:
        assert altered.data["claimed_event_id"] == claimed
        assert altered.id != claimed
    assert after.type == "test.after"  # the row after it was chained as usual
    with instance.snapshot() as db:
        assert instance.audit.verify(db).ok  # the chain itself is intact


def test_writers_do_not_wait_for_the_chain_head(instance: Instance, engine: Engine,
                                               database_url: str) -> None:
    """The old design locked the head from the append to the commit, so one slow
    transaction holding it stopped every writer. Now a writer's own transaction
    commits while the head is held; only the chaining after it waits."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time whatever the design")
    committed = threading.Event()

    def write() -> None:
        with instance.transaction() as db:
            instance.record(db, Record(type="test.while_held"))
        committed.set()

    with engine.connect() as holder:
        holder.begin()
        holder.execute(select(HEAD).with_for_update())
        writer = threading.Thread(target=write)
        writer.start()
        wait_until(lambda: _staged_count(engine) == 1, timeout=60)
        assert not committed.is_set()  # it waits for the chaining, not for its commit
        holder.rollback()
    writer.join(60)
    assert committed.is_set()
    assert [e.type for e in _chained(instance)] == ["test.while_held"]


def _staged_count(engine: Engine) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(select(func.count()).select_from(STAGED)).scalar_one()
        return count


def _forge(engine: Engine, written: list[dict[str, Any]]) -> dict[str, Any]:
    """A row appended at the end whose hash is a plain SHA-256, as anyone could compute."""
    last = written[-1]
    forged: dict[str, Any] = {
        "seq": last["seq"] + 1, "id": "evt_" + "F" * 26, "type": "actor_token.created",
        "occurred_at": last["occurred_at"] + 1, "actor_sub": "op_mallory",
        "user_id": last["user_id"], "session_id": None, "actor_token_id": None,
        "reason": "routine check", "ip_address": "10.0.0.1", "user_agent": "curl/8",
        "data": {"actor": {"sub": "op_mallory"}},
    }
    body = json.dumps({name: forged[name] for name in HASHED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    forged["prev_hash"] = last["hash"]
    forged["hash"] = hashlib.sha256(f"{last['hash']}\n{body}".encode()).hexdigest()
    with engine.begin() as connection:
        connection.execute(insert(EVENTS).values(**forged))
        # Moving the chain head along too is the best a forger can do.
        connection.execute(update(HEAD).values(last_seq=forged["seq"],
                                               last_hash=forged["hash"]))
    return forged


def _tamper(case: str, engine: Engine, written: list[dict[str, Any]]
            ) -> tuple[int, str | None, str]:
    """Damage the chain; return the seq and id ``verify`` must name, and a word it must say."""
    middle, last = written[2], written[-1]
    with engine.begin() as connection:
        if case == "edited":
            connection.execute(update(EVENTS).where(EVENTS.c.seq == middle["seq"])
                               .values(reason="nothing to see here"))
            return middle["seq"], middle["id"], "modified"
        if case == "deleted_middle":
            connection.execute(delete(EVENTS).where(EVENTS.c.seq == middle["seq"]))
            return middle["seq"], None, "missing"
        if case == "deleted_last":
            connection.execute(delete(EVENTS).where(EVENTS.c.seq == last["seq"]))
            return last["seq"], None, "missing"
    assert case == "forged"
    forged = _forge(engine, written)
    return forged["seq"], forged["id"], "modified"


TAMPERING = ["edited", "deleted_middle", "deleted_last", "forged"]


@pytest.mark.parametrize("case", TAMPERING)
def test_verify_names_where_the_chain_was_tampered_with(
        backend: TestClient, browser: TestClient, engine: Engine, case: str) -> None:
    written = activity(backend, browser)
    assert verify(backend)["ok"] is True

    seq, event_id, word = _tamper(case, engine, written)

    result = verify(backend)
    assert result["ok"] is False, result
    assert result["broken_seq"] == seq, result
    assert result["broken_id"] == event_id, result
    assert word in result["problem"], result


def test_an_edit_with_a_relinked_plain_hash_is_still_caught(
        backend: TestClient, browser: TestClient, engine: Engine) -> None:
    """Rewriting a row's hash (and the next row's link) without the key does not help."""
    written = activity(backend, browser)
    target, following = written[2], written[3]
    row = {**target, "reason": "nothing to see here"}
    body = json.dumps({name: row[name] for name in HASHED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    new_hash = hashlib.sha256(f"{target['prev_hash']}\n{body}".encode()).hexdigest()
    with engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.seq == target["seq"])
                           .values(reason=row["reason"], hash=new_hash))
        connection.execute(update(EVENTS).where(EVENTS.c.seq == following["seq"])
                           .values(prev_hash=new_hash))

    result = verify(backend)

    assert result["ok"] is False
    assert (result["broken_seq"], result["broken_id"]) == (target["seq"], target["id"])


def test_a_chain_written_with_another_instance_secret_does_not_verify(
        tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    written = activity(backend, browser)
    other = Instance.start(make_settings(tmp_path, database_url, instance_secret=OTHER_SECRET),
                           clock=clock, engine=engine)

    with other.transaction() as db:
        result = other.audit.verify(db)

    assert result.ok is False
    assert (result.broken_seq, result.broken_id) == (1, written[0]["id"])
    with instance.transaction() as db:
        assert instance.audit.verify(db).ok is True


def test_an_event_appended_by_another_instance_secret_breaks_the_chain(
        tmp_path: Path, database_url: str, engine: Engine, clock: FrozenClock,
        instance: Instance, backend: TestClient, browser: TestClient) -> None:
    written = activity(backend, browser)
    other = Instance.start(make_settings(tmp_path, database_url, instance_secret=OTHER_SECRET),
                           clock=clock, engine=engine)
    other.record_alone(Record(type="actor_token.created", actor_sub="op_mallory",
                              origin=RequestOrigin("10.0.0.1", "curl/8")))

    result = verify(backend)

    assert result["ok"] is False
    assert result["broken_seq"] == len(written) + 1
    assert "modified" in result["problem"]


# -- actas audit verify -------------------------------------------------------------------


def audit_verify(tmp_path: Path, database_url: str, instance_secret: str
                 ) -> subprocess.CompletedProcess[str]:
    return run_actas("audit", "verify", "--database-url", database_url,
                     "--data-dir", str(tmp_path / "data"), cwd=tmp_path,
                     env=actas_env(ACTAS_INSTANCE_SECRET=instance_secret))


@pytest.mark.parametrize("case", ["edited", "deleted_middle"])
def test_cli_verify_exits_0_on_an_intact_chain_and_1_naming_the_tampered_event(
        tmp_path: Path, database_url: str, engine: Engine, instance: Instance,
        backend: TestClient, browser: TestClient, case: str) -> None:
    written = activity(backend, browser)
    secret = instance.settings.instance_secret.reveal()

    intact = audit_verify(tmp_path, database_url, secret)

    assert intact.returncode == 0, described(intact)
    assert f"{len(written)} events" in intact.stdout, described(intact)
    assert written[-1]["hash"] in intact.stdout, described(intact)
    # stderr carries only the progress report (a line per tenth when not a terminal).
    assert all(line.startswith("  verified ") for line in intact.stderr.splitlines()), \
        described(intact)

    seq, event_id, word = _tamper(case, engine, written)
    broken = audit_verify(tmp_path, database_url, secret)

    assert broken.returncode == 1, described(broken)
    where = f"event {seq}" + (f" ({event_id})" if event_id else "")
    assert where in broken.stderr, described(broken)
    assert word in broken.stderr, described(broken)
    assert "OK" not in broken.stdout, described(broken)


def test_cli_verify_with_another_instance_secret_fails(
        tmp_path: Path, database_url: str, instance: Instance, backend: TestClient,
        browser: TestClient) -> None:
    written = activity(backend, browser)

    result = audit_verify(tmp_path, database_url, OTHER_SECRET)

    assert result.returncode == 1, described(result)
    assert f"event 1 ({written[0]['id']})" in result.stderr, described(result)
