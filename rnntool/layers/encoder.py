"""The encoder that translation and classification share: embeddings -> stacked, optionally
bidirectional, fused RNN over packed sequences (padding costs nothing and never leaks into the
final states).

With ``bidirectional`` each direction has ``hidden_dim // 2`` units, so the encoder's outputs are
always ``hidden_dim`` wide, like the decoder's (this is what lets dot attention work).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnntool.errors import ConfigError
from rnntool.layers.recurrent import RnnState, make_rnn, map_state
from rnntool.tokenizers.sentencepiece import PAD_ID



class Encoder(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, layers: int, cell: str,
                 bidirectional: bool, dropout: float) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        if hidden_dim % self.directions:
            raise ConfigError(f"--hidden-dim must be even with --bidirectional (got {hidden_dim})")
        self.layers = layers
        self.output_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, embed_dim, hidden_dim // self.directions, layers, dropout, bidirectional)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, RnnState]:
        """src (B, S), src_lengths (B,) -> memory (B, S, H) (zeros on padding), final state per layer
        with both directions concatenated: (L, B, H), or a pair of those for lstm."""
        batch, src_len = src.shape
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        lengths = src_lengths.cpu()
        if bool((lengths == src_len).all()):
            # No padding (length-bucketed training batches mostly): the same result without packing,
            # which on CPU also keeps torch on its fused oneDNN kernels (packed input falls off them).
            memory, final = self.rnn(emb)  # (B, S, H)
        else:
            packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
            out, final = self.rnn(packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src_len)  # (B, S, H)

        def join_directions(h: torch.Tensor) -> torch.Tensor:  # (L*D, B, H/D) -> (L, B, H)
            h = h.view(self.layers, self.directions, batch, -1)  # (L, D, B, H/D)
            return h.transpose(1, 2).reshape(self.layers, batch, -1)

        return memory, map_state(final, join_directions)
