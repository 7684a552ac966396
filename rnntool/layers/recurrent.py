"""torch's fused recurrent layers as every rnntool model builds them, and their state.

The state of a stacked RNN is ``h`` (L, N, H) for rnn-tanh/rnn-relu/gru and ``(h, c)`` for lstm;
``map_state`` is the one place that knows LSTM states are pairs.
"""

from __future__ import annotations

import torch
from torch import nn

from rnntool.errors import ConfigError
from rnntool.layers.names import CELLS

# An RNN's recurrent state: h (L, B, H) for rnn-tanh/rnn-relu/gru; (h, c) for lstm.
RnnState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_rnn(cell: str, input_dim: int, hidden_dim: int, layers: int, dropout: float,
             bidirectional: bool = False) -> nn.RNNBase:
    """torch's fused multi-layer RNN for ``--cell`` (batch-first; ``dropout`` between layers)."""
    kw = dict(num_layers=layers, batch_first=True, bidirectional=bidirectional,
              dropout=dropout if layers > 1 else 0.0)
    if cell == "lstm":
        return nn.LSTM(input_dim, hidden_dim, **kw)
    if cell == "gru":
        return nn.GRU(input_dim, hidden_dim, **kw)
    if cell in ("rnn-tanh", "rnn-relu"):
        return nn.RNN(input_dim, hidden_dim, nonlinearity=cell.removeprefix("rnn-"), **kw)
    raise ConfigError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")


def map_state(state: RnnState, fn) -> RnnState:
    """Apply ``fn`` to h (and c)."""
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


__all__ = ["CELLS", "RnnState", "make_rnn", "map_state"]
