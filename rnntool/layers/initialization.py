"""How a new model's weights start: torch's defaults, or ``train --init-range R`` (OpenNMT-py's
``param_init``): every weight and bias uniform in [-R, R].

    init_uniform(model, 0.1)   # after building, before --init-embeddings loads word vectors

Without it each kind starts as it builds: torch's per-layer defaults (embeddings N(0, 1), LSTM/GRU and
linear layers +-1/sqrt(fan)) where the kind sets nothing else. Which start learns faster depends on the
recipe: on Multi30k R = 0.1 made OpenNMT-py's recipe (hidden 256, untied) learn much faster, and the
`best` recipe (hidden 512, tied embeddings) much slower (bench/RESULTS.md). Normalisation layers keep
their own start (a gain of one), and an embedding's padding row stays zero.
"""

from __future__ import annotations

import torch
from torch import nn

NORMALISATION_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm,
                        *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))


def init_uniform(model: nn.Module, bound: float) -> None:
    """Set every parameter of ``model`` uniform in [-bound, bound] (in place, from torch's RNG)."""
    if not bound > 0:
        raise ValueError(f"init_uniform needs a bound > 0 (got {bound})")
    seen: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, NORMALISATION_LAYERS):
                continue
            for p in module.parameters(recurse=False):
                if id(p) not in seen:  # a tied weight is drawn once
                    seen.add(id(p))
                    p.uniform_(-bound, bound)
        for module in model.modules():
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()


__all__ = ["init_uniform"]
