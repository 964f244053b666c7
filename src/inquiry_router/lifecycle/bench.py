"""Benchmarks: the figures behind every default, printed by ``inquiry-router bench ...``.

Each function returns plain rows (dicts) so the CLI can print them and tests can check them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import f1_score

from ..config import Settings
from ..datasets import DatasetStore, XsidSentence, load_banking77, load_xsid, xsid_languages
from ..domain import InquiryText, ModelRef, Reading, reading_for
from ..language import BACKENDS, LanguageDetector, make_backend
from ..pipeline import assemble, build_detector, build_pipeline, warm_up
from ..translation import build_translator

if TYPE_CHECKING:
    from ..classifier.models import CalibratedEnsemble

Progress = Callable[[str], None]

# xSID's dialect files have no code of their own in any detector; their standard language is what
# a router should say (a Bavarian message goes to whoever reads German).
XSID_GOLD = {"de-st": "de", "de-ba": "de", "gsw": "de", "nap": "it"}


def xsid_gold(language: str) -> str:
    return XSID_GOLD.get(language, language)


def load_all_xsid(settings: Settings, languages: Sequence[str] | None = None) -> list[XsidSentence]:
    store = DatasetStore(settings)
    sentences: list[XsidSentence] = []
    for language in languages or xsid_languages():
        sentences.extend(load_xsid(store, language))
    return sentences


def bench_classify(
    settings: Settings, model_uri: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """The champion pipeline on Banking77's official test set: quality and throughput, the
    latter once warmed up as the service is before it reports ready."""
    pipeline = build_pipeline(settings, model_uri)
    warm_up(pipeline)
    test = load_banking77(DatasetStore(settings)).test
    assert test is not None
    if limit:
        test = test.head(limit)
    texts, gold = test["text"].tolist(), test["label"].tolist()
    started = time.perf_counter()
    decisions = []
    for start in range(0, len(texts), 1024):  # as `classify --input` does
        decisions.extend(pipeline.run([InquiryText(t) for t in texts[start : start + 1024]]))
    seconds = time.perf_counter() - started

    desk_map = pipeline.router.desk_map
    gold_desks = [desk_map.desk_for(label) for label in gold]
    predicted = [d.intent for d in decisions]
    auto = [i for i, d in enumerate(decisions) if d.auto_routed]
    return {
        "model": f"{pipeline.classifier.ref.name} v{pipeline.classifier.ref.version}",
        "n": len(texts),
        "accuracy": sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold),
        "macro_f1": float(f1_score(gold, predicted, average="macro")),
        "desk_accuracy_top_intent": sum(
            desk_map.desk_for(p) == g for p, g in zip(predicted, gold_desks, strict=True)
        )
        / len(gold),
        "auto_routed_coverage": len(auto) / len(gold),
        "auto_routed_desk_precision": (
            sum(decisions[i].desk == gold_desks[i] for i in auto) / len(auto) if auto else 0.0
        ),
        "threshold": pipeline.router.threshold,
        "seconds": seconds,
        "inquiries_per_s": len(texts) / seconds,
    }


def bench_language(
    settings: Settings,
    backends: Sequence[str] | None = None,
    restrict: Sequence[str] = (),
    progress: Progress = lambda _message: None,
) -> list[dict[str, Any]]:
    """Every backend on every xSID validation sentence: per-language accuracy and speed."""
    sentences = load_all_xsid(settings)
    rows = []
    for name in backends or list(BACKENDS):
        progress(f"{name}: loading")
        started = time.perf_counter()
        backend = make_backend(name, restrict)
        load_seconds = time.perf_counter() - started
        detector = LanguageDetector(backend, confidence_floor=0.0, short_text_chars=0)
        progress(f"{name}: {len(sentences):,} sentences")
        started = time.perf_counter()
        guesses = detector.detect_batch([s.text for s in sentences])
        seconds = time.perf_counter() - started
        supported: set[str] | None = getattr(backend, "supported", None)
        correct: Counter[str] = Counter()
        total: Counter[str] = Counter()
        confusions: dict[str, Counter[str]] = defaultdict(Counter)
        for sentence, guess in zip(sentences, guesses, strict=True):
            gold = xsid_gold(sentence.language)
            total[sentence.language] += 1
            if guess.language == gold:
                correct[sentence.language] += 1
            else:
                confusions[sentence.language][guess.language] += 1
        per_language = {language: correct[language] / total[language] for language in total}
        standard = [
            language
            for language in total
            if language not in XSID_GOLD
            and (supported is None or xsid_gold(language) in supported)
            and (not restrict or language in restrict)
        ]
        rows.append(
            {
                "backend": name,
                "accuracy_supported": sum(correct[x] for x in standard)
                / max(1, sum(total[x] for x in standard)),
                "languages_supported": sorted(standard),
                "per_language": per_language,
                "confusions": {
                    language: counter.most_common(2) for language, counter in confusions.items()
                },
                "messages_per_s": len(sentences) / seconds,
                "load_seconds": load_seconds,
                "n": len(sentences),
            }
        )
    return rows


def bench_translation(
    settings: Settings,
    languages: Sequence[str] | None = None,
    progress: Progress = lambda _message: None,
) -> list[dict[str, Any]]:
    """Each engine on each xSID language it covers: chrF and BLEU against the gold English, and
    speed. The row with engine "none" scores the untranslated text, the floor to beat."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    translator = build_translator(settings)
    store = DatasetStore(settings)
    rows = []
    for language in languages or [code for code in xsid_languages() if code != "en"]:
        sentences = load_xsid(store, language)
        references = [s.text_en for s in sentences]
        source = xsid_gold(language)
        candidates: list[tuple[str, Any]] = [("none", None)]
        candidates += [
            (engine.name, engine) for engine in translator.engines if source in engine.languages()
        ]
        for name, engine in candidates:
            progress(f"{language}: {name} on {len(sentences)} sentences")
            started = time.perf_counter()
            texts = [s.text for s in sentences]
            hypotheses = texts if engine is None else engine.translate_batch(texts, source)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "language": language,
                    "engine": name,
                    "chrf": CHRF().corpus_score(hypotheses, [references]).score,
                    # xSID's English is tokenized ("today ?"); score it as given.
                    "bleu": BLEU(force=True).corpus_score(hypotheses, [references]).score,
                    "sentences_per_s": len(texts) / seconds if engine is not None else None,
                    "n": len(texts),
                }
            )
    return rows


def bench_untranslated_routing(
    settings: Settings,
    languages: Sequence[str] | None = None,
    folds: int = 5,
    kind: str = "tfidf",
    progress: Progress = lambda _message: None,
) -> list[dict[str, Any]]:
    """How much translation matters to the classifier, on xSID: a model of ``kind`` trained by
    the training recipe (calibration, foreign-text members, threshold against the background
    off-topic examples ``train`` uses) on
    the English sentences of four folds is scored on the fifth fold's sentences in each
    language, as written, as translated and both together (as the router reads a translated
    inquiry), never on a sentence whose English it saw. "as written" reads each sentence
    knowing its language; "detected" as the router does, by the language it detects (foreign,
    English, or undetermined and read both ways). Per
    language and variant: intent accuracy, and the share routed automatically (confidence at or
    above the model's triage threshold, its foreign-text one for text not written in English)
    with the precision of those."""
    from ..classifier import TextClassifier
    from ..routing import DeskMap
    from .training import out_of_scope_for, translated_validation

    encoder = _recipe_encoder(settings, kind, progress)
    translator = build_translator(settings)
    store = DatasetStore(settings)
    english = load_xsid(store, "en")
    # As `train --data mine.csv` would: the data has no off-topic rows of its own.
    out_of_scope = out_of_scope_for(settings, store, [], [], progress)
    fold_of = {index: index % folds for index in range(len(english))}
    wanted = languages or [code for code in xsid_languages() if code != "en"]
    by_language = {language: load_xsid(store, language) for language in ["en", *wanted]}
    detector = build_detector(settings)
    # As the router reads untranslated text: by the language detected in it.
    detected = {
        language: [
            reading_for(guess.language)
            for guess in detector.detect_batch([s.text for s in sentences])
        ]
        for language, sentences in by_language.items()
    }
    translated: dict[str, list[str] | None] = {}
    for language in wanted:
        texts = [s.text for s in by_language[language]]
        guesses = [xsid_gold(language)] * len(texts)
        results = translator.translate_batch(texts, guesses)
        translated[language] = (
            [r.english_text for r in results] if any(r.translated for r in results) else None
        )
    counts: dict[tuple[str, str], Counter[str]] = {}
    for fold in range(folds):
        progress(f"fold {fold + 1}/{folds}")
        train_ids = [i for i in fold_of if fold_of[i] != fold]
        model = _recipe_model(settings, kind, encoder).fit(
            [english[i].text for i in train_ids],
            [english[i].intent for i in train_ids],
            out_of_scope=out_of_scope.tuning,
            out_of_scope_share=out_of_scope.share,
            translate_validation=lambda texts: translated_validation(texts, progress),
        )
        # Routed as the service routes, each intent its own desk.
        pipeline = assemble(
            settings,
            TextClassifier(model, ModelRef(f"xsid-fold-{fold}", "new", "")),
            DeskMap.one_per_intent(model.classes_),
        )
        for language, sentences in by_language.items():
            # xSID files align sentence by sentence with the English one (same ids, same order).
            test_ids = [i for i in fold_of if fold_of[i] == fold and i < len(sentences)]
            gold = np.asarray([sentences[i].intent for i in test_ids])
            written = [sentences[i].text for i in test_ids]
            known = Reading.NATIVE if language == "en" else Reading.FOREIGN
            # Each variant: the texts, what was written where they are translations, and how
            # each is read.
            variants: dict[str, tuple[list[str], list[str] | None, list[Reading]]] = {
                "as written": (written, None, [known] * len(written)),
                "detected": (written, None, [detected[language][i] for i in test_ids]),
            }
            english_of = translated.get(language)
            if language != "en" and english_of is not None:
                machine = [english_of[i] for i in test_ids]
                # Machine-translated English goes, like foreign text, to the multilingual
                # members only.
                variants["translated"] = (machine, None, [Reading.FOREIGN] * len(machine))
                # What the router does: the translation read beside what was written.
                variants["both"] = (machine, written, [Reading.FOREIGN] * len(machine))
            for variant, (texts, originals, readings) in variants.items():
                probabilities = pipeline.classifier.probabilities(texts, readings, originals)
                right = np.asarray(model.classes_)[probabilities.argmax(1)] == gold
                off_topic = pipeline.classifier.off_topic(texts, originals)
                routed = np.array(
                    [r.auto_routed for _, r in pipeline.route(probabilities, readings, off_topic)]
                )
                count = counts.setdefault((language, variant), Counter())
                count["n"] += len(texts)
                count["correct"] += int(right.sum())
                count["routed"] += int(routed.sum())
                count["routed_correct"] += int((right & routed).sum())
    return [
        {
            "language": language,
            "variant": variant,
            "accuracy": count["correct"] / count["n"],
            "n": count["n"],
            "coverage": count["routed"] / count["n"],
            "routed_precision": (
                count["routed_correct"] / count["routed"] if count["routed"] else None
            ),
        }
        for (language, variant), count in sorted(counts.items())
    ]


def bench_off_topic(
    settings: Settings,
    kind: str = "ensemble",
    progress: Progress = lambda _message: None,
    correct_labels: bool = True,
) -> dict[str, Any]:
    """Off-topic detection on BANKING77-OOS, as a support lead who adds off-topic examples
    would meet it: a model of ``kind`` trained by the recipe on the train split (50 intents)
    with its in-domain off-topic questions (the other 27 Banking77 intents) as ``oos`` rows,
    each intent its own desk; reported on the validation split, which it never saw: in-scope
    questions routed and how many of those to the right intent, off-topic questions
    (in-domain, out-of-domain) sent to triage, the off-topic score's AUROC against each, and
    the trade-off as the gate moves (the intent threshold held at the trained one).
    ``correct_labels``: each question labelled as Banking77 labels it (``load_banking77_oos``);
    False: as the files were published."""
    from sklearn.metrics import roc_auc_score

    from ..classifier import TextClassifier
    from ..classifier.calibration import PASS_RATES
    from ..datasets import load_banking77_oos
    from ..routing import DeskMap

    encoder = _recipe_encoder(settings, kind, progress)
    data = load_banking77_oos(DatasetStore(settings), correct=correct_labels)
    if correct_labels:
        progress(
            f"labels taken from Banking77: {data.corrected['train']:,} training and "
            f"{data.corrected['valid']:,} validation questions differ from the published ones"
        )
    started = time.perf_counter()
    model = _recipe_model(settings, kind, encoder).fit(
        data.train["text"].tolist(),
        data.train["label"].tolist(),
        out_of_scope=data.in_domain_train,
        out_of_scope_share=settings.off_topic_share,
        step=progress,
    )
    train_seconds = time.perf_counter() - started
    pipeline = assemble(
        settings,
        TextClassifier(model, ModelRef("banking77-oos", "new", "")),
        DeskMap.one_per_intent(model.classes_),
    )
    groups = {
        "in-scope": data.valid["text"].tolist(),
        "in-domain off-topic": data.in_domain_valid,
        "out-of-domain off-topic": data.out_of_domain_valid,
    }
    read = {
        name: pipeline.read([InquiryText(text) for text in texts]) for name, texts in groups.items()
    }
    routings = {name: [r for _, r in pipeline.route_read(done)] for name, done in read.items()}
    routed = {name: np.array([r.auto_routed for r in each]) for name, each in routings.items()}
    gold = data.valid["label"].to_numpy()
    predicted = np.asarray(model.classes_)[read["in-scope"].probabilities.argmax(1)]
    right = predicted == gold
    in_routed = routed["in-scope"]
    result: dict[str, Any] = {
        "kind": kind,
        "train_seconds": train_seconds,
        "n_in_scope": len(gold),
        "accuracy": float(right.mean()),
        "in_scope_routed": float(in_routed.mean()),
        "routed_precision": float(right[in_routed].mean()) if in_routed.any() else None,
        "in_domain_to_triage": float(1 - routed["in-domain off-topic"].mean()),
        "out_of_domain_to_triage": float(1 - routed["out-of-domain off-topic"].mean()),
        "off_topic_threshold": model.off_topic_threshold_,
        "threshold": model.threshold_,
        "calibration": model.calibration_,
        "labels_corrected": data.corrected,
    }
    scores = {name: done.off_topic for name, done in read.items()}
    inside = scores["in-scope"]
    curve: list[dict[str, float]] = []
    if inside is not None:
        for name in ("in-domain off-topic", "out-of-domain off-topic"):
            outside = scores[name]
            assert outside is not None
            result[f"auroc {name}"] = float(
                roc_auc_score(
                    np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside]
                )
            )
        confident = {
            name: np.array([r.desk_confidence >= model.threshold_ for r in each])
            for name, each in routings.items()
        }
        for rate in PASS_RATES:
            gate = float(np.quantile(inside, rate)) if rate < 1 else np.inf
            passed = {name: (scores[name] <= gate) & confident[name] for name in groups}  # type: ignore[operator]
            through = passed["in-scope"]
            curve.append(
                {
                    "gate": gate,
                    "in_scope_routed": float(through.mean()),
                    "routed_precision": float(right[through].mean()) if through.any() else 0.0,
                    "in_domain_to_triage": float(1 - passed["in-domain off-topic"].mean()),
                    "out_of_domain_to_triage": float(1 - passed["out-of-domain off-topic"].mean()),
                }
            )
    result["curve"] = curve
    return result


def _recipe_encoder(settings: Settings, kind: str, progress: Progress) -> str:
    """The transformer encoder a model of ``kind`` reads, pinned as training pins it."""
    from ..classifier.encoders import encoder_name, pin_configured_encoder
    from ..classifier.kinds import needs_e5

    if not needs_e5(kind):
        return encoder_name(settings.encoder)
    encoder, source = pin_configured_encoder(settings)
    progress(f"encoder: {encoder} from {source.source}")
    return encoder


def _recipe_model(settings: Settings, kind: str, encoder: str) -> CalibratedEnsemble:
    """An unfitted model of ``kind`` with the settings ``train`` gives it."""
    from ..classifier.models import build_model

    return build_model(
        kind,
        encoder=encoder,
        target_precision=settings.target_precision,
        cv=settings.calibration_cv,
    )
