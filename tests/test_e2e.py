"""End to end: a real server process, real HTTP, real database, real model."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Server

pytestmark = pytest.mark.e2e


def _queue(server: Server, desk: str, **params: object) -> dict[str, object]:
    response = httpx.get(f"{server.url}/v1/desks/{desk}/inquiries", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_json_and_form_inquiries_reach_their_desk_queues(server: Server) -> None:
    posted = httpx.post(
        f"{server.url}/v1/inquiries",
        json={"message": "I lost my card yesterday, please block it", "email": "a@example.com"},
    )
    assert posted.status_code == 202, posted.text
    accepted = posted.json()
    assert accepted["status"] == "received"
    assert posted.headers["location"] == accepted["status_url"]

    # A plain HTML form posts urlencoded fields, including its submit button.
    form = httpx.post(
        f"{server.url}/v1/inquiries",
        data={
            "message": "My top-up failed, why did my top up not go through?",
            "locale": "en-GB",
            "submit": "Send",
        },
    )
    assert form.status_code == 202, form.text

    card = server.wait_routed(accepted["id"])
    top_up = server.wait_routed(form.json()["id"])
    assert card["desk"] == "cards"
    assert top_up["desk"] == "top-ups"
    decision = card["decision"]
    assert isinstance(decision, dict)
    for field in (
        "language",
        "language_confidence",
        "english_text",
        "translated",
        "translation_engine",
        "intent",
        "confidence",
        "desk",
        "reason",
        "model_name",
        "model_version",
    ):
        assert field in decision, field
    assert decision["language"] == "en"
    assert decision["model_version"] == "1"
    assert "threshold" in str(decision["reason"])

    cards = _queue(server, "cards")
    assert [item["id"] for item in cards["items"]] == [accepted["id"]]  # type: ignore[index,union-attr]
    desks = {d["name"]: d for d in httpx.get(f"{server.url}/v1/desks").json()["desks"]}
    assert desks["cards"]["counts"]["routed"] == 1
    assert desks["top-ups"]["counts"]["routed"] == 1


def test_retry_with_idempotency_key_creates_one_inquiry(server: Server) -> None:
    body = {"message": "My transfer to my friend has not arrived yet"}
    headers = {"Idempotency-Key": "form-submit-7f3a"}
    first = httpx.post(f"{server.url}/v1/inquiries", json=body, headers=headers)
    second = httpx.post(f"{server.url}/v1/inquiries", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"

    server.wait_routed(first.json()["id"])
    health = httpx.get(f"{server.url}/health").json()
    assert sum(health["queue"].values()) == 1

    reused = httpx.post(
        f"{server.url}/v1/inquiries", json={"message": "something else"}, headers=headers
    )
    assert reused.status_code == 409
    assert "Idempotency-Key" in reused.json()["detail"]


def test_stored_inquiry_survives_a_restart(server: Server) -> None:
    posted = httpx.post(f"{server.url}/v1/inquiries", json={"message": "Why was I charged twice?"})
    inquiry_id = posted.json()["id"]
    routed = server.wait_routed(inquiry_id)
    server.stop()
    server.start()
    again = httpx.get(f"{server.url}/v1/inquiries/{inquiry_id}")
    assert again.status_code == 200
    assert again.json()["status"] == "routed"
    assert again.json()["decision"] == routed["decision"]


def test_claim_and_resolve_through_the_desk_api(server: Server) -> None:
    posted = httpx.post(f"{server.url}/v1/inquiries", json={"message": "My card got stolen"})
    inquiry_id = posted.json()["id"]
    desk = str(server.wait_routed(inquiry_id)["desk"])
    base = f"{server.url}/v1/desks/{desk}/inquiries/{inquiry_id}"

    claimed = httpx.post(f"{base}/claim", json={"agent": "alice"})
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    taken = httpx.post(f"{base}/claim", json={"agent": "bob"})
    assert taken.status_code == 409 and "alice" in taken.json()["detail"]
    assert _queue(server, desk)["total"] == 0
    assert _queue(server, desk, status="claimed")["total"] == 1

    resolved = httpx.post(f"{base}/resolve", json={"agent": "alice", "resolution": "blocked"})
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolution"] == "blocked"

    wrong_desk = "cash" if desk != "cash" else "cards"
    moved = httpx.post(
        f"{server.url}/v1/desks/{wrong_desk}/inquiries/{inquiry_id}/claim", json={"agent": "x"}
    )
    assert moved.status_code == 404


def test_bad_requests_get_clear_errors_and_store_nothing(server: Server) -> None:
    url = f"{server.url}/v1/inquiries"
    missing = httpx.post(url, json={"mesage": "typo"})
    assert missing.status_code == 422
    problems = {tuple(item["loc"]) for item in missing.json()["detail"]}
    assert ("message",) in problems and ("mesage",) in problems

    assert httpx.post(url, json={"message": "   "}).status_code == 422
    assert httpx.post(url, json={"message": "hi", "email": "not-an-email"}).status_code == 422
    assert httpx.post(url, json={"message": "x" * 10_001}).status_code == 422
    not_json = httpx.post(url, content=b"{oops", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    plain = httpx.post(url, content=b"hello", headers={"content-type": "text/plain"})
    assert plain.status_code == 415

    assert httpx.get(f"{server.url}/v1/inquiries/nope").status_code == 404
    unknown_desk = httpx.get(f"{server.url}/v1/desks/nope/inquiries")
    assert unknown_desk.status_code == 404 and "cards" in unknown_desk.json()["detail"]
    bad_cursor = httpx.get(f"{server.url}/v1/desks/cards/inquiries", params={"cursor": "%%%"})
    assert bad_cursor.status_code == 400
    assert httpx.get(f"{server.url}/v1/desks/cards/inquiries?limit=0").status_code == 422

    assert httpx.get(f"{server.url}/health").json()["queue"] == {}


def test_classify_answers_without_storing(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/classify", json={"message": "The ATM kept my card, what now?"}
    )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["intent"] == "card_swallowed"
    assert decision["desk"] in {"cards", "triage"}
    assert httpx.get(f"{server.url}/health").json()["queue"] == {}
