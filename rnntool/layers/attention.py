"""Attention of decoder states over the encoder's outputs: dot, general (Luong), mlp (Bahdanau's score).

Every variant scores a whole batch of decoder queries against the encoder memory in one go, so the
same code serves the teacher-forced training pass (T = target length) and one decoding step (T = 1):

    query (B, T, H), memory (B, S, H), keys = prepare(memory), mask (B, S) bool (True = real token)
    -> context (B, T, H), weights (B, T, S)

``prepare`` computes what depends on the memory alone (the projected keys) once per sentence, not once
per step. Padded source positions get a score of -inf, hence a weight of exactly 0. "none" (no
attention: the encoder summary is the context at every step) lives in the decoder, not here.

All three follow Luong et al. (2015): the query is the decoder's *current* top-layer output, which is
what lets training run the RNN over all steps at once when input feeding is off.
"""

from __future__ import annotations

import torch
from torch import nn

from rnntool.errors import ConfigError
from rnntool.layers.names import ATTENTION_TYPES  # noqa: F401 (re-exported)


class Attention(nn.Module):
    """Base class: subclasses define ``score`` and optionally ``prepare``."""

    def prepare(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, S, H) -> keys, precomputed once per sentence."""
        return memory

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B, T, H), keys -> scores (B, T, S)."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(query, keys)  # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S), 0 on padding
        context = torch.bmm(weights, memory)  # (B, T, H)
        return context, weights


class DotAttention(Attention):
    """score(h, m) = h·m (Luong "dot"): needs no parameters."""

    def score(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)


class GeneralAttention(DotAttention):
    """score(h, m) = h·(W m) (Luong "general"): dot attention on keys W m, computed once per sentence."""

    def __init__(self, query_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)

    def prepare(self, memory):
        return self.key_proj(memory)  # (B, S, Hq)


class MlpAttention(Attention):
    """score(h, m) = v·tanh(W_q h + W_k m) (Bahdanau's additive score); W_k m once per sentence."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=True)
        self.key_proj = nn.Linear(memory_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def prepare(self, memory):
        return self.key_proj(memory)  # (B, S, A)

    def score(self, query, keys):
        q = self.query_proj(query)  # (B, T, A)
        hidden = torch.tanh(q[:, :, None, :] + keys[:, None, :, :])  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)


def build_attention(kind: str, query_dim: int, memory_dim: int) -> Attention | None:
    """The attention module for ``--attention KIND``; None for "none"."""
    if kind == "none":
        return None
    if kind == "dot":
        if query_dim != memory_dim:
            raise ConfigError(
                f"--attention dot needs equal decoder and encoder sizes (got {query_dim} and "
                f"{memory_dim}); use --attention general or mlp"
            )
        return DotAttention()
    if kind == "general":
        return GeneralAttention(query_dim, memory_dim)
    if kind == "mlp":
        return MlpAttention(query_dim, memory_dim)
    raise ConfigError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTION_TYPES)}")
