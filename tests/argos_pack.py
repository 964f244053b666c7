"""Builds a structurally real Argos pack offline, in about a second: a tiny sentencepiece model,
a random one-layer Marian model converted to CTranslate2, metadata.json and a blank spaCy
pipeline, zipped. Its translations are gibberish; the loading and install code is what is tested.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

CORPUS = [
    "ich habe meine karte verloren",
    "wo ist meine karte",
    "i lost my card",
    "where is my card",
    "hallo welt",
    "hello world",
]


def build_tiny_pack(
    workdir: Path, from_code: str = "de", to_code: str = "en", version: str = "0.0.1"
) -> Path:
    import ctranslate2
    import sentencepiece as spm
    import spacy
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = workdir / "pack-build"
    work.mkdir(parents=True)
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(work / "sp"),
        vocab_size=40,
        model_type="unigram",
        hard_vocab_limit=False,
    )
    processor = spm.SentencePieceProcessor(model_file=str(work / "sp.model"))
    vocab: dict[str, int] = {}
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    # Marian's layout: </s> and <unk> first, <pad> last (CTranslate2 drops the last entry).
    for piece in ["</s>", "<unk>", *pieces, "<pad>"]:
        if piece != "<s>":
            vocab.setdefault(piece, len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        shutil.copy(work / "sp.model", work / name)
    tokenizer = MarianTokenizer(
        source_spm=str(work / "source.spm"),
        target_spm=str(work / "target.spm"),
        vocab=str(work / "vocab.json"),
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=1024,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
    )
    MarianMTModel(config).save_pretrained(work / "hf")
    tokenizer.save_pretrained(work / "hf")

    root = work / f"translate-{from_code}_{to_code}-{version.replace('.', '_')}"
    root.mkdir()
    ctranslate2.converters.TransformersConverter(str(work / "hf")).convert(str(root / "model"))
    shutil.copy(work / "sp.model", root / "sentencepiece.model")
    spacy.blank("xx").to_disk(root / "spacy")
    (root / "metadata.json").write_text(
        json.dumps(
            {
                "package_version": version,
                "argos_version": "1.0",
                "from_code": from_code,
                "from_name": from_code,
                "to_code": to_code,
                "to_name": to_code,
                "type": "translate",
                "links": [],
            }
        )
    )
    archive = workdir / f"{root.name}.argosmodel"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(root.rglob("*")):
            zipped.write(path, path.relative_to(work))
    return archive
