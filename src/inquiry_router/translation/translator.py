"""The Translator: per language, the first engine that covers it; a cache so the same text is
never translated twice; a failing engine leaves the text untranslated, with the error kept."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

from ..config import Settings
from ..domain import UNDETERMINED, Translation
from .engines import ArgosEngine, FastTranslateEngine, TranslationEngine

log = logging.getLogger(__name__)

TARGET = "en"


class Translator:
    def __init__(self, engines: Sequence[TranslationEngine], cache_size: int = 10_000) -> None:
        self.engines = list(engines)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Translation] = OrderedDict()
        self._lock = threading.Lock()
        self._coverage = {engine.name: engine.languages() for engine in self.engines}

    def engine_for(self, language: str) -> TranslationEngine | None:
        for engine in self.engines:
            if language in self._coverage[engine.name]:
                return engine
        return None

    def coverage(self) -> dict[str, list[str]]:
        return {name: sorted(languages) for name, languages in self._coverage.items()}

    def translate_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[Translation]:
        results: list[Translation | None] = [None] * len(texts)
        pending: dict[str, list[int]] = {}
        for index, (text, language) in enumerate(zip(texts, languages, strict=True)):
            if language == TARGET:
                results[index] = Translation(text, False, "passthrough")
            elif language == UNDETERMINED:
                results[index] = Translation(text, False, None, note="language undetermined")
            elif (cached := self._cached(language, text)) is not None:
                results[index] = cached
            else:
                pending.setdefault(language, []).append(index)

        for language, indices in pending.items():
            engine = self.engine_for(language)
            if engine is None:
                for index in indices:
                    results[index] = Translation(
                        texts[index], False, None, note=f"no translation engine for {language!r}"
                    )
                continue
            batch = [texts[index] for index in indices]
            try:
                english = engine.translate_batch(batch, language)
            except Exception as error:  # an engine failure must never lose the inquiry
                log.warning(
                    "%s failed on %d %s text(s): %s", engine.name, len(batch), language, error
                )
                for index in indices:
                    results[index] = Translation(
                        texts[index], False, None, note=f"{engine.name} failed: {error}"
                    )
                continue
            version = engine.version(language)
            for index, translated in zip(indices, english, strict=True):
                result = Translation(translated, True, engine.name, version)
                results[index] = result
                self._store(language, texts[index], result)
        return [result for result in results if result is not None]

    @staticmethod
    def _key(language: str, text: str) -> str:
        return hashlib.sha256(f"{language}\0{text}".encode()).hexdigest()

    def _cached(self, language: str, text: str) -> Translation | None:
        key = self._key(language, text)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _store(self, language: str, text: str, translation: Translation) -> None:
        key = self._key(language, text)
        with self._lock:
            self._cache[key] = translation
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def build_translator(settings: Settings) -> Translator:
    return Translator([ArgosEngine(settings.argos_dir), FastTranslateEngine()])
