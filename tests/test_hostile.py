"""Hostile input, as an attacker or a broken client sends it: every request gets a 4xx with a
reason that is safe to print, never a 500, and nothing is stored. Here in process over SQLite;
test_e2e runs the same matrix against a real server on SQLite and on PostgreSQL, with slow
clients and oversized chunked bodies besides."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from inquiry_router.api import create_app

from .conftest import make_keys, settings_for

# A JSON document with the bad value where a text field goes ({} is replaced by it).
BAD_VALUES = {
    "NaN": b"NaN",
    "Infinity": b"-Infinity",
    "an overflowing number": b"1e999",
    "a 5,000-digit integer": b"9" * 5000,
    "a lone surrogate": b'"card \\ud800 lost"',
    "30,000 nested brackets": b"[" * 30_000 + b"]" * 30_000,
    "a NUL character": b'"my card\\u0000is lost"',
    "zero-width characters only": '"\u200b\u200d\ufeff"'.encode(),
}


def _document(field: str, value: bytes, **others: str) -> bytes:
    rest = b"".join(b", " + json.dumps({k: v})[1:-1].encode() for k, v in others.items())
    return b'{"' + field.encode() + b'": ' + value + rest + b"}"


def _stored(client: httpx.Client) -> int:
    return int(sum(client.get("/health").json()["queue"].values()))


def _assert_refused(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text}"
    body = response.json()  # valid JSON, so encodable and printable
    assert body["detail"], what
    assert len(response.text) < 2_000, f"{what}: the answer echoes the request"
    assert "9999999999" not in response.text and "[[[[" not in response.text, what


def check_hostile_requests(client: httpx.Client, inquiry_id: str) -> None:
    """The matrix: each bad value in each text field of each route that reads a body, and the
    other ways in (a form, a path, a header); nothing is stored."""
    before = _stored(client)
    targets = [
        ("/v1/inquiries", "message", {}),
        ("/v1/inquiries", "subject", {"message": "my card"}),
        ("/v1/classify", "message", {}),
        (f"/v1/desks/cards/inquiries/{inquiry_id}/claim", "agent", {}),
        (f"/v1/desks/cards/inquiries/{inquiry_id}/resolve", "resolution", {"agent": "alice"}),
    ]
    for path, field, others in targets:
        for name, value in BAD_VALUES.items():
            if field == "subject" and name == "zero-width characters only":
                continue  # a subject may be empty
            response = client.post(
                path,
                content=_document(field, value, **others),
                headers={"content-type": "application/json"},
            )
            _assert_refused(response, f"{name} as {field} to {path}")
    form = client.post(
        "/v1/inquiries",
        content=b"message=my+card%00is+lost",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _assert_refused(form, "a NUL in a form")
    assert "NUL" in json.dumps(form.json())
    for path in ("/v1/inquiries/abc%00def", "/v1/inquiries/%ED%A0%80"):
        _assert_refused(client.get(path), path)
    _assert_refused(
        client.post(
            "/v1/desks/cards/inquiries/abc%00def/claim",
            json={"agent": "alice"},
        ),
        "a NUL in a claim's path",
    )
    forged_cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x\x00y").decode()
    _assert_refused(
        client.get("/v1/desks/cards/inquiries", params={"cursor": forged_cursor}),
        "a forged cursor",
    )
    # Keys that are not keys: refused with 401, never a 500, the value not echoed.
    real = client.headers["authorization"].removeprefix("Bearer ")
    keys_that_are_not: dict[str, str | bytes] = {
        "another scheme": "Basic YWxpY2U6c2VjcmV0",
        "no key": "Bearer",
        "a 5,000-character key": "Bearer irk_" + "9" * 5000,
        "a real id with a wrong secret": "Bearer " + real[:17] + "x" * 43,
        "non-ASCII": "Bearer irk_\u00e9t\u00e9".encode("utf-8"),
    }
    for name, value in keys_that_are_not.items():
        refused = client.get("/v1/desks", headers={"authorization": value})  # type: ignore[dict-item]
        assert refused.status_code == 401, f"{name}: {refused.status_code}"
        _assert_refused(refused, name)
    too_big = client.post("/v1/inquiries", json={"message": "x" * 70_000})
    assert too_big.status_code == 413
    # A reused key answers 409 without naming the first client's inquiry.
    key = {"Idempotency-Key": f"hostile-{uuid.uuid4()}"}
    first = client.post("/v1/inquiries", json={"message": "first"}, headers=key)
    other = client.post("/v1/inquiries", json={"message": "second"}, headers=key)
    assert other.status_code == 409 and first.json()["id"] not in other.text
    # A forged Host header is not sent back as the place to follow the inquiry.
    forged = client.post(
        "/v1/inquiries", json={"message": "where is my card"}, headers={"host": "evil.example"}
    )
    assert forged.status_code == 202
    assert "evil" not in forged.json()["status_url"] and "evil" not in forged.headers["location"]
    assert forged.json()["status_url"] == f"/v1/inquiries/{forged.json()['id']}"
    assert _stored(client) == before + 2  # the two accepted ones, nothing else


def _routed_inquiry(client: httpx.Client) -> str:
    """An inquiry in the cards desk, as a worker leaves one."""
    posted = client.post("/v1/inquiries", json={"message": "My card has not arrived yet"})
    inquiry_id = str(posted.json()["id"])
    deadline = time.monotonic() + 60
    while client.get(f"/v1/inquiries/{inquiry_id}").json()["status"] != "routed":
        assert time.monotonic() < deadline, "not routed"
        time.sleep(0.1)
    return inquiry_id


def test_hostile_requests_in_process(trained_home: Path, tmp_path: Path) -> None:
    database = tmp_path / "inquiries.db"
    app = create_app(settings_for(trained_home, database_url=f"sqlite:///{database}"))
    with TestClient(app) as client:
        client.headers.update(make_keys(client.app.state.store).bearer("admin"))  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, client.get("/health").json()
            time.sleep(0.2)
        check_hostile_requests(client, _routed_inquiry(client))
