"""The desk page in a real browser (Debian's chromium, driven by Playwright) against a real
server: sign in, see a routed inquiry and why, claim, reroute with an intent and see it arrive
in the other desk, resolve with a note; HTML in a message shows as text; a wrong key and
another desk's page are refused. Screenshots go to $INQUIRY_ROUTER_SCREENSHOTS when set."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inquiry_router.store import InquiryStore

from .conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    message = "Debian's chromium is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{message}, though `make setup` installs it as root: run `make setup`")
    pytest.skip(f"{message} (`make setup` installs it as root)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    store = InquiryStore(server.env["INQUIRY_ROUTER_DATABASE_URL"])
    made = {
        "cards": store.keys.create("Alice", desk="cards")[1],
        "payments": store.keys.create("Bob", desk="card-payments")[1],
        "admin": store.keys.create("Ada", admin=True)[1],
    }
    store.close()
    return made


def _post(server: Server, message: str, **fields: str) -> str:
    posted = httpx.post(f"{server.url}/v1/inquiries", json={"message": message, **fields})
    assert posted.status_code == 202, posted.text
    inquiry_id = str(posted.json()["id"])
    server.wait_routed(inquiry_id)
    return inquiry_id


def _sign_in(browser, server: Server, token: str):  # type: ignore[no-untyped-def]
    """A new browser context (its own cookies) signed in with the keyboard alone."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(server.url + "/")
    for _ in range(5):  # reach the key field with Tab (past the skip link)
        if page.evaluate("document.activeElement && document.activeElement.id") == "key":
            break
        page.keyboard.press("Tab")
    page.keyboard.type(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return page


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("INQUIRY_ROUTER_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_an_agent_claims_reroutes_and_another_desk_resolves(
    browser, server: Server, tokens: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    inquiry_id = _post(
        server, "I lost my card yesterday, please block it", subject="Lost card", locale="en-GB"
    )
    assert server.wait_routed(inquiry_id)["desk"] == "cards"

    wrong = browser.new_page()
    wrong.goto(server.url + "/")
    wrong.get_by_label("Desk or admin key").fill("irk_0123456789ab_not-a-key")
    wrong.get_by_role("button", name="Sign in").click()
    assert "not valid" in wrong.get_by_role("alert").inner_text()
    wrong.close()

    alice = _sign_in(browser, server, tokens["cards"])
    assert alice.url.endswith("/desks/cards")
    assert "Signed in as Alice" in alice.inner_text("header")
    row = alice.locator(f'tr[data-inquiry="{inquiry_id}"]')
    assert "Lost card" in row.inner_text()
    _shot(alice, "desk-queue.png")
    row.get_by_role("link").click()
    alice.wait_for_load_state()
    assert "routed it to cards" in alice.inner_text("main")
    assert "I lost my card yesterday" in alice.inner_text(".message")
    assert "received" in alice.inner_text(".history") and "routed" in alice.inner_text(".history")

    claim = alice.get_by_role("button", name="Claim")
    claim.focus()
    alice.keyboard.press("Enter")  # with the keyboard
    alice.wait_for_load_state()
    assert "Claimed" in alice.get_by_role("status").inner_text()
    assert "claimed by Alice" in alice.inner_text("main")
    _shot(alice, "desk-inquiry.png")

    # The intent picker offers only what the chosen desk handles.
    alice.get_by_label("Desk", exact=True).select_option("card-payments")
    visible = alice.locator("#intent optgroup:not([hidden])")
    assert visible.count() == 1 and visible.get_attribute("label") == "card-payments"
    alice.get_by_role("combobox", name=re.compile("^Intent")).select_option(
        "card_payment_not_recognised"
    )
    alice.get_by_label("Note", exact=True).fill("it is about a payment")
    alice.get_by_role("button", name="Reroute").click()
    alice.wait_for_load_state()
    assert "Sent to card-payments as card_payment_not_recognised" in alice.inner_text("main")
    assert alice.locator(f'tr[data-inquiry="{inquiry_id}"]').count() == 0
    # Another desk's page is not Alice's to open.
    refused = alice.goto(server.url + "/desks/card-payments")
    assert refused is not None and refused.status == 403
    assert "cannot act for desk 'card-payments'" in alice.get_by_role("alert").inner_text()

    bob = _sign_in(browser, server, tokens["payments"])
    assert bob.url.endswith("/desks/card-payments")
    bob.locator(f'tr[data-inquiry="{inquiry_id}"]').get_by_role("link").click()
    bob.wait_for_load_state()
    history = bob.inner_text(".history")
    assert "rerouted from cards to card-payments as card_payment_not_recognised by Alice" in history
    assert "it is about a payment" in history
    bob.get_by_role("button", name="Claim").click()
    bob.wait_for_load_state()
    bob.get_by_label("Resolution note").fill("refund started")
    bob.get_by_role("button", name="Resolve").click()
    bob.wait_for_load_state()
    assert "Resolved" in bob.get_by_role("status").inner_text()
    answer = httpx.get(
        f"{server.url}/v1/inquiries/{inquiry_id}",
        headers={"Authorization": f"Bearer {tokens['payments']}"},
    ).json()
    assert answer["status"] == "resolved" and answer["resolution"] == "refund started"

    # New inquiries appear in an open queue without a reload.
    bob.goto(server.url + "/desks/card-payments")
    fresh = _post(server, "I was charged a fee for paying with my card in a shop")
    _move(server, tokens, fresh, "card-payments")
    bob.locator(f'tr[data-inquiry="{fresh}"]').wait_for(timeout=10_000)


def _move(server: Server, tokens: dict[str, str], inquiry_id: str, desk: str) -> None:
    """Put a routed inquiry in ``desk``, as an admin would."""
    now = str(server.wait_routed(inquiry_id)["desk"])
    if now != desk:
        moved = httpx.post(
            f"{server.url}/v1/desks/{now}/inquiries/{inquiry_id}/reroute",
            json={"to_desk": desk},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert moved.status_code == 200, moved.text


def test_triage_sends_an_inquiry_on_with_one_of_the_models_suggestions(
    browser, server: Server, tokens: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    inquiry_id = _post(server, "My card payment did not go through at the shop")
    _move(server, tokens, inquiry_id, "triage")
    admin = _sign_in(browser, server, tokens["admin"])
    admin.goto(server.url + "/desks/triage")
    suggestions = admin.locator(f'tr[data-inquiry="{inquiry_id}"] button.suggestion')
    assert 1 <= suggestions.count() <= 3
    label = suggestions.first.get_attribute("aria-label") or ""
    chosen = re.match(r"Send to (\S+) \(", label)
    assert chosen, label
    suggestions.first.click()
    admin.wait_for_load_state()
    assert f"Sent to {chosen.group(1)}" in admin.get_by_role("status").inner_text()
    corrections = httpx.get(
        f"{server.url}/v1/corrections?limit=1000",
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    ).json()["items"]
    ours = [c for c in corrections if c["inquiry_id"] == inquiry_id and c["kind"] == "triage"]
    assert [c["corrected_desk"] for c in ours] == [chosen.group(1)]


def test_html_in_a_message_is_shown_as_text(
    browser, server: Server, tokens: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    script = '<script>alert("x")</script><img src=x onerror=alert(1)> my card was stolen'
    inquiry_id = _post(server, script, subject="<b>bold</b> card")
    desk = str(server.wait_routed(inquiry_id)["desk"])
    admin = _sign_in(browser, server, tokens["admin"])
    admin.goto(f"{server.url}/desks/{desk}/inquiries/{inquiry_id}")
    assert admin.inner_text(".message").startswith('<script>alert("x")</script><img src=x')
    assert admin.locator("main h1").inner_text() == "<b>bold</b> card"
    assert admin.locator("main script, main img, main b").count() == 0
    policy = httpx.get(server.url + "/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # An admin switches between desks.
    links = admin.get_by_role("navigation", name="Desks").get_by_role("link")
    assert {"cards", "card-payments", "triage"} <= set(links.all_inner_texts())
    assert re.search(r"/desks/", admin.url)
