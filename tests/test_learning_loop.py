"""The learning loop: corrections desks made become training data, a retrained version is
@challenger until it proves itself against @champion on the same data, and every step is
recorded. Over TF-IDF models on a Banking77 sample: the mechanics, not the figures (those are
in docs/benchmarks.md)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from inquiry_router.lifecycle.corrections import from_corrections, held_out
from inquiry_router.routing import DeskMap
from inquiry_router.store import Correction, InquiryStore, Reroute

from .conftest import ROOT, banking77_sample, routed_inquiry, run_cli

LEFT_OUT = "card_arrival"  # the intent the first model never saw


def _correction(number: int, text: str, desk: str, intent: str | None) -> Correction:
    return Correction(
        id=number,
        inquiry_id=f"00000000-0000-0000-0000-{number:012d}",
        created_at=datetime(2026, 12, 1, 9, number),
        kind="reroute",
        message=text,
        subject=None,
        language="en",
        english_text=text,
        model_intent="card_delivery_estimate",
        model_desk="cards",
        model_confidence=0.6,
        model_name="inquiry-router",
        model_version="1",
        from_desk="card-payments",
        corrected_desk=desk,
        corrected_intent=intent,
        new_intent=False,
        by="Alice",
        note=None,
    )


def test_corrections_become_rows_keeping_the_latest_label_of_a_text() -> None:
    desks = DeskMap.from_yaml(ROOT / "data" / "desks.yaml")
    data = from_corrections(
        [
            _correction(1, "where is my card", "cards", "card_delivery_estimate"),
            _correction(2, "where is my card", "cards", "card_arrival"),  # the later one wins
            _correction(3, "my card payment failed", "card-payments", None),  # desk only
            _correction(4, "I want crypto", "cards", "crypto_question"),  # no desk has it
        ],
        desks,
    )
    labels = dict(zip(data.rows["text"], data.rows["label"], strict=True))
    assert labels["where is my card"] == "card_arrival"
    assert data.conflicts == 1 and data.without_intent == 1 and data.n == 4
    assert data.unmapped == {"crypto_question": 1}
    assert "1 older conflicting corrections of the same text dropped" in data.summary()
    # One inquiry in five is held out, always the same ones.
    ids = [f"{n:08x}-0000-0000-0000-000000000000" for n in range(1000)]
    share = sum(held_out(i) for i in ids) / len(ids)
    assert 0.15 < share < 0.25 and [held_out(i) for i in ids] == [held_out(i) for i in ids]


@pytest.mark.slow
def test_corrections_retrain_a_challenger_that_must_prove_itself(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data", tmp_path / "data", dirs_exist_ok=True)
    sample = pd.read_csv(banking77_sample(tmp_path, per_class=12))
    without = tmp_path / "without-card-arrival.csv"
    sample[sample["label"] != LEFT_OUT].to_csv(without, index=False)
    env = {
        "INQUIRY_ROUTER_RETRAIN_SOURCES": str(without),
        "INQUIRY_ROUTER_BACKGROUND_OUT_OF_SCOPE": "none",
    }
    first = run_cli(tmp_path, "retrain", "--kind", "tfidf", env=env)
    assert "version 1 trained" in first.stdout and "now @champion" in first.stdout
    assert "no corrections yet" in first.stderr

    # Desks correct the inquiries the first model could not know.
    store = InquiryStore(f"sqlite:///{tmp_path / 'data' / 'inquiries.db'}")
    texts = sample.loc[sample["label"] == LEFT_OUT, "text"].tolist()
    for text in texts:
        inquiry_id = routed_inquiry(store, text, desk="card-payments")
        store.reroute(
            "card-payments",
            inquiry_id,
            Reroute(to_desk="cards", by="Alice", intent=LEFT_OUT, note="arrival, not payment"),
        )
    store.close()
    listed = run_cli(tmp_path, "corrections", "list", "--desk", "cards", env=env)
    assert f"{len(texts)} corrections" in listed.stderr and LEFT_OUT in listed.said
    exported = tmp_path / "corrections.jsonl"
    run_cli(tmp_path, "corrections", "export", str(exported), env=env)
    rows = pd.read_json(exported, lines=True)
    assert len(rows) == len(texts) and set(rows["label"]) == {LEFT_OUT}
    assert set(rows.columns) >= {"text", "label", "desk", "model_intent", "model_version", "by"}

    second = run_cli(tmp_path, "retrain", "--kind", "tfidf", env=env)
    summary = second.stdout.strip()
    assert summary.startswith("version 2 ")
    assert len(second.stdout.strip().splitlines()) == 1  # one line, for cron's mail
    registry = f"sqlite:///{tmp_path / 'models' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    version = client.get_model_version("inquiry-router", "2")
    tags = client.get_run(version.run_id).data.tags
    used = int(tags["corrections.used"])
    # One inquiry in five is held out, by its random id: how many varies.
    assert 0 < used <= len(texts) and used + int(tags["corrections.held_out"]) == len(texts)
    # Both versions learned all of the file (refitted once their figures were taken): the
    # held-out corrections are what is left to judge them on.
    if int(tags["corrections.held_out"]):
        assert ("promoted to @champion over v1" in summary) or ("kept as @challenger" in summary)
        assert "rule: promote when the challenger's routed precision" in second.said
        assert "left out of the comparison" in second.said
    else:
        assert "@challenger, not compared" in summary and "nothing left" in second.said
    assert tags["corrections.until"].startswith("20")
    params = client.get_run(version.run_id).data.params
    assert params["sources"] == f"{without},corrections" and params["seed"] == "0"
    promoted = "promoted" in summary
    # The registered model holds the aliases (MLflow's version search leaves them empty).
    aliases = client.get_registered_model("inquiry-router").aliases
    assert aliases["champion"] == (2 if promoted else 1)
    assert ("challenger" in aliases) != promoted

    compared = run_cli(tmp_path, "models", "compare", "1", "2", env=env, check=False)
    if int(tags["corrections.held_out"]):
        assert "decision:" in compared.stdout and "cards" in compared.stdout
    else:
        assert compared.exit_code != 0 and "nothing left to compare on" in compared.said
    models = run_cli(tmp_path, "models", "list", env=env).said
    assert f"{used} corrections" in models

    # A label no desk handles stops the training, naming it and what to do.
    store = InquiryStore(f"sqlite:///{tmp_path / 'data' / 'inquiries.db'}")
    odd = routed_inquiry(store, "can I buy bitcoin with my card", desk="cards")
    store.reroute(
        "cards", odd, Reroute(to_desk="exchange", by="Bo", intent="crypto", new_intent=True)
    )
    store.close()
    refused = run_cli(tmp_path, "retrain", "--kind", "tfidf", env=env, check=False)
    assert refused.exit_code == 2
    assert "'crypto' (1 corrections)" in refused.said and "desks.yaml" in refused.said


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two TF-IDF versions: 1 @champion, 2 @challenger."""
    from inquiry_router.lifecycle.training import train
    from inquiry_router.registry import ModelRegistry

    from .conftest import settings_for

    home = tmp_path_factory.mktemp("two-versions")
    shutil.copytree(ROOT / "data", home / "data", dirs_exist_ok=True)
    data = banking77_sample(home, per_class=8)
    settings = settings_for(home, background_out_of_scope="none")
    # Neither learns all of the file (as `--no-refit`): each holds out a fifth, by its seed,
    # and a comparison has the texts neither learned from to judge them on.
    train(settings, [str(data)], kind="tfidf", refit=False)
    train(settings, [str(data)], kind="tfidf", seed=1, promote="never", refit=False)
    ModelRegistry(settings).client.set_registered_model_alias("inquiry-router", "challenger", "2")
    return home


@pytest.mark.slow
def test_shadow_mode_scores_with_the_challenger_and_reports_who_was_right(
    two_versions: Path,
) -> None:
    from inquiry_router.runtime import PipelineHolder
    from inquiry_router.worker import Worker

    from .conftest import settings_for

    tmp_path = two_versions
    settings = settings_for(tmp_path, shadow=True, background_out_of_scope="none")
    store = InquiryStore(settings.resolved_database_url)
    from inquiry_router.store import NewInquiry

    ids = [
        store.add(NewInquiry(text))[0].id
        for text in ("My card has not arrived yet", "I was charged twice for a coffee", "hi")
    ]
    holder = PipelineHolder(settings)
    holder.load()
    shadow = holder.shadow()
    assert shadow is not None and shadow.classifier.ref.version == "2"
    assert Worker(settings, store, holder).process_once() == 3
    records = [store.get(inquiry_id) for inquiry_id in ids]
    assert all(r.decision and r.decision["model_version"] == "1" for r in records)
    # The challenger's decision is kept beside the champion's; the champion's routed it.
    pairs = {p.inquiry_id: p for p in store.shadow_pairs()}
    assert {p.shadow["model_version"] for p in pairs.values()} == {"2"}

    first, second, _ = records
    store.claim(str(first.desk), first.id, "Alice")
    store.resolve(str(first.desk), first.id, "Alice", "sent a new one")  # right where it was
    elsewhere = next(d for d in ("cards", "card-payments") if d != second.desk)
    store.reroute(str(second.desk), second.id, Reroute(to_desk=elsewhere, by="Bo"))
    store.close()

    report = run_cli(tmp_path, "models", "shadow-report").said
    assert "v1 → v2" in report and " 3 " in report
    assert "2 (1)" in report  # two judged by the desks, one of them corrected


def test_the_promotion_rule_needs_precision_no_loss_and_a_gain() -> None:
    from inquiry_router.lifecycle.promotion import ModelFigures, decide

    from .conftest import settings_for

    settings = settings_for(Path("."), target_precision=0.97, promotion_tolerance=0.005)

    def model(desk_accuracy: float, routed: float, precision: float) -> ModelFigures:
        return ModelFigures("x", 100, 0.9, desk_accuracy, routed, precision, 1 - routed, None)

    champion = model(0.970, 0.90, 0.99)
    assert decide(settings, champion, model(0.975, 0.90, 0.99))[0]  # more accurate
    assert decide(settings, champion, model(0.967, 0.93, 0.98))[0]  # more routed, small loss
    imprecise, reasons = decide(settings, champion, model(0.98, 0.95, 0.96))
    assert not imprecise and "0.9600 < 0.970" in reasons[0]
    worse, reasons = decide(settings, champion, model(0.96, 0.95, 0.99))
    assert not worse and "beyond the 0.005 tolerance" in reasons[1]
    same, reasons = decide(settings, champion, model(0.970, 0.90, 0.99))
    assert not same and "neither" in reasons[2]


@pytest.mark.slow
def test_the_lead_sees_corrections_weeks_and_versions_and_promotes_from_the_page(
    two_versions: Path,
) -> None:
    import re

    from fastapi.testclient import TestClient

    from inquiry_router.api import create_app
    from inquiry_router.registry import ModelRegistry

    from .conftest import settings_for

    settings = settings_for(two_versions, background_out_of_scope="none")
    with TestClient(create_app(settings, run_worker=False), follow_redirects=False) as browser:
        store: InquiryStore = browser.app.state.store  # type: ignore[attr-defined]
        wrong = routed_inquiry(store, "my cash withdrawal was charged", desk="cards")
        store.reroute(
            "cards", wrong, Reroute(to_desk="cash", by="Alice", intent="cash_withdrawal_charge")
        )
        _, admin = store.keys.create("Lea (lead)", admin=True)
        _, desk = store.keys.create("Alice", desk="cards")

        def csrf_of(text: str) -> str:
            found = re.search(r'name="csrf_token" value="([^"]+)"', text)
            assert found, "no CSRF token on the page"
            return found.group(1)

        def sign_in(token: str) -> str:
            browser.post(
                "/sign-in", data={"key": token, "csrf_token": csrf_of(browser.get("/").text)}
            )
            lead = browser.get("/lead")
            return lead.text if lead.status_code == 200 else str(lead.status_code)

        assert sign_in(desk) == "403"  # a desk key is not a lead's
        browser.post("/sign-out", data={"csrf_token": csrf_of(browser.get("/desks/cards").text)})
        page = sign_in(admin)
        assert "cards → cash" in page and "card_arrival" in page  # by desk, by the model's intent
        assert "@champion" in page and "@challenger" in page
        assert "<svg" in page and "week of" in page
        csrf = csrf_of(page)

        compared = browser.post("/lead/compare", data={"csrf_token": csrf})
        assert compared.status_code == 200 and "Rule: promote when" in compared.text
        promoted = browser.post(
            "/lead/promote", data={"csrf_token": csrf, "version": "2", "reason": "better on cards"}
        )
        assert promoted.status_code == 303
        registry = ModelRegistry(settings)
        assert registry.champion("inquiry-router") == "2"
        tags = registry.client.get_model_version("inquiry-router", "2").tags
        assert tags["promoted_by"] == "Lea (lead)" and tags["promoted_why"] == "better on cards"
        assert browser.post("/lead/rollback", data={"csrf_token": csrf}).status_code == 303
        assert registry.champion("inquiry-router") == "1"
        missing = browser.post("/lead/promote", data={"csrf_token": csrf, "version": "9"})
        assert missing.status_code == 400 and "no version" in missing.text
    registry.client.set_registered_model_alias("inquiry-router", "challenger", "2")  # as found
