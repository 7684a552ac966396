"""Sentence vectors from any model with an encoder (`rnntool embed`): the kinds' side and the pooling.

    encoder = open_sentence_encoder("news@prod")          # any kind whose catalog line has a sentence encoder
    for vector in embed_lines(encoder, lines, pool="mean", normalize=True, batch_size=64):
        ...                                               # (H,) float32 per line, in input order

Each kind says how it reads a line (``KindEntry.sentence_encoder`` in rnntool/kinds/catalog.py names a
function ``(bundle, device) -> SentenceEncoder``): a language model its states after each piece, a
translation model its encoder over the source pieces + EOS, a classifier its encoder over BOS + pieces +
EOS, a tagger its word-level RNN over the whitespace-separated tokens. What they return, ``States``, is
pooled here, the same for every kind:

- ``last``: the encoder's final state, as its architecture defines it: the top layer's state after the
  last position (a bidirectional RNN: the forward direction's last state and the backward direction's
  first, concatenated; an LSTM: h, not the cell);
- ``mean`` / ``max``: the average / element-wise maximum of the top layer's outputs over the real positions.

A blank line (no pieces) has the zero vector. Batches are padded and packed, so a batch gives each
line the vector it gets alone (to float tolerance; tests/vectors/test_embed.py).
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from rnntool.errors import ConfigError, UsageError
from rnntool.layers.names import SENTENCE_POOLINGS as POOLINGS


@dataclass
class States:
    memory: torch.Tensor  # (B, T, H) top-layer outputs, zeros past each length
    lengths: torch.Tensor  # (B,) real positions (0: a blank line)
    last: torch.Tensor  # (B, H) the final state as the architecture defines it


class SentenceEncoder(Protocol):
    ref: str  # the model it came from ("news@3")
    dim: int  # H

    def states(self, lines: list[str]) -> States: ...


def pool(states: States, how: str) -> torch.Tensor:
    """States of B lines -> one vector per line (B, H); zeros for a line without positions."""
    if how not in POOLINGS:
        raise ConfigError(f"--pool must be one of {', '.join(POOLINGS)} (got {how!r})")
    lengths = states.lengths.to(states.memory.device)
    real = lengths > 0  # (B,)
    if how == "last":
        vectors = states.last
    elif how == "mean":
        vectors = states.memory.sum(1) / lengths.clamp(min=1)[:, None].to(states.memory.dtype)  # (B, H)
    else:
        steps = torch.arange(states.memory.shape[1], device=lengths.device)
        mask = steps[None, :] < lengths[:, None]  # (B, T)
        vectors = states.memory.masked_fill(~mask[:, :, None], float("-inf")).amax(1)  # (B, H)
    return torch.where(real[:, None], vectors, torch.zeros_like(vectors)).float()


def embed_lines(encoder: SentenceEncoder, lines: Iterable[str], *, pool_how: str = "mean",
                normalize: bool = False, batch_size: int = 64) -> Iterator[np.ndarray]:
    """One float32 vector (H,) per line, in input order; each batch is answered before more is read."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 (got {batch_size})")
    it = iter(lines)
    while chunk := list(itertools.islice(it, batch_size)):
        with torch.inference_mode():
            vectors = pool(encoder.states(chunk), pool_how)  # (B, H)
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
        yield from vectors.cpu().numpy()


def open_sentence_encoder(ref: str, registry=None, device: str = "auto") -> SentenceEncoder:
    """The sentence encoder of the model ``ref`` (a registry reference or a bundle directory)."""
    from rnntool.kinds.catalog import CATALOG
    from rnntool.registry.store import Registry
    from rnntool.runtime import prepare_device

    bundle = Registry.open(registry).load(ref)
    line = CATALOG.get(bundle.kind)
    if line is None or not line.sentence_encoder:
        having = ", ".join(k for k, e in CATALOG.items() if e.sentence_encoder)
        raise UsageError(f"{bundle.ref} is {line.label if line else 'a ' + bundle.kind}, which has no encoder to "
                         f"embed with; give a model of a kind that has one ({having})")
    module, _, function = line.sentence_encoder.partition(":")
    return getattr(importlib.import_module(module), function)(bundle, prepare_device(device))


def final_top_state(final) -> torch.Tensor:
    """An RNN's final state with directions joined per layer, (L, B, H) or an LSTM's (h, c) pair ->
    the top layer's (B, H) (h for an LSTM)."""
    return (final[0] if isinstance(final, tuple) else final)[-1]


__all__ = ["POOLINGS", "SentenceEncoder", "States", "embed_lines", "final_top_state", "open_sentence_encoder",
           "pool"]
