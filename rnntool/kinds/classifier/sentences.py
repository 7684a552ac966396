"""A classifier's encoder as a sentence encoder (`rnntool embed`, rnntool/vectors/sentences.py): the
encoder over BOS + at most ``max_len`` pieces + EOS, as in classification; ``last`` is its final state
(its own pooling and output layer are not used: ``--pool`` chooses)."""

from __future__ import annotations

import torch

from rnntool.kinds.classifier.model import token_batch
from rnntool.vectors.sentences import States, final_top_state


class ClassifierSentenceEncoder:
    def __init__(self, classifier) -> None:
        self.classifier = classifier
        self.ref = classifier.ref
        self.dim = classifier.model.encoder.output_dim

    def states(self, lines: list[str]) -> States:
        from rnntool.kinds.classifier.task import wrap_ids

        clf = self.classifier
        pieces = clf.tokenizer.encode_batch(lines)
        tokens, lengths = token_batch([wrap_ids(p, clf.max_len) for p in pieces], clf.device)  # (B, T), (B,)
        memory, final = clf.model.encoder(tokens, lengths)  # (B, T, H) zeros on padding, (L, B, H)
        blank = torch.tensor([not p for p in pieces], device=lengths.device)
        return States(memory, lengths.masked_fill(blank, 0), final_top_state(final))


def open_classifier_encoder(bundle, device) -> ClassifierSentenceEncoder:
    """The catalog's ``sentence_encoder`` of the classifier kind."""
    from rnntool.kinds.classifier.predict import classifier_from_bundle

    return ClassifierSentenceEncoder(classifier_from_bundle(bundle, device))
