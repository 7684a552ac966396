"""Text classification as a task for the one training loop (rnntool.training.trainer).

    data = EncodedExamples.from_texts(texts, gold, labels, tokenizer.encode_batch, max_len=256)
    task = ClassifierTask(model, train_data, valid_data, batch_size=32, seed=1, class_weights=None)
    result = train(task, train_cfg, ...)

Batches hold sentences of similar length (shuffled pools sorted by length, then the batches
shuffled), deterministic for (seed, epoch) and lazy (``ClassifierBatch.to(device)`` builds the
tensors), so a resumed run skips batches for free. The loss is summed per example (cross-entropy,
or binary cross-entropy summed over the classes when multi-label) and the loop divides by the number
of examples. Validation reports loss, accuracy and macro-F1 (what ``--select`` chooses from).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnntool.runtime import to_device
from rnntool.kinds.classifier.model import RNNClassifier, token_batch
from rnntool.training.batching import length_batches
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID

EVAL_BATCH_SIZE = 128


def wrap_ids(ids: Sequence[int], max_len: int) -> list[int]:
    """What the model reads of a text: BOS, at most ``max_len`` of its pieces, EOS."""
    return [BOS_ID, *ids[:max_len], EOS_ID]


@dataclass
class EncodedExamples:
    """Texts as model inputs and their labels as class indices (a multi-hot matrix when multi-label)."""

    ids: list[list[int]]  # BOS + pieces + EOS
    targets: np.ndarray  # (N,) class index, or (N, C) 0/1 when multi-label
    truncated: int = 0  # texts longer than max_len pieces (their tails are not read)

    @classmethod
    def from_texts(cls, texts: Sequence[str], gold: Sequence[Sequence[str]], labels: Sequence[str],
                   encode_batch: Callable[[list[str]], list[list[int]]], *, max_len: int,
                   multi_label: bool) -> "EncodedExamples":
        index = {label: i for i, label in enumerate(labels)}
        pieces = encode_batch(list(texts))
        if multi_label:
            targets = np.zeros((len(gold), len(labels)), dtype=np.float32)
            for row, names in enumerate(gold):
                targets[row, [index[n] for n in names]] = 1.0
        else:
            targets = np.array([index[names[0]] for names in gold], dtype=np.int64)
        return cls([wrap_ids(p, max_len) for p in pieces], targets, sum(len(p) > max_len for p in pieces))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.ids)


class ClassifierBatch:
    """Rows of the training data not turned into tensors yet."""

    def __init__(self, data: EncodedExamples, rows: list[int]) -> None:
        self.data, self.rows = data, rows

    def to(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, lengths = token_batch([self.data.ids[r] for r in self.rows], device)  # (B, T), (B,)
        targets = to_device(torch.from_numpy(self.data.targets[self.rows]), device)  # (B,) or (B, C)
        return tokens, lengths, targets


def predict_probabilities(model: RNNClassifier, ids: Sequence[Sequence[int]], batch_size: int = EVAL_BATCH_SIZE
                          ) -> np.ndarray:
    """Class probabilities (N, C) of id sequences, in their order (model batches sorted by length).
    The caller sets eval mode and the grad mode."""
    from rnntool.layers.weights import model_device

    device = model_device(model)
    out = np.zeros((len(ids), model.config.num_classes), dtype=np.float64)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        tokens, lengths = token_batch([list(ids[r]) for r in rows], device)
        out[rows] = model.probabilities(model(tokens, lengths)).double().cpu().numpy()
    return out


def decide(probs: np.ndarray, labels: Sequence[str], multi_label: bool, threshold: float) -> list[tuple[str, ...]]:
    """Predicted labels per row: the most probable class, or (multi-label) every class at or above
    ``threshold`` (none when no class reaches it)."""
    if not multi_label:
        return [(labels[i],) for i in probs.argmax(axis=1)]
    return [tuple(labels[i] for i in np.flatnonzero(row >= threshold)) for row in probs]


class ClassifierTask:
    """The TrainTask protocol of rnntool.training.trainer for an ``RNNClassifier``."""

    reports_perplexity = False  # the loss is per example
    count_unit = "examples"

    def __init__(self, model: RNNClassifier, train_data: EncodedExamples, valid_data: EncodedExamples, *,
                 labels: Sequence[str], batch_size: int, seed: int, class_weights: Sequence[float] | None = None,
                 threshold: float = 0.5, pretrained: dict | None = None) -> None:
        self.model = model
        self.train_data, self.valid_data = train_data, valid_data
        self.labels = list(labels)
        self.batch_size, self.seed = batch_size, seed
        self.multi_label = model.config.multi_label
        self.threshold = threshold
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.pretrained = pretrained  # {"lr_scale", "unfreeze_every"} when the encoder came from an LM
        self.set_shard(0, 1)

    @property
    def chance_loss(self) -> float:
        c = len(self.labels)
        return c * math.log(2) if self.multi_label else math.log(c)

    def param_groups(self, model: RNNClassifier) -> list[dict] | None:
        if self.pretrained is None:
            return None
        return model.param_groups(**self.pretrained)

    def set_shard(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        lengths = [len(ids) for ids in self.train_data.ids]
        batches = length_batches(lengths, self.batch_size, self.seed + epoch)
        usable = len(batches) - len(batches) % self.world_size  # every rank takes as many steps
        return batches[self.rank:usable:self.world_size]

    def num_batches(self, epoch: int) -> int:
        n = math.ceil(len(self.train_data) / self.batch_size)
        return n // self.world_size

    def batches(self, epoch: int) -> Iterator[ClassifierBatch]:
        for rows in self._epoch_batches(epoch):
            yield ClassifierBatch(self.train_data, rows)

    def _nll(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed loss of a batch: logits (B, C), targets (B,) or (B, C)."""
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=weights, reduction="sum")
        return F.cross_entropy(logits.float(), targets, weight=weights, reduction="sum")

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        tokens, lengths, targets = batch
        return self._nll(model(tokens, lengths), targets), int(tokens.size(0))

    def evaluate(self, model: RNNClassifier) -> dict[str, float]:
        from rnntool.kinds.classifier.metrics import classification_report

        data = self.valid_data
        probs = predict_probabilities(model, data.ids)  # (N, C)
        logits_like = torch.from_numpy(np.log(np.clip(probs, 1e-12, 1.0)))
        if self.multi_label:
            p = torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7)
            nll = F.binary_cross_entropy(p, torch.from_numpy(data.targets).double(), reduction="sum")
            gold = [tuple(self.labels[i] for i in np.flatnonzero(row)) for row in data.targets]
        else:
            nll = F.nll_loss(logits_like, torch.from_numpy(data.targets), reduction="sum")
            gold = [(self.labels[i],) for i in data.targets]
        pred = decide(probs, self.labels, self.multi_label, self.threshold)
        report = classification_report(gold, pred, multi_label=self.multi_label, samples=0)
        return {"loss": float(nll) / max(1, len(data)), "accuracy": report["accuracy"],
                "macro_f1": report["macro_f1"]}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


__all__ = ["ClassifierBatch", "ClassifierTask", "EncodedExamples", "decide", "predict_probabilities", "wrap_ids"]
