"""Benchmarks: the figures behind every default, printed by ``inquiry-router bench ...``.

Each function returns plain rows (dicts) so the CLI can print them and tests can check them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sklearn.metrics import f1_score

from .config import Settings
from .datasets import DatasetStore, XsidSentence, load_banking77, load_xsid, xsid_languages
from .domain import InquiryText
from .language import BACKENDS, LanguageDetector, make_backend

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
    """The champion pipeline on Banking77's official test set: quality and throughput."""
    from .pipeline import build_pipeline

    pipeline = build_pipeline(settings, model_uri)
    test = load_banking77(DatasetStore(settings)).test
    assert test is not None
    if limit:
        test = test.head(limit)
    texts, gold = test["text"].tolist(), test["label"].tolist()
    started = time.perf_counter()
    decisions = []
    for start in range(0, len(texts), 256):
        decisions.extend(pipeline.run([InquiryText(t) for t in texts[start : start + 256]]))
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
        "threshold": settings.triage_threshold,
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
