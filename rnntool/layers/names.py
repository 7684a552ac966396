"""The names of the layer types a model can be built from, as options and configs spell them.

Torch-free, so the command line can offer them as choices without importing torch.
"""

from __future__ import annotations

CELLS = ("rnn-tanh", "rnn-relu", "gru", "lstm")  # Elman RNN (tanh or ReLU), GRU, LSTM: torch's fused layers
ATTENTION_TYPES = ("none", "dot", "general", "mlp")  # "none": the encoder summary is the context at every step
BRIDGE_TYPES = ("linear", "zeros")  # an encoder-decoder's first decoder state: from the encoder's final states, or 0
SENTENCE_POOLINGS = ("last", "mean", "max")  # `rnntool embed --pool`: an encoder's states -> one sentence vector

__all__ = ["ATTENTION_TYPES", "BRIDGE_TYPES", "CELLS", "SENTENCE_POOLINGS"]
