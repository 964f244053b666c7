"""A structurally real Hugging Face encoder folder, built offline in about a second: an
XLM-RoBERTa model (the architecture of multilingual-e5-base and -large, where e5-small is a BERT)
with random weights, and a Unigram tokenizer trained on the sentences given. Its embeddings mean
little; what the tests check is that the product trains on, records and serves an encoder other
than multilingual-e5-small, as a user's copy of a larger one would be."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

HIDDEN = 48
LAYERS = 5  # more than the four the fine-tuned member trains


def build_tiny_encoder(folder: Path, sentences: Sequence[str], seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer
    from transformers import XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's ids 0-3
    tokenizer = Tokenizer(Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(
        sentences,
        UnigramTrainer(vocab_size=1500, special_tokens=specials, unk_token="<unk>"),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "cls_token": "<s>",
                "sep_token": "</s>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "model_max_length": 128,
            }
        )
    )
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        intermediate_size=2 * HIDDEN,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
    )
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    return folder
