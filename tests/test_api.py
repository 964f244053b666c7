"""The API's contract, in process (FastAPI's TestClient over the real app, store and model):
status codes, error bodies and the documented shapes. The end-to-end tests run the same
app as a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from inquiry_router.api import create_app
from inquiry_router.api.schemas import DecisionPublic, FailedDecision
from inquiry_router.store import InquiryStore, NewInquiry

from .conftest import DECISION_FIELDS, Keys, make_keys, routed_inquiry, settings_for


@pytest.fixture(scope="module")
def app(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    database = tmp_path_factory.mktemp("api") / "inquiries.db"
    return create_app(
        settings_for(trained_home, database_url=f"sqlite:///{database}"), run_worker=False
    )


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as running:
        yield running


def _stored(client: TestClient) -> int:
    store: InquiryStore = client.app.state.store  # type: ignore[attr-defined]
    return sum(store.status_counts().values())


def _routed(client: TestClient, message: str, desk: str = "cards") -> str:
    return routed_inquiry(client.app.state.store, message, desk)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def keys(client: TestClient) -> Keys:
    return make_keys(client.app.state.store)  # type: ignore[attr-defined]


def test_bad_requests_get_clear_errors_and_store_nothing(client: TestClient, keys: Keys) -> None:
    stored_before = _stored(client)
    admin = keys.bearer("admin")
    missing = client.post("/v1/inquiries", json={"mesage": "typo"})
    assert missing.status_code == 422
    problems = {tuple(item["loc"]) for item in missing.json()["detail"]}
    assert ("message",) in problems and ("mesage",) in problems

    assert client.post("/v1/inquiries", json={"message": "   "}).status_code == 422
    assert client.post("/v1/inquiries", json={"message": "hi", "email": "no"}).status_code == 422
    assert client.post("/v1/inquiries", json={"message": "x" * 10_001}).status_code == 422
    not_json = client.post(
        "/v1/inquiries", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    plain = client.post("/v1/inquiries", content=b"hi", headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "text/plain" in plain.json()["detail"]

    assert client.get("/v1/inquiries/nope").status_code == 404
    unknown_desk = client.get("/v1/desks/nope/inquiries", headers=admin)
    assert unknown_desk.status_code == 404 and "cards" in unknown_desk.json()["detail"]
    bad_cursor = client.get("/v1/desks/cards/inquiries", params={"cursor": "%%%"}, headers=admin)
    assert bad_cursor.status_code == 400
    assert client.get("/v1/desks/cards/inquiries?limit=0", headers=admin).status_code == 422
    assert _stored(client) == stored_before


def test_store_errors_are_404_and_409_with_the_reason(client: TestClient, keys: Keys) -> None:
    inquiry_id = _routed(client, "My card has not arrived")
    base = f"/v1/desks/cards/inquiries/{inquiry_id}"
    cards = keys.bearer("cards")
    assert client.post(f"{base}/claim", json={"agent": "alice"}, headers=cards).status_code == 200
    taken = client.post(f"{base}/claim", json={"agent": "bob"}, headers=cards)
    assert taken.status_code == 409 and "alice" in taken.json()["detail"]
    elsewhere = client.post(
        f"/v1/desks/cash/inquiries/{inquiry_id}/claim", headers=keys.bearer("admin")
    )
    assert elsewhere.status_code == 404 and inquiry_id in elsewhere.json()["detail"]

    key = {"Idempotency-Key": "form-42"}
    first = client.post("/v1/inquiries", json={"message": "one"}, headers=key)
    assert first.status_code == 202
    again = client.post("/v1/inquiries", json={"message": "another"}, headers=key)
    assert again.status_code == 409 and "Idempotency-Key" in again.json()["detail"]


def test_classify_answers_with_a_typed_decision(client: TestClient, keys: Keys) -> None:
    deadline = time.monotonic() + 120
    while client.get("/health").status_code != 200:  # the model loads in the background
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.2)
    stored_before = _stored(client)
    text = {"message": "The ATM kept my card, what now?"}
    assert client.post("/v1/classify", json=text).status_code == 401  # it costs model time
    response = client.post("/v1/classify", json=text, headers=keys.bearer("cards"))
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == set(DecisionPublic.model_fields) >= DECISION_FIELDS
    assert body["desk"] in {"cards", "cash", "triage"}
    assert _stored(client) == stored_before  # computed, not stored


def test_the_decision_shapes_are_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["DecisionPublic"]["required"]) >= DECISION_FIELDS
    classify = spec["paths"]["/v1/classify"]["post"]["responses"]["200"]
    assert classify["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionPublic")
    decision = schemas["InquiryPublic"]["properties"]["decision"]
    shapes = {option.get("$ref", "").rsplit("/", 1)[-1] for option in decision["anyOf"]}
    assert shapes == {"DecisionPublic", "FailedDecision", ""}  # "" is null
    claim = spec["paths"]["/v1/desks/{desk}/inquiries/{inquiry_id}/claim"]["post"]
    assert {"401", "403", "404", "409"} <= set(claim["responses"])
    # The key scheme, for /docs' Authorize button; intake needs none and says so.
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    intake = spec["paths"]["/v1/inquiries"]["post"]
    assert intake["security"] == [] and "429" in intake["responses"]
    assert "/" not in spec["paths"] and "/sign-in" not in spec["paths"]  # pages are not API


def test_an_inquiry_that_failed_every_attempt_waits_in_triage_with_the_error(
    client: TestClient, keys: Keys
) -> None:
    store: InquiryStore = client.app.state.store  # type: ignore[attr-defined]
    record, _ = store.add(NewInquiry(message="this one breaks the model"))
    (ours,) = [c for c in store.claim_batch(100, 60.0) if c.id == record.id]
    store.release_failed(ours.lease_token, [record.id], "RuntimeError: boom", 1, "triage")
    body = client.get(f"/v1/inquiries/{record.id}", headers=keys.bearer("triage")).json()
    assert body["status"] == "routed" and body["desk"] == "triage"
    assert body["decision"] == {
        "desk": "triage",
        "auto_routed": False,
        "reason": "processing failed 1 times: RuntimeError: boom",
    }
    FailedDecision.model_validate(body["decision"])
