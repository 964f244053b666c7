"""Argos packs through the real argostranslate code path: install from file, list, translate."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from inquiry_router.routing import DeskMap

from .argos_pack import build_tiny_pack
from .conftest import CLI, ROOT, env_for


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env_for(home, **env), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pack(tmp_path_factory.mktemp("pack"), from_code="de", version="0.0.7")


@pytest.mark.slow
def test_install_from_file_list_and_translate_in_the_pipeline(
    tiny_pack: Path, trained_home: Path, tmp_path: Path
) -> None:
    packs = tmp_path / "argos"
    env = {
        "INQUIRY_ROUTER_ARGOS_PACKAGES_DIR": str(packs),
        "INQUIRY_ROUTER_TRANSLATION_CACHE": "",
        # No network: a translation that tried to download would fail loudly here.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    installed = run(trained_home, "translation", "install", "--file", str(tiny_pack), **env)
    assert installed.returncode == 0, installed.stderr
    assert "installed de→en 0.0.7" in installed.stdout
    assert (packs / "translate-de_en-0_0_7" / "metadata.json").is_file()

    listed = run(trained_home, "translation", "list", **env)
    assert listed.returncode == 0, listed.stderr
    assert "de→en" in listed.stdout and "0.0.7" in listed.stdout

    classified = run(
        trained_home,
        "classify",
        "Ich habe meine Karte verloren, bitte sperren Sie sie.",
        "--locale",
        "de",
        **env,
    )
    assert classified.returncode == 0, classified.stderr
    decision = json.loads(classified.stdout)
    assert decision["language"] == "de"
    assert decision["translated"] is True
    assert decision["translation_engine"] == "argos"
    assert decision["translation_engine_version"] == "de-en 0.0.7"
    # Gibberish English still gets a routing: a desk of desks.yaml, triage when unsure.
    desks = DeskMap.from_yaml(ROOT / "data" / "desks.yaml")
    assert decision["desk"] in desks.names
    assert decision["auto_routed"] is (decision["desk"] != desks.triage_desk)


def test_bad_pack_files_are_refused_with_the_reason(trained_home: Path, tmp_path: Path) -> None:
    env = {"INQUIRY_ROUTER_ARGOS_PACKAGES_DIR": str(tmp_path / "argos")}
    not_zip = tmp_path / "x.argosmodel"
    not_zip.write_text("hello")
    result = run(trained_home, "translation", "install", "--file", str(not_zip), **env)
    assert result.returncode == 2 and "not a zip archive" in result.stderr

    no_metadata = tmp_path / "y.argosmodel"
    with zipfile.ZipFile(no_metadata, "w") as archive:
        archive.writestr("pack/model/model.bin", b"")
    result = run(trained_home, "translation", "install", "--file", str(no_metadata), **env)
    assert result.returncode == 2 and "metadata.json is missing" in result.stderr
    assert not (tmp_path / "argos").exists() or not any((tmp_path / "argos").iterdir())


def test_offline_install_by_language_names_the_file_route(
    trained_home: Path, tmp_path: Path
) -> None:
    result = run(
        trained_home,
        "translation",
        "install",
        "de",
        INQUIRY_ROUTER_ARGOS_PACKAGES_DIR=str(tmp_path / "argos"),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    assert result.returncode == 2
    assert "cannot reach the Argos package index" in result.stderr
    assert "--file PACK.argosmodel" in result.stderr
