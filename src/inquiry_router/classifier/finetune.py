"""multilingual-e5-small with its top transformer layers fine-tuned on the intents, and a
linear head. Uses a GPU when torch sees one, the CPU otherwise.

Only the top ``trainable_layers`` (4 of 12 by default) learn. The layers below stay as they
are, so their output is computed once per text, and shared with the frozen-embedding model
that sits beside this one in the ensemble: an ensemble with both costs one encoder pass plus
four layers, not two passes. Measured on Banking77 (2 cores, 4 epochs): the top four layers
alone reach 93.1 %, where fine-tuning all twelve reached 92.2-92.9 % in twice the time; with
TF-IDF and the frozen encoder beside it, 94.3 %.

What is stored with the model is the trained layers and the head (about 28 MB); the base
encoder is referenced by name and resolved where the model is loaded.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .encoders import compute_dtype, shared_encoder

log = logging.getLogger(__name__)

# Pooled embeddings are L2-normalized, then scaled: a cosine classifier with a fixed
# temperature, which trains faster and more stably than raw pooled vectors.
EMBEDDING_SCALE = 20.0
# At most this many optimizer steps (of ``batch_size`` texts) per fit, however large the data:
# Banking77's 10,003 examples take 1,252 in four epochs, so its figures are unchanged, while
# the fine-tuning time of a larger set stops growing with it (docs/benchmarks.md, training
# time). Every example is still seen at least once.
MAX_STEPS = 1300


def planned_steps(n_texts: int, batch_size: int, epochs: int, max_steps: int | None) -> int:
    """Optimizer steps a fit takes: ``epochs`` passes, capped at ``max_steps`` but never less
    than one pass over the data."""
    per_epoch = math.ceil(n_texts / batch_size)
    total = per_epoch * epochs
    return total if max_steps is None else min(total, max(per_epoch, max_steps))


class FineTunedEncoderClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    multilingual = True

    def __init__(
        self,
        encoder: str = "multilingual-e5-small",
        trainable_layers: int = 4,
        epochs: int = 4,
        learning_rate: float = 1e-4,
        head_learning_rate: float = 1e-3,
        batch_size: int = 32,
        seed: int = 0,
        max_steps: int | None = MAX_STEPS,
    ) -> None:
        self.encoder = encoder
        self.trainable_layers = trainable_layers
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.batch_size = batch_size
        self.seed = seed
        self.max_steps = max_steps

    # The live layers are rebuilt from the base encoder plus ``state_`` after unpickling.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_network", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("max_steps", None)  # saved before the cap: every epoch ran
        self.__dict__.update(state)

    def _device(self) -> Any:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _trunk(self) -> tuple[Any, int]:
        """The shared frozen encoder, and the layer whose output the trained layers read."""
        if not hasattr(self, "trainable_layers"):  # pickled by inquiry-router 0.1's version
            raise ValueError(
                "this fine-tuned model was saved by an older inquiry-router that fine-tuned "
                "every layer; retrain it with `inquiry-router train --model finetune`"
            )
        encoder = shared_encoder(self.encoder)
        if not 1 <= self.trainable_layers <= encoder.num_layers:
            raise ValueError(
                f"trainable_layers must be between 1 and {encoder.num_layers}, "
                f"not {self.trainable_layers}"
            )
        return encoder, encoder.num_layers - self.trainable_layers

    def _build(self, n_classes: int) -> tuple[Any, Any]:
        import torch

        encoder, cut = self._trunk()
        top = copy.deepcopy(encoder.model.encoder.layer[cut:]).float()
        head = torch.nn.Linear(encoder.model.config.hidden_size, n_classes)
        return top, head

    def _embed(self, top: Any, states: Sequence[Any], device: Any, dtype: Any) -> Any:
        """Runs the trained layers over a batch of token states; mean-pooled, normalized.
        ``dtype``: what the layers compute in (``compute_dtype``, once per fit or predict)."""
        import torch

        longest = max(int(state.shape[0]) for state in states)
        hidden = torch.zeros(len(states), longest, int(states[0].shape[1]), device=device)
        mask = torch.zeros(len(states), longest, device=device)
        for row, state in enumerate(states):
            hidden[row, : state.shape[0]] = state.to(device, torch.float32)
            mask[row, : state.shape[0]] = 1.0
        # In the dtype the layers compute in (bf16 under autocast, else fp32): attention kernels
        # want the mask in the query's dtype.
        additive = ((1.0 - mask[:, None, None, :]) * torch.finfo(dtype).min).to(dtype)
        for layer in top:
            hidden = layer(hidden, attention_mask=additive)
        weights = mask.unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled.float(), dim=-1) * EMBEDDING_SCALE

    def _batches(self, lengths: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled batches of similar lengths: little padding, still a random order."""
        noisy = np.asarray(lengths, dtype=float) + rng.uniform(0, 3, len(lengths))
        order = np.argsort(noisy)
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        return [batches[i] for i in rng.permutation(len(batches))]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Any:
        import torch
        from tqdm.auto import tqdm

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.classes_ = np.array(sorted(set(labels)))
        index = {label: i for i, label in enumerate(self.classes_)}
        targets = torch.tensor([index[label] for label in labels])
        encoder, cut = self._trunk()
        states = encoder.token_states(list(texts), cut)
        device = self._device()
        dtype = compute_dtype(device.type)
        top, head = self._build(len(self.classes_))
        top.to(device).train()
        head.to(device).train()
        trainable = list(top.parameters()) + list(head.parameters())
        # A freshly initialised head needs a larger step than the pretrained layers: with one
        # rate for both, 3 CPU epochs left the loss at 1.46 and the model underfitted.
        optimizer = torch.optim.AdamW(
            [
                {"params": list(top.parameters()), "lr": self.learning_rate},
                {"params": list(head.parameters()), "lr": self.head_learning_rate},
            ],
            weight_decay=0.01,
        )
        lengths = [int(state.shape[0]) for state in states]
        total = planned_steps(len(texts), self.batch_size, self.epochs, self.max_steps)
        steps_per_epoch = math.ceil(len(texts) / self.batch_size)
        self.epochs_ = total / steps_per_epoch  # fewer than ``epochs`` where capped
        if self.epochs_ < self.epochs:
            log.info(
                "fine-tuning %d steps: %.1f epochs of %d examples (at most %d steps)",
                total,
                self.epochs_,
                len(texts),
                self.max_steps,
            )
        warmup = max(1, total // 16)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup + 1))),
        )
        # A bar on a terminal; in a log (not a TTY), one line per epoch instead of a bar.
        with tqdm(
            total=total, desc="fine-tuning", unit="batch", leave=False, disable=None
        ) as progress:
            taken = 0
            for epoch in range(math.ceil(self.epochs_)):
                losses: list[float] = []
                for chosen in self._batches(lengths, rng):
                    if taken == total:
                        break
                    taken += 1
                    with torch.autocast(
                        device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16
                    ):
                        batch = [states[i] for i in chosen]
                        logits = head(self._embed(top, batch, device, dtype))
                    loss = torch.nn.functional.cross_entropy(
                        logits.float(), targets[chosen].to(device)
                    )
                    optimizer.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimizer.step()
                    schedule.step()
                    losses.append(loss.item())
                    progress.update(1)
                    progress.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
                log.info(
                    "fine-tuning epoch %d/%d: mean loss %.3f",
                    epoch + 1,
                    math.ceil(self.epochs_),
                    float(np.mean(losses)),
                )
        self.state_ = {k: v.detach().to("cpu").clone() for k, v in top.state_dict().items()}
        self.head_ = {k: v.detach().to("cpu").clone() for k, v in head.state_dict().items()}
        top.eval()
        head.eval()
        self._network = (top, head)
        return self

    def _live(self) -> tuple[Any, Any]:
        network = getattr(self, "_network", None)
        if network is None:
            top, head = self._build(len(self.classes_))
            top.load_state_dict(self.state_)
            head.load_state_dict(self.head_)
            top.to(self._device()).eval()
            head.to(self._device()).eval()
            network = self._network = (top, head)
        return network

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        top, head = self._live()
        encoder, cut = self._trunk()
        states = encoder.token_states(list(texts), cut)
        device = self._device()
        dtype = compute_dtype(device.type)
        output = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        order = np.argsort([int(state.shape[0]) for state in states])
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16),
        ):
            for start in range(0, len(texts), 64):
                chosen = order[start : start + 64]
                logits = head(self._embed(top, [states[i] for i in chosen], device, dtype))
                logits = logits.float()
                output[chosen] = torch.softmax(logits, dim=-1).cpu().numpy()
        return output

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        predicted: np.ndarray = self.classes_[self.predict_proba(texts).argmax(1)]
        return predicted
