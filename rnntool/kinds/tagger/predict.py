"""A trained tagger at work: `rnntool tag`, `evaluate tags -m` and `--promote`.

    tagger = open_tagger("ewt-upos@prod")
    for t in tagger.stream(sentences, batch_size=32):   # token lists, in input order
        t.tokens, t.tags, t.probs                         # the chosen tags and their probabilities
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from rnntool.errors import ConfigError, CorruptBundle
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE


@dataclass
class TaggedSentence:
    tokens: list[str]
    tags: list[str]  # one per token
    probs: list[float]  # the chosen tag's probability per token (CRF: its marginal)


class Tagger:
    """A loaded tagger with its vocabularies."""

    def __init__(self, model, vocab, *, scheme: str | None = None, ref: str = "model") -> None:
        from rnntool.layers.weights import model_device

        self.model, self.vocab, self.scheme, self.ref = model, vocab, scheme, ref
        self.tags = list(vocab.tags)
        self.device = model_device(model)

    def tag(self, sentences: list[list[str]]) -> list[TaggedSentence]:
        from rnntool.kinds.tagger.task import tag_sentences

        with torch.inference_mode():
            tags, probs = tag_sentences(self.model, self.vocab, sentences)
        return [TaggedSentence(list(s), t, p) for s, t, p in zip(sentences, tags, probs)]

    def stream(self, sentences: Iterable[list[str]], batch_size: int = 32) -> Iterator[TaggedSentence]:
        """Tagged sentences in input order, ``batch_size`` at a time; each chunk is answered before more
        input is read (``batch_size=1``: every sentence as it arrives)."""
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1 (got {batch_size})")
        it = iter(sentences)
        while chunk := [list(s) for s in itertools.islice(it, batch_size)]:
            yield from self.tag(chunk)


def open_tagger(ref: str, registry=None, device: str = "auto") -> Tagger:
    """Load a ``tagger`` bundle (a registry reference or a bundle directory), verified."""
    from rnntool.registry.store import Registry
    from rnntool.runtime import prepare_device

    return tagger_from_bundle(Registry.open(registry).load(ref, kind="tagger"), prepare_device(device))


def tagger_from_bundle(bundle, device) -> Tagger:
    """A loaded, verified ``tagger`` bundle -> the tagger (eval mode, on ``device``)."""
    from rnntool.kinds.tagger.model import RNNTagger, TaggerConfig
    from rnntool.kinds.tagger.task import Vocabulary
    from rnntool.layers.weights import build_model, load_weights

    cfg = TaggerConfig.from_dict(bundle.config.get("model") or {})
    try:
        vocab = Vocabulary.from_dict(json.loads(bundle.file(VOCAB_FILE).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptBundle(f"{bundle.ref}: {VOCAB_FILE} is not a tagger vocabulary ({e}); re-train the model") from None
    if (vocab.word_vocab_size, vocab.char_vocab_size, len(vocab.tags)) != (cfg.vocab_size, cfg.char_vocab_size,
                                                                          cfg.num_tags):
        raise CorruptBundle(f"{bundle.ref}: {VOCAB_FILE} does not fit the model's sizes; re-train the model")
    path = bundle.file(WEIGHTS_FILE)
    model = build_model(lambda: RNNTagger(cfg, vocab.tags), weights=path)
    model = load_weights(model, path, device).eval()
    return Tagger(model, vocab, scheme=(bundle.config.get("data") or {}).get("scheme"), ref=bundle.ref)


__all__ = ["TaggedSentence", "Tagger", "open_tagger", "tagger_from_bundle"]
