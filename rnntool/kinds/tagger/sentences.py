"""A tagger's word-level RNN as a sentence encoder (`rnntool embed`, rnntool/vectors/sentences.py): the
tokens are the line's whitespace-separated words, as `rnntool tag` reads them; the RNN runs over their
word (+ character) features; ``last`` joins each direction's final state of the top layer."""

from __future__ import annotations

import torch

from rnntool.kinds.tagger.model import _packed
from rnntool.vectors.sentences import States


class TaggerSentenceEncoder:
    def __init__(self, tagger) -> None:
        self.tagger = tagger
        self.ref = tagger.ref
        self.dim = tagger.model.config.hidden_dim

    def states(self, lines: list[str]) -> States:
        from rnntool.kinds.tagger.task import sentence_batch

        model, cfg = self.tagger.model, self.tagger.model.config
        sentences = [line.split() for line in lines]
        words, chars, lengths = sentence_batch(self.tagger.vocab, [s or ["."] for s in sentences],
                                               self.tagger.device)  # (B, T), (B, T, W), (B,)
        x = model.word_embedding(words)  # (B, T, E)
        if cfg.char_hidden:
            x = torch.cat([x, model.char_features(chars).to(x.dtype)], dim=-1)  # (B, T, E + C)
        memory, final = _packed(model.rnn, x, lengths)  # (B, T, H), (L * D, B, H / D)
        h = final[0] if isinstance(final, tuple) else final
        directions = 2 if cfg.bidirectional else 1
        last = h.view(cfg.layers, directions, h.shape[1], -1)[-1]  # (D, B, H / D): the top layer
        last = torch.cat(list(last), dim=-1)  # (B, H)
        blank = torch.tensor([not s for s in sentences], device=lengths.device)
        return States(memory, lengths.masked_fill(blank, 0), last)


def open_tagger_encoder(bundle, device) -> TaggerSentenceEncoder:
    """The catalog's ``sentence_encoder`` of the tagger kind."""
    from rnntool.kinds.tagger.predict import tagger_from_bundle

    return TaggerSentenceEncoder(tagger_from_bundle(bundle, device))
