"""A translation model's encoder as a sentence encoder (`rnntool embed`, rnntool/vectors/sentences.py):
the (bidirectional) encoder over the source pieces + EOS, as in translation; ``last`` is its final
state, the one the bridge turns into the decoder's first."""

from __future__ import annotations

import torch

from rnntool.kinds.translation.model import source_batch
from rnntool.vectors.sentences import States, final_top_state


class TranslationSentenceEncoder:
    def __init__(self, model, tokenizer, ref: str, device) -> None:
        self.model, self.tokenizer, self.ref, self.device = model, tokenizer, ref, device
        self.dim = model.encoder.output_dim

    def states(self, lines: list[str]) -> States:
        ids = self.tokenizer.encode_batch(lines)
        src, lengths = source_batch(ids, self.device)  # (B, S) pieces + EOS, (B,)
        memory, final = self.model.encoder(src, lengths)  # (B, S, H) zeros on padding, (L, B, H)
        blank = torch.tensor([not x for x in ids], device=lengths.device)
        return States(memory, lengths.masked_fill(blank, 0), final_top_state(final))


def open_translation_encoder(bundle, device) -> TranslationSentenceEncoder:
    """The catalog's ``sentence_encoder`` of the translation kind: the source side's encoder."""
    from rnntool.kinds.translation.model import load_translation

    model, src_tok, _ = load_translation(bundle, device)
    return TranslationSentenceEncoder(model, src_tok, bundle.ref, device)
