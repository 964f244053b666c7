"""The store against SQLite and, where it is reachable, PostgreSQL: same code, same behaviour."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inquiry_router.domain import Decision, Status
from inquiry_router.store import (
    Conflict,
    IdempotencyConflict,
    InquiryStore,
    NewInquiry,
    NotFound,
)


@pytest.fixture
def store(database_url: str) -> Iterator[InquiryStore]:
    opened = InquiryStore(database_url)
    yield opened
    opened.close()


def _decision(desk: str = "cards") -> Decision:
    return Decision(
        language="en",
        language_confidence=0.99,
        language_source="text",
        english_text="x",
        translated=False,
        translation_engine="passthrough",
        translation_engine_version=None,
        translation_note=None,
        intent="card_arrival",
        confidence=0.9,
        runner_up="card_linking",
        runner_up_confidence=0.05,
        desk=desk,
        desk_confidence=0.95,
        auto_routed=True,
        reason="desk confidence 0.95 >= threshold 0.55",
        model_name="m",
        model_version="1",
    )


def _route(store: InquiryStore, *messages: str, desk: str = "cards") -> list[str]:
    ids = [store.add(NewInquiry(message))[0].id for message in messages]
    claimed = store.claim_batch(limit=len(ids), lease_seconds=60)
    store.record_decisions(claimed[0].lease_token, [(c.id, _decision(desk)) for c in claimed])
    return ids


def test_added_inquiry_is_received_and_readable(store: InquiryStore) -> None:
    record, created = store.add(NewInquiry("Where is my card?", email="a@b.co", locale="en"))
    assert created
    again = store.get(record.id)
    assert again.status == Status.RECEIVED
    assert again.message == "Where is my card?"
    with pytest.raises(NotFound):
        store.get("missing")


def test_idempotency_key_returns_the_first_inquiry(store: InquiryStore) -> None:
    first, created = store.add(NewInquiry("hello"), idempotency_key="k")
    second, created_again = store.add(NewInquiry("hello"), idempotency_key="k")
    assert created and not created_again
    assert first.id == second.id
    assert store.status_counts() == {"received": 1}
    with pytest.raises(IdempotencyConflict, match="different request"):
        store.add(NewInquiry("other"), idempotency_key="k")


def test_claims_are_exclusive_and_oldest_first(store: InquiryStore) -> None:
    ids = [store.add(NewInquiry(f"m{i}"))[0].id for i in range(5)]
    first = store.claim_batch(limit=3, lease_seconds=60)
    second = store.claim_batch(limit=3, lease_seconds=60)
    assert [c.id for c in first] == ids[:3]
    assert [c.id for c in second] == ids[3:]
    assert store.claim_batch(limit=3, lease_seconds=60) == []


def test_concurrent_workers_never_claim_the_same_inquiry(store: InquiryStore) -> None:
    for i in range(40):
        store.add(NewInquiry(f"m{i}"))
    seen: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        while batch := store.claim_batch(limit=4, lease_seconds=60):
            with lock:
                seen.extend(c.id for c in batch)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 40
    assert len(set(seen)) == 40


def test_a_crashed_workers_batch_comes_back_after_its_lease(store: InquiryStore) -> None:
    store.add(NewInquiry("lost worker"))
    crashed = store.claim_batch(limit=10, lease_seconds=0.2)
    assert store.claim_batch(limit=10, lease_seconds=60) == []
    time.sleep(0.3)
    retried = store.claim_batch(limit=10, lease_seconds=60)
    assert [c.id for c in retried] == [crashed[0].id]
    assert retried[0].attempts == 2
    # The crashed worker's late answer no longer counts: the new lease holds the inquiry.
    assert store.record_decisions(crashed[0].lease_token, [(crashed[0].id, _decision())]) == 0
    assert store.record_decisions(retried[0].lease_token, [(retried[0].id, _decision())]) == 1


def test_repeated_failures_end_in_triage_not_lost(store: InquiryStore) -> None:
    record, _ = store.add(NewInquiry("poison"))
    for attempt in range(1, 4):
        claimed = store.claim_batch(limit=1, lease_seconds=60)
        assert [c.id for c in claimed] == [record.id]
        store.release_failed(claimed[0].lease_token, [record.id], "boom", 3, "triage")
        status = store.get(record.id).status
        assert status == (Status.ROUTED if attempt == 3 else Status.RECEIVED)
    final = store.get(record.id)
    assert final.desk == "triage"
    assert final.decision is not None and "boom" in final.decision["reason"]


def test_an_inquiry_whose_worker_dies_every_time_ends_in_triage(store: InquiryStore) -> None:
    # A message that kills the process: each worker leases it, then dies without a word.
    record, _ = store.add(NewInquiry("kills every worker"))
    for attempt in range(1, 4):
        (leased,) = store.claim_batch(limit=10, lease_seconds=0.1, max_attempts=3)
        assert (leased.id, leased.attempts) == (record.id, attempt)
        time.sleep(0.15)
    # The fourth worker does not get it: it waits in triage, with the reason.
    assert store.claim_batch(limit=10, lease_seconds=60, max_attempts=3) == []
    final = store.get(record.id)
    assert (final.status, final.desk, final.attempts) == (Status.ROUTED, "triage", 3)
    assert final.decision is not None
    assert final.decision["reason"].startswith("processing failed 3 times: the worker stopped")


def test_a_working_worker_keeps_its_batch_by_renewing_the_lease(store: InquiryStore) -> None:
    store.add(NewInquiry("slow to route"))
    (leased,) = store.claim_batch(limit=10, lease_seconds=0.3)
    time.sleep(0.15)
    assert store.renew_lease(leased.lease_token, 0.3) == 1
    time.sleep(0.2)  # past the first lease, within the renewed one
    assert store.claim_batch(limit=10, lease_seconds=60) == []
    assert store.record_decisions(leased.lease_token, [(leased.id, _decision())]) == 1


def test_ids_and_cursors_that_are_not_ours_are_not_found(store: InquiryStore) -> None:
    # PostgreSQL refuses a NUL in a query: such ids never reach the database.
    for bad in ("abc\x00def", "nope", "'; drop table inquiries; --"):
        with pytest.raises(NotFound, match="no inquiry"):
            store.get(bad)
        with pytest.raises(NotFound, match="no inquiry"):
            store.claim("cards", bad, "alice")
    forged = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x\x00y").decode()
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_desk("cards", Status.ROUTED, limit=2, cursor=forged)


def test_desk_queue_pages_oldest_first(store: InquiryStore) -> None:
    ids = _route(store, *[f"m{i}" for i in range(5)])
    first = store.list_desk("cards", Status.ROUTED, limit=2)
    assert first.total == 5
    assert [r.id for r in first.items] == ids[:2]
    assert first.next_cursor
    second = store.list_desk("cards", Status.ROUTED, limit=2, cursor=first.next_cursor)
    third = store.list_desk("cards", Status.ROUTED, limit=2, cursor=second.next_cursor)
    assert [r.id for r in second.items] == ids[2:4]
    assert [r.id for r in third.items] == ids[4:]
    assert third.next_cursor is None
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_desk("cards", Status.ROUTED, limit=2, cursor="garbage!")


def test_claim_and_resolve_rules(store: InquiryStore) -> None:
    (inquiry_id,) = _route(store, "my card")
    with pytest.raises(NotFound, match="it is in 'cards'"):
        store.claim("cash", inquiry_id, "alice")
    assert store.claim("cards", inquiry_id, "alice").status == Status.CLAIMED
    assert store.claim("cards", inquiry_id, "alice").claimed_by == "alice"  # idempotent
    with pytest.raises(Conflict, match="alice"):
        store.claim("cards", inquiry_id, "bob")
    with pytest.raises(Conflict, match="claimed by 'alice'"):
        store.resolve("cards", inquiry_id, "bob", None)
    resolved = store.resolve("cards", inquiry_id, "alice", "sent a new card")
    assert resolved.status == Status.RESOLVED and resolved.resolved_at is not None
    with pytest.raises(Conflict, match="already resolved"):
        store.resolve("cards", inquiry_id, "alice", None)
    counts = store.desk_counts().of("cards")
    assert counts == {"resolved": 1}


def test_the_worker_renews_its_lease_while_the_model_is_slow(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from inquiry_router.config import Settings
    from inquiry_router.worker import Worker

    store = InquiryStore(f"sqlite:///{tmp_path / 'inquiries.db'}")
    record, _ = store.add(NewInquiry("a long one"))
    stolen: list[object] = []

    def slow_run(inquiries: list[object]) -> list[Decision]:
        time.sleep(1.6)  # past the 1 s lease: only renewal keeps the batch
        stolen.extend(store.claim_batch(limit=10, lease_seconds=60))
        return [_decision() for _ in inquiries]

    pipeline = SimpleNamespace(
        run=slow_run, router=SimpleNamespace(desk_map=SimpleNamespace(triage_desk="triage"))
    )
    holder = SimpleNamespace(current=lambda: pipeline, shadow=lambda: None)
    settings = Settings(home=tmp_path, worker_lease_s=1.0)
    assert Worker(settings, store, holder).process_once() == 1  # type: ignore[arg-type]
    assert stolen == []  # no other worker could take it meanwhile
    assert store.get(record.id).status == Status.ROUTED
    store.close()


def test_a_backlog_is_routed_in_large_batches_and_light_traffic_in_small_ones(
    tmp_path: Path,
) -> None:
    from types import SimpleNamespace

    from inquiry_router.config import Settings
    from inquiry_router.worker import Worker

    store = InquiryStore(f"sqlite:///{tmp_path / 'inquiries.db'}")
    store.add_many([NewInquiry(f"backlog {i}") for i in range(70)])
    sizes: list[int] = []

    def run(inquiries: list[object]) -> list[Decision]:
        sizes.append(len(inquiries))
        return [_decision() for _ in inquiries]

    pipeline = SimpleNamespace(
        run=run, router=SimpleNamespace(desk_map=SimpleNamespace(triage_desk="triage"))
    )
    holder = SimpleNamespace(current=lambda: pipeline, shadow=lambda: None)
    alone = Settings(home=tmp_path, worker_batch_size=32, worker_processes=0)
    worker = Worker(alone, store, holder)  # type: ignore[arg-type]
    while worker.process_once():
        pass
    assert sizes == [32, 32, 6]  # what was waiting, up to the cap
    store.add(NewInquiry("a single new one"))
    worker.process_once()
    assert sizes[-1] == 1  # at once, not waiting for a batch to fill
    assert store.status_counts() == {"routed": 71}

    # Two worker processes split a backlog between them rather than one taking the cap and
    # leaving the other the tail: each batch at most half of what is waiting (guided
    # scheduling), so the batches shrink as the backlog ends and both finish together.
    store.add_many([NewInquiry(f"second backlog {i}") for i in range(70)])
    shared = Settings(home=tmp_path, worker_batch_size=64, worker_processes=2)
    first, second = (Worker(shared, store, holder) for _ in range(2))  # type: ignore[arg-type]
    sizes.clear()
    first.process_once(), second.process_once(), first.process_once()
    assert sizes == [35, 18, 9]
    store.close()


def test_intake_stores_a_burst_together_and_answers_each_request(store: InquiryStore) -> None:
    import asyncio

    from inquiry_router.store.intake import IntakeWriter

    async def burst() -> list[object]:
        writer = IntakeWriter(store, max_group=16)
        try:
            requests = [writer.add(NewInquiry(f"message {i}")) for i in range(48)]
            # A retry of the same form (same key, same body), and another body reusing it.
            requests += [writer.add(NewInquiry("same"), "key-1") for _ in range(2)]
            requests.append(writer.add(NewInquiry("other"), "key-1"))
            return await asyncio.gather(*requests, return_exceptions=True)
        finally:
            writer.close()

    answers = asyncio.run(burst())
    stored = [answer for answer in answers if isinstance(answer, tuple)]
    assert len(stored) == 50 and isinstance(answers[-1], IdempotencyConflict)
    first, retry = answers[48], answers[49]
    assert isinstance(first, tuple) and isinstance(retry, tuple)
    assert (first[1], retry[1]) == (True, False) and first[0].id == retry[0].id
    assert store.status_counts() == {"received": 49}
    # Every answer is what the database holds, committed.
    assert store.get(first[0].id).message == "same"
    assert {store.get(record.id).message for record, _ in stored[:48]} == {
        f"message {i}" for i in range(48)
    }
