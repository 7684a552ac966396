"""A language model as a sentence encoder (`rnntool embed`, rnntool/vectors/sentences.py): its top layer's
states after each piece of a line, read from the start symbol it was trained with (BOS, or EOS in
stream mode); ``last`` is the state after the last piece."""

from __future__ import annotations

import torch

from rnntool.kinds.lm.model import LoadedLM
from rnntool.tokenizers.sentencepiece import PAD_ID
from rnntool.vectors.sentences import States


class LMSentenceEncoder:
    def __init__(self, lm: LoadedLM, device) -> None:
        self.lm, self.device = lm, device
        self.ref = lm.bundle.ref
        self.dim = lm.model.config.hidden_dim

    def states(self, lines: list[str]) -> States:
        ids = self.lm.tokenizer.encode_batch(lines)
        lengths = torch.tensor([len(x) for x in ids], dtype=torch.long)  # (B,)
        tokens = torch.full((len(ids), int(lengths.max()) + 1), PAD_ID, dtype=torch.long)  # (B, 1 + T)
        tokens[:, 0] = self.lm.start_id
        for row, x in enumerate(ids):
            tokens[row, 1:len(x) + 1] = torch.tensor(x, dtype=torch.long)
        hidden, _ = self.lm.model.encode(tokens.to(self.device))  # (B, 1 + T, H): causal, so padding is harmless
        memory = hidden[:, 1:] if hidden.shape[1] > 1 else torch.zeros_like(hidden)  # (B, T, H) after each piece
        steps = torch.arange(memory.shape[1], device=memory.device)
        memory = memory * (steps[None, :] < lengths.to(memory.device)[:, None])[:, :, None]
        last = memory[torch.arange(len(ids)), (lengths - 1).clamp(min=0).to(memory.device)]  # (B, H)
        return States(memory, lengths, last)


def open_lm_encoder(bundle, device) -> LMSentenceEncoder:
    """The catalog's ``sentence_encoder`` of the lm kind."""
    from rnntool.kinds.lm.model import lm_from_bundle

    return LMSentenceEncoder(lm_from_bundle(bundle, device), device)
