"""Who may do what, in process (TestClient over the real app and store; no model needed):
every route of the app by every kind of caller, keys, the rate limit on intake, reroute,
release and the history and corrections they leave."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from inquiry_router.api import create_app
from inquiry_router.api.auth import POLICY, Access, RateLimiter, routes_of
from inquiry_router.store import InquiryStore

from .conftest import ROOT, Keys, make_keys, routed_inquiry, run_cli, settings_for

ROLES = ("none", "cards", "payments", "triage", "admin", "revoked")
OK, STATUS_ONLY, SIGN_IN = "allowed", "status only", "sign in"
# What each kind of caller gets from a route under each rule, for an inquiry in desk cards.
EXPECTED: dict[Access, dict[str, str | int]] = {
    Access.PUBLIC: dict.fromkeys(ROLES, OK),
    Access.INTAKE: dict.fromkeys(ROLES, OK),
    Access.SIGN_IN: dict.fromkeys(ROLES, OK),
    Access.INQUIRY: {
        "none": STATUS_ONLY,
        "cards": OK,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": 401,
    },
    Access.INQUIRY_KEY: {
        "none": 401,
        "cards": OK,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": 401,
    },
    Access.ANY_KEY: {**dict.fromkeys(ROLES, OK), "none": 401, "revoked": 401},
    Access.DESK: {
        "none": 401,
        "cards": OK,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": 401,
    },
    Access.ADMIN: {
        "none": 401,
        "cards": 403,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": 401,
    },
    Access.PAGE: {**dict.fromkeys(ROLES, OK), "none": SIGN_IN, "revoked": SIGN_IN},
    Access.PAGE_ADMIN: {
        "none": SIGN_IN,
        "cards": 403,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": SIGN_IN,
    },
    Access.PAGE_DESK: {
        "none": SIGN_IN,
        "cards": OK,
        "payments": 403,
        "triage": 403,
        "admin": OK,
        "revoked": SIGN_IN,
    },
}


# What each route is meant to allow, written here and not read from the code: a new route
# fails the matrix until it is added to both this table and auth.POLICY.
MEANT: dict[str, Access] = {
    "health": Access.PUBLIC,
    "create_inquiry": Access.INTAKE,
    "get_inquiry": Access.INQUIRY,
    "inquiry_events": Access.INQUIRY_KEY,
    "classify": Access.ANY_KEY,
    "list_desks": Access.ANY_KEY,
    "desk_queue": Access.DESK,
    "claim_inquiry": Access.DESK,
    "release_inquiry": Access.DESK,
    "resolve_inquiry": Access.DESK,
    "reroute_inquiry": Access.DESK,
    "list_corrections": Access.ADMIN,
    "page_home": Access.SIGN_IN,
    "page_sign_in": Access.SIGN_IN,
    "page_sign_out": Access.PAGE,
    "page_queue": Access.PAGE_DESK,
    "page_inquiry": Access.PAGE_DESK,
    "page_action": Access.PAGE_DESK,
    "page_lead": Access.PAGE_ADMIN,
    "page_lead_promote": Access.PAGE_ADMIN,
    "page_lead_rollback": Access.PAGE_ADMIN,
    "page_lead_compare": Access.PAGE_ADMIN,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("access")


@pytest.fixture(scope="module")
def app(home: Path) -> FastAPI:
    settings = settings_for(
        home,
        database_url=f"sqlite:///{home / 'inquiries.db'}",
        desks_file=ROOT / "data" / "desks.yaml",
        model_name="no-model-here",  # routes and rules need no model: /health says 503
    )
    return create_app(settings, run_worker=False)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as running:
        yield running


@pytest.fixture(scope="module")
def store(client: TestClient) -> InquiryStore:
    return client.app.state.store  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module")
def keys(store: InquiryStore) -> Keys:
    return make_keys(store)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def _page_csrf(browser: TestClient) -> str:
    """The CSRF token of the page this browser lands on: its desk, or the sign-in form."""
    landing = browser.get("/")
    if landing.status_code == 303:
        landing = browser.get(landing.headers["location"])
    return _csrf(landing.text)


def _signed_in(app: FastAPI, token: str | None) -> TestClient:
    """A browser of its own (its own cookies), signed in with ``token`` when given."""
    browser = TestClient(app, follow_redirects=False)
    if token is not None:
        signed = browser.post(
            "/sign-in", data={"key": token, "csrf_token": _csrf(browser.get("/").text)}
        )
        assert signed.status_code == 303, signed.text
    return browser


def test_every_route_answers_each_caller_as_its_rule_says(
    app: FastAPI, store: InquiryStore, keys: Keys
) -> None:
    inquiry_id = routed_inquiry(store, "My card has not arrived", email="ann@example.com")
    browsers: dict[str, TestClient] = {}
    headers: dict[str, dict[str, str]] = {"none": {}}
    for role in ROLES[1:-1]:
        browsers[role] = _signed_in(app, getattr(keys, role))
        headers[role] = keys.bearer(role)
    # Signed in, then revoked: the session stops working at once.
    leaving, token = store.keys.create("Lee (leaving)", desk="cards")
    browsers["revoked"] = _signed_in(app, token)
    store.keys.revoke(leaving.id)
    headers["revoked"] = {"Authorization": f"Bearer {token}"}
    browsers["none"] = _signed_in(app, None)

    # The app's route table, through the routers it includes; signing out last.
    routes = sorted(routes_of(app), key=lambda route: route.name == "page_sign_out")
    assert len(routes) >= len(MEANT)
    without_rule = sorted(r.name for r in routes if r.name not in POLICY)
    assert not without_rule, f"routes without an access rule in auth.POLICY: {without_rule}"
    unplanned = sorted(r.name for r in routes if r.name not in MEANT)
    assert not unplanned, f"routes this test does not know what to expect of: {unplanned}"
    checked = 0
    for route in routes:
        path = route.path.format(desk="cards", inquiry_id=inquiry_id, action="claim")
        for method in sorted(route.methods):
            rule = MEANT[route.name]
            for role in ROLES:
                browser = browsers[role]
                is_page = rule in (Access.PAGE, Access.PAGE_DESK, Access.PAGE_ADMIN, Access.SIGN_IN)
                kwargs: dict[str, Any] = {"headers": headers[role]}
                if method == "POST" and is_page:
                    csrf = _page_csrf(browser)
                    kwargs = {"data": {"csrf_token": csrf}}
                    if route.name == "page_sign_in":  # signing in with the role's own key
                        kwargs["data"]["key"] = headers[role].get("Authorization", "")[7:]
                elif method == "POST":
                    kwargs["json"] = {}
                answer = browser.request(method, path, **kwargs)
                expected = EXPECTED[rule][role]
                if route.name == "page_sign_in" and role in ("none", "revoked"):
                    expected = 401  # no key, or a revoked one: the form says so
                what = f"{method} {route.path} as {role}: {answer.status_code} {answer.text[:200]}"
                no_model = answer.status_code == 503 and route.name in ("health", "classify")
                assert answer.status_code < 500 or no_model, what
                if expected == OK:
                    assert answer.status_code not in (401, 403), what
                    assert answer.headers.get("location") != "/", what
                elif expected == STATUS_ONLY:
                    assert answer.status_code == 200 and answer.json().keys() == {"id", "status"}
                elif expected == SIGN_IN:
                    assert answer.status_code == 303 and answer.headers["location"] == "/", what
                else:
                    assert answer.status_code == expected, what
                checked += 1
    assert checked >= len(routes) * len(ROLES)
    # The documents and files no key guards.
    for path in ("/openapi.json", "/docs", "/static/desk.js", "/static/desk.css"):
        assert browsers["none"].get(path).status_code == 200, path


def test_keys_are_made_listed_and_revoked_from_the_command_line(
    home: Path, client: TestClient
) -> None:
    env = {"INQUIRY_ROUTER_DATABASE_URL": f"sqlite:///{home / 'inquiries.db'}"}
    created = run_cli(home, "keys", "create", "--desk", "cards", "--name", "Carla", env=env)
    token = created.stdout.strip()
    assert re.fullmatch(r"irk_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", token), created.stdout
    assert "shown once" in created.stderr
    assert client.get("/v1/desks", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    listed = run_cli(home, "keys", "list", env=env)
    assert "Carla" in listed.said and "desk:cards" in listed.said
    assert token not in listed.stdout and token[17:] not in listed.stdout
    key_id = token[4:16]
    assert key_id in listed.stdout

    revoked = run_cli(home, "keys", "revoke", key_id, env=env)
    assert f"revoked key {key_id}" in revoked.stdout
    refused = client.get("/v1/desks", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == "Bearer"

    unknown = run_cli(home, "keys", "create", "--desk", "nope", "--name", "X", env=env, check=False)
    assert unknown.exit_code == 2 and "no desk 'nope'" in unknown.said and "cards" in unknown.said
    neither = run_cli(home, "keys", "create", "--name", "X", env=env, check=False)
    assert neither.exit_code == 2 and "--desk NAME or --admin" in neither.said
    missing = run_cli(home, "keys", "revoke", "0123456789ab", env=env, check=False)
    assert missing.exit_code == 2 and "no key" in missing.said


def test_the_first_start_writes_an_admin_key_only_its_owner_can_read(
    home: Path, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    path = home / "data" / "admin.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    listed = client.get("/v1/corrections", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    # A second start of the same database makes no other admin key.
    with TestClient(client.app):  # type: ignore[arg-type]
        pass
    assert path.read_text().strip() == token


def test_an_inquiry_shows_only_its_status_without_a_key(
    client: TestClient, store: InquiryStore, keys: Keys
) -> None:
    inquiry_id = routed_inquiry(store, "Where is my card?", email="private@example.com")
    public = client.get(f"/v1/inquiries/{inquiry_id}")
    assert public.json() == {"id": inquiry_id, "status": "routed"}
    assert "private@example.com" not in public.text and "card" not in public.text
    full = client.get(f"/v1/inquiries/{inquiry_id}", headers=keys.bearer("cards")).json()
    assert full["email"] == "private@example.com" and full["decision"]["intent"]


def test_intake_is_rate_limited_per_client_address(home: Path) -> None:
    settings = settings_for(
        home,
        database_url=f"sqlite:///{home / 'limited.db'}",
        desks_file=ROOT / "data" / "desks.yaml",
        model_name="no-model-here",
        intake_rate_limit="3/minute",
    )
    with TestClient(create_app(settings, run_worker=False)) as limited:
        answers = [limited.post("/v1/inquiries", json={"message": f"card {n}"}) for n in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        refused = answers[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "3 per 1 minute" in refused.json()["detail"]
        assert sum(limited.app.state.store.status_counts().values()) == 3  # type: ignore[attr-defined]
        # Others are not held back by one address: the desks' API has no such limit.
        assert limited.get("/health").status_code in (200, 503)


def test_a_trickle_of_requests_starts_no_thread_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`limits`' memory storage started a timer thread whenever none was running: nearly one
    per request at 100 requests a second. The limiter still counts, and still refuses."""
    import threading
    import time

    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread)
        original(thread)

    # Per hour: a sliding window of a second forgets part of its count when a loaded machine
    # stretches the sleeps below, and the sixth request then passed.
    limiter = RateLimiter("5/hour")
    monkeypatch.setattr(threading.Thread, "start", counting)
    for _ in range(4):  # each after the previous timer (10 ms) would have ended
        limiter.check("intake", "10.0.0.1")
        time.sleep(0.03)
    assert started == []
    limiter.check("intake", "10.0.0.1")
    with pytest.raises(HTTPException) as refused:
        limiter.check("intake", "10.0.0.1")
    assert refused.value.status_code == 429
    limiter.check("intake", "10.0.0.2")  # another address is not held back


def test_a_reroute_moves_the_inquiry_and_records_the_correction(
    client: TestClient, store: InquiryStore, keys: Keys
) -> None:
    inquiry_id = routed_inquiry(store, "A payment I do not recognise", email="x@example.com")
    base = f"/v1/desks/cards/inquiries/{inquiry_id}"
    cards, payments, admin = keys.bearer("cards"), keys.bearer("payments"), keys.bearer("admin")
    assert client.post(f"{base}/claim", headers=cards).status_code == 200

    def reroute(body: dict[str, Any], who: dict[str, str] = cards) -> Any:
        return client.post(f"{base}/reroute", json=body, headers=who)

    unknown = reroute({"to_desk": "nowhere"})
    assert unknown.status_code == 400 and "no desk 'nowhere'" in unknown.json()["detail"]
    same = reroute({"to_desk": "cards"})
    assert same.status_code == 400 and "already in desk 'cards'" in same.json()["detail"]
    wrong_intent = reroute({"to_desk": "card-payments", "intent": "card_arrival"})
    assert wrong_intent.status_code == 400
    assert "handled by desk 'cards'" in wrong_intent.json()["detail"]
    assert reroute({"to_desk": "triage", "intent": "card_arrival"}).status_code == 400
    assert reroute({"to_desk": "card-payments", "intent": "no spaces"}).status_code == 422
    assert reroute({"to_desk": "card-payments"}, payments).status_code == 403
    assert client.get(f"/v1/desks/cards/inquiries/{inquiry_id}", headers=cards).status_code == 404

    moved = reroute(
        {"to_desk": "card-payments", "intent": "card_payment_not_recognised", "note": "a payment"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["desk"] == "card-payments" and moved.json()["status"] == "routed"
    assert moved.json()["claimed_by"] is None
    waiting = client.get("/v1/desks/card-payments/inquiries", headers=payments).json()
    assert inquiry_id in [item["id"] for item in waiting["items"]]
    mine = client.get("/v1/desks/cards/inquiries?status=claimed", headers=cards).json()
    assert inquiry_id not in [item["id"] for item in mine["items"]]
    # It was in cards: cards still sees it and its history.
    assert client.get(f"/v1/inquiries/{inquiry_id}", headers=cards).status_code == 200
    history = client.get(f"/v1/inquiries/{inquiry_id}/events", headers=cards).json()["events"]
    assert [e["kind"] for e in history] == ["received", "routed", "claimed", "rerouted"]
    assert history[1]["data"]["model_version"] == "1" and history[1]["desk"] == "cards"
    assert history[3]["actor"] == "Alice"
    assert history[3]["data"] == {
        "from_desk": "cards",
        "to_desk": "card-payments",
        "intent": "card_payment_not_recognised",
        "new_intent": False,
        "note": "a payment",
    }

    # A label the model does not know yet is kept as given and marked new.
    novel = client.post(
        f"/v1/desks/card-payments/inquiries/{inquiry_id}/reroute",
        json={"to_desk": "cards", "intent": "crypto_card_question"},
        headers=payments,
    )
    assert novel.status_code == 200, novel.text
    corrections = client.get("/v1/corrections", headers=admin).json()["items"]
    ours = [c for c in corrections if c["inquiry_id"] == inquiry_id]
    assert [(c["from_desk"], c["corrected_desk"], c["new_intent"]) for c in ours] == [
        ("cards", "card-payments", False),
        ("card-payments", "cards", True),
    ]
    first = ours[0]
    assert first["message"] == "A payment I do not recognise" and first["by"] == "Alice"
    assert first["model_intent"] == "card_arrival" and first["model_desk"] == "cards"
    assert first["model_confidence"] == 0.9 and first["model_version"] == "1"
    assert first["corrected_intent"] == "card_payment_not_recognised" and first["kind"] == "reroute"
    assert first["created_at"].endswith("Z") and history[0]["at"].endswith("Z")  # UTC, said so
    assert "x@example.com" not in str(corrections)  # the sender's address is not copied
    assert client.get("/v1/corrections", headers=cards).status_code == 403


def test_the_triage_desk_sending_an_inquiry_on_is_a_correction_of_its_own_kind(
    client: TestClient, store: InquiryStore, keys: Keys
) -> None:
    inquiry_id = routed_inquiry(store, "hmm, about my card", desk="triage", auto_routed=False)
    sent = client.post(
        f"/v1/desks/triage/inquiries/{inquiry_id}/reroute",
        json={"to_desk": "cards"},
        headers=keys.bearer("triage"),
    )
    assert sent.status_code == 200, sent.text
    corrections = client.get("/v1/corrections?limit=1000", headers=keys.bearer("admin")).json()
    (ours,) = [c for c in corrections["items"] if c["inquiry_id"] == inquiry_id]
    assert ours["kind"] == "triage" and ours["corrected_desk"] == "cards"
    assert ours["corrected_intent"] is None and ours["by"] == "Tess"


def test_release_gives_a_claim_back_and_resolving_needs_the_claim(
    client: TestClient, store: InquiryStore, keys: Keys
) -> None:
    inquiry_id = routed_inquiry(store, "My card is blocked")
    base = f"/v1/desks/cards/inquiries/{inquiry_id}"
    cards = keys.bearer("cards")
    unclaimed = client.post(f"{base}/resolve", json={"resolution": "done"}, headers=cards)
    assert unclaimed.status_code == 409 and "claim it before" in unclaimed.json()["detail"]
    assert client.post(f"{base}/release", headers=cards).status_code == 409  # not claimed
    assert client.post(f"{base}/claim", json={"agent": "Alice"}, headers=cards).status_code == 200
    by_other = client.post(f"{base}/release", json={"agent": "Carl"}, headers=cards)
    assert by_other.status_code == 409 and "claimed by 'Alice'" in by_other.json()["detail"]
    released = client.post(f"{base}/release", headers=cards)
    assert released.status_code == 200 and released.json()["status"] == "routed"
    assert released.json()["claimed_by"] is None
    client.post(f"{base}/claim", headers=cards)
    done = client.post(f"{base}/resolve", json={"resolution": "unblocked"}, headers=cards)
    assert done.status_code == 200 and done.json()["resolution"] == "unblocked"
    kinds = [
        e["kind"]
        for e in client.get(f"/v1/inquiries/{inquiry_id}/events", headers=cards).json()["events"]
    ]
    assert kinds == ["received", "routed", "claimed", "released", "claimed", "resolved"]
