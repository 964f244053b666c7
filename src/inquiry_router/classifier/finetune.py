"""A fine-tuned multilingual-e5-small classifier: the encoder's transformer layers and a linear
head trained on the intents. Uses a GPU when torch sees one, the CPU otherwise.

The 250k-row word-embedding matrix stays frozen (most of the parameters, little of the gain), so
what is learned, and stored with the model, is about 86 MB; the base encoder is referenced by
name and resolved where the model is loaded, like the frozen-embedding classifier's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

log = logging.getLogger(__name__)


class FineTunedEncoderClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    multilingual = True

    def __init__(
        self,
        encoder: str = "multilingual-e5-small",
        epochs: int = 4,
        learning_rate: float = 1e-4,
        head_learning_rate: float = 1e-3,
        batch_size: int = 32,
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed

    # The live network is rebuilt from the base encoder plus ``state_`` after unpickling.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_network", None)
        return state

    def _device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _build(self, n_classes: int) -> Any:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .models import _resolver

        folder = _resolver(self.encoder)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        body = AutoModel.from_pretrained(str(folder), add_pooling_layer=False)
        head = torch.nn.Linear(body.config.hidden_size, n_classes)
        return tokenizer, body, head

    def _pooled(self, body: Any, batch: Any) -> Any:
        hidden = body(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Any:
        import torch
        from tqdm.auto import tqdm

        torch.manual_seed(self.seed)
        self.classes_ = np.array(sorted(set(labels)))
        index = {label: i for i, label in enumerate(self.classes_)}
        targets = torch.tensor([index[label] for label in labels])
        tokenizer, body, head = self._build(len(self.classes_))
        body.get_input_embeddings().weight.requires_grad_(False)
        device = self._device()
        body.to(device).train()
        head.to(device).train()
        encoder_params = [p for p in body.parameters() if p.requires_grad]
        trainable = encoder_params + list(head.parameters())
        # A freshly initialised head needs a larger step than the pretrained layers: with one
        # rate for both, 3 CPU epochs left the loss at 1.46 and the model underfitted.
        optimizer = torch.optim.AdamW(
            [
                {"params": encoder_params, "lr": self.learning_rate},
                {"params": list(head.parameters()), "lr": self.head_learning_rate},
            ],
            weight_decay=0.01,
        )
        steps_per_epoch = math.ceil(len(texts) / self.batch_size)
        total = steps_per_epoch * self.epochs
        warmup = max(1, total // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup + 1))),
        )
        autocast_dtype = torch.bfloat16
        generator = np.random.default_rng(self.seed)
        prefixed = ["query: " + text for text in texts]
        with tqdm(total=total, desc="fine-tuning", unit="batch", leave=False) as progress:
            for epoch in range(self.epochs):
                order = generator.permutation(len(texts))
                for start in range(0, len(order), self.batch_size):
                    chosen = order[start : start + self.batch_size]
                    batch = tokenizer(
                        [prefixed[i] for i in chosen],
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    ).to(device)
                    with torch.autocast(device.type, dtype=autocast_dtype):
                        logits = head(self._pooled(body, batch))
                    loss = torch.nn.functional.cross_entropy(
                        logits.float(), targets[chosen].to(device)
                    )
                    optimizer.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimizer.step()
                    schedule.step()
                    progress.update(1)
                    progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        frozen = "embeddings.word_embeddings.weight"
        self.state_ = {
            name: value.detach().to("cpu", torch.float32).clone()
            for name, value in body.state_dict().items()
            if name != frozen
        }
        self.head_ = {k: v.detach().to("cpu").clone() for k, v in head.state_dict().items()}
        body.eval()
        head.eval()
        self._network = (tokenizer, body, head)
        return self

    def _live(self) -> Any:
        network = getattr(self, "_network", None)
        if network is None:
            tokenizer, body, head = self._build(len(self.classes_))
            body.load_state_dict(self.state_, strict=False)
            head.load_state_dict(self.head_)
            body.to(self._device()).eval()
            head.to(self._device()).eval()
            network = self._network = (tokenizer, body, head)
        return network

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokenizer, body, head = self._live()
        device = self._device()
        output = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        order = np.argsort([len(text) for text in texts])
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            for start in range(0, len(texts), 64):
                chosen = order[start : start + 64]
                batch = tokenizer(
                    ["query: " + texts[i] for i in chosen],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                logits = head(self._pooled(body, batch)).float()
                output[chosen] = torch.softmax(logits, dim=-1).cpu().numpy()
        return output

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        predicted: np.ndarray = self.classes_[self.predict_proba(texts).argmax(1)]
        return predicted
