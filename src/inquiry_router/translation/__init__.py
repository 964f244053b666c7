"""The translate stage: text in any language → English, with the engine that did it."""

from .engines import ArgosEngine, FastTranslateEngine, TranslationEngine
from .translator import Translator, build_translator

__all__ = [
    "ArgosEngine",
    "FastTranslateEngine",
    "TranslationEngine",
    "Translator",
    "build_translator",
]
