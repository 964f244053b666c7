"""Argos language packs: list what is installed, install from the Argos index when online, or
from a ``.argosmodel`` file when not (air-gapped machines)."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines import ArgosPack, import_argostranslate, installed_argos_packs

ARGOS_INDEX_PAGE = "https://www.argosopentech.com/argospm/index/"


class PackError(Exception):
    """A pack could not be installed; the message says what to do instead."""


@dataclass(frozen=True)
class AvailablePack:
    from_code: str
    to_code: str
    version: str


def list_installed(packages_dir: Path) -> list[ArgosPack]:
    return installed_argos_packs(packages_dir)


def _check_archive(path: Path) -> dict[str, Any]:
    """Read a pack's metadata without installing it, so a bad file gets a precise error."""
    if not path.is_file():
        raise PackError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            tops = {name.split("/", 1)[0] for name in names if name.strip("/")}
            if len(tops) != 1:
                raise PackError(f"{path}: a pack holds exactly one top folder, found {len(tops)}")
            top = tops.pop()
            if f"{top}/metadata.json" not in names:
                raise PackError(f"{path}: {top}/metadata.json is missing; not an Argos pack")
            if not any(name.startswith(f"{top}/model/") for name in names):
                raise PackError(f"{path}: {top}/model/ is missing; not an Argos translation pack")
            metadata: dict[str, Any] = json.loads(archive.read(f"{top}/metadata.json"))
    except zipfile.BadZipFile:
        raise PackError(f"{path}: not a zip archive; an .argosmodel file is one") from None
    except json.JSONDecodeError as error:
        raise PackError(f"{path}: metadata.json is not valid JSON: {error}") from None
    missing = [key for key in ("from_code", "to_code") if not metadata.get(key)]
    if missing:
        raise PackError(f"{path}: metadata.json lacks {', '.join(missing)}")
    if metadata.get("type", "translate") != "translate":
        raise PackError(f"{path}: a {metadata.get('type')!r} pack, not a translation pack")
    return metadata


def install_from_file(path: Path, packages_dir: Path) -> ArgosPack:
    """Install with argostranslate's own installer, after checking the file."""
    metadata = _check_archive(path)
    package = import_argostranslate(packages_dir).package
    package.install_from_path(path)
    for pack in installed_argos_packs(packages_dir):
        if pack.from_code == metadata["from_code"] and pack.to_code == metadata["to_code"]:
            return pack
    raise PackError(
        f"{path}: argostranslate reported success but no pack appeared in {packages_dir}"
    )


def install_from_index(
    language: str, packages_dir: Path, probe_timeout_s: float = 10.0
) -> ArgosPack:
    """Download and install the ``language``→English pack from the Argos index."""
    argos = import_argostranslate(packages_dir)
    package = argos.package

    def unreachable(error: BaseException) -> PackError:
        return PackError(
            f"cannot reach the Argos package index ({type(error).__name__}: {error}). Offline, "
            f"download translate-{language}_en-*.argosmodel on a connected machine (from "
            f"{ARGOS_INDEX_PAGE}) and run: "
            "inquiry-router translation install --file PACK.argosmodel"
        )

    # argostranslate retries an unreachable index for half a minute of CPU (and then fails
    # with a RecursionError); one request with a time limit says the same at once.
    try:
        urllib.request.urlopen(argos.settings.remote_package_index, timeout=probe_timeout_s).close()
    except (OSError, ValueError) as error:
        raise unreachable(error) from None
    try:
        package.update_package_index()
        available = package.get_available_packages()
    except Exception as error:
        raise unreachable(error) from None
    matches = [p for p in available if p.from_code == language and p.to_code == "en"]
    if not matches:
        codes = sorted({p.from_code for p in available if p.to_code == "en"})
        raise PackError(
            f"the Argos index has no {language}→en pack (it has: {', '.join(codes) or 'none'})"
        )
    best = max(matches, key=lambda p: str(p.package_version))
    try:
        downloaded = best.download()
    except Exception as error:
        raise PackError(f"download of the {language}→en pack failed: {error}") from None
    return install_from_file(Path(downloaded), packages_dir)
