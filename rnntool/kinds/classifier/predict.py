"""A trained classifier at work: `rnntool classify`, `evaluate classification -m`, and `--promote`.

    clf = open_classifier("sst2@prod")
    for p in clf.stream(lines, batch_size=64):       # in input order; each chunk before reading more
        p.labels, p.probs                            # the decision, every class's probability
    clf.predict(["a fine film"])                     # the same, for a list

Each line is one text (BOS + at most ``max_len`` pieces + EOS, as in training). ``labels`` is the
argmax class, or every class whose sigmoid reaches the threshold for a multi-label model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.catalog import WEIGHTS_FILE


@dataclass
class Prediction:
    index: int  # 0-based input line
    labels: tuple[str, ...]  # the decision
    probs: np.ndarray  # (C,) in the model's label order

    def top(self, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, best first (ties: label order)."""
        order = sorted(range(len(labels)), key=lambda i: (-self.probs[i], i))[:k]
        return [(labels[i], float(self.probs[i])) for i in order]


class Classifier:
    """A loaded classifier with its tokenizer and labels."""

    def __init__(self, model, tokenizer, labels: Sequence[str], *, label_prefix: str = "", max_len: int = 256,
                 threshold: float = 0.5, ref: str = "model") -> None:
        from rnntool.layers.weights import model_device

        self.model, self.tokenizer = model, tokenizer
        self.labels = list(labels)
        self.label_prefix, self.max_len, self.threshold, self.ref = label_prefix, max_len, threshold, ref
        self.multi_label = model.config.multi_label
        self.device = model_device(model)

    def predict(self, texts: Sequence[str], start_index: int = 0, threshold: float | None = None
                ) -> list[Prediction]:
        from rnntool.kinds.classifier.task import decide, predict_probabilities, wrap_ids

        ids = [wrap_ids(p, self.max_len) for p in self.tokenizer.encode_batch(list(texts))]
        with torch.inference_mode():
            probs = predict_probabilities(self.model, ids)  # (N, C)
        chosen = decide(probs, self.labels, self.multi_label, self.threshold if threshold is None else threshold)
        return [Prediction(start_index + i, chosen[i], probs[i]) for i in range(len(texts))]

    def stream(self, texts: Iterable[str], batch_size: int = 64, threshold: float | None = None
               ) -> Iterator[Prediction]:
        """Predictions for an iterable of texts, ``batch_size`` at a time, in input order; each chunk is
        answered before more input is read (``batch_size=1``: every line as it arrives)."""
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1 (got {batch_size})")
        it, start = iter(texts), 0
        while chunk := list(itertools.islice(it, batch_size)):
            yield from self.predict(chunk, start, threshold)
            start += len(chunk)

    def shown(self, label: str) -> str:
        """A label as the training data wrote it (``__label__pos`` for fastText data)."""
        return self.label_prefix + label


def open_classifier(ref: str, registry=None, device: str = "auto") -> Classifier:
    """Load a ``classifier`` bundle (a registry reference or a bundle directory), verified."""
    from rnntool.registry.store import Registry
    from rnntool.runtime import prepare_device

    return classifier_from_bundle(Registry.open(registry).load(ref, kind="classifier"), prepare_device(device))


def classifier_from_bundle(bundle, device) -> Classifier:
    """A loaded, verified ``classifier`` bundle -> the classifier (eval mode, on ``device``)."""
    from rnntool.kinds.classifier.model import ClassifierConfig, RNNClassifier
    from rnntool.layers.weights import build_model, load_weights
    from rnntool.tokenizers.sentencepiece import Tokenizer

    cfg = ClassifierConfig.from_dict(bundle.config.get("model") or {})
    data = bundle.config.get("data") or {}
    labels = data.get("labels")
    if not isinstance(labels, list) or len(labels) != cfg.num_classes:
        raise CorruptBundle(f"{bundle.ref}: the manifest's labels do not match the model's {cfg.num_classes} "
                            "outputs; re-train the model")
    path = bundle.file(WEIGHTS_FILE)
    model = build_model(lambda: RNNClassifier(cfg), weights=path)
    model = load_weights(model, path, device).eval()
    tokenizer = Tokenizer.from_bundle(bundle)
    if tokenizer.vocab_size != cfg.vocab_size:
        raise CorruptBundle(f"{bundle.ref}: the tokenizer has {tokenizer.vocab_size} pieces but the model "
                            f"{cfg.vocab_size}; re-train the model")
    return Classifier(model, tokenizer, labels, label_prefix=data.get("label_prefix", ""),
                      max_len=int(data.get("max_len", 256)), threshold=float(data.get("threshold", 0.5)),
                      ref=bundle.ref)


def classifier_promotion(spec, registry, model, tokenizer, texts: Sequence[str], gold: Sequence[tuple[str, ...]],
                         retrain, log):
    """``--promote``: the new model and the aliased one, fresh, on this run's validation examples; the
    key metric (``--select``) must rise by at least ``--min-delta`` and significantly (paired bootstrap)."""
    from rnntool.kinds.classifier.metrics import classification_report, paired_test
    from rnntool.training.retrain import PromotionDecision, decide, first_promotion

    metric = f"val_{spec.select}"
    was_training = model.training
    model.eval()
    new = Classifier(model, tokenizer, spec.labels, max_len=spec.max_len, threshold=spec.threshold)
    new_pred = [p.labels for p in new.predict(texts)]
    model.train(was_training)
    new_score = classification_report(gold, new_pred, samples=0)[spec.select]
    alias = retrain.promote
    current = registry.aliases(spec.name).get(alias)
    if current is None:
        return first_promotion(alias, metric, True, new_score)
    old_ref = f"{spec.name}@{current}"
    old = open_classifier(old_ref, registry.root, device=str(new.device))  # WrongKind unless a classifier
    old_pred = [p.labels for p in old.predict(texts)]
    test = paired_test(gold, old_pred, new_pred, key=spec.select)  # over the labels gold and either predicts
    log(f"promotion check on {len(texts)} validation examples: {spec.select} new {test['score_b']:.4f} vs "
        f"{old_ref} {test['score_a']:.4f} (paired bootstrap p={test['p_value']:.3f})")
    if not (math.isfinite(test["score_a"]) and math.isfinite(test["score_b"])):
        return PromotionDecision(alias, False, "a score is not finite", metric, True, test["score_b"],
                                 test["score_a"], old_ref, retrain.min_delta)
    return decide(alias, metric, higher_is_better=True, new_score=test["score_b"], old_score=test["score_a"],
                  old_ref=old_ref, min_delta=retrain.min_delta, p_value=test["p_value"])


__all__ = ["Classifier", "Prediction", "classifier_promotion", "open_classifier"]
