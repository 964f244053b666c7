"""The translate stage: text in any language → English, with the engine that did it."""

from .engines import ApertiumEngine, ArgosEngine, FastTranslateEngine, TranslationEngine
from .translator import TranslationCache, Translator, build_translator, parse_routes

__all__ = [
    "ApertiumEngine",
    "ArgosEngine",
    "FastTranslateEngine",
    "TranslationCache",
    "TranslationEngine",
    "Translator",
    "build_translator",
    "parse_routes",
]
