"""The acceptor: embeddings -> stacked, optionally bidirectional RNN over packed sequences -> pooling
-> dropout -> a linear layer (or a small MLP) -> one score per class.

    config = ClassifierConfig(vocab_size=8000, num_classes=6, cell="lstm", pooling="max")
    model = RNNClassifier(config)
    logits = model(tokens, lengths)            # tokens (B, T), lengths (B,) -> logits (B, C)
    probs = model.probabilities(logits)        # softmax, or sigmoids when multi_label

The recurrent part is the encoder every kind shares (rnntool/layers/encoder.py): with
``bidirectional`` each direction has ``hidden_dim // 2`` units. Pooling over the encoder's outputs:
``last`` — the acceptor's final state (the last layer's state after the last real token, both
directions joined), ``mean`` and ``max`` over the real tokens, ``attention`` — a learned weighted
sum (additive scores, padding masked out).

A language model's embedding and recurrent weights fit a unidirectional classifier with the same
cell, sizes and tokenizer (``lm_transfer_weights``): the ULMFiT-style start of ``--init-from LM``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from rnntool.errors import ConfigError
from rnntool.kinds.configs import config_from_dict
from rnntool.layers.encoder import Encoder
from rnntool.layers.recurrent import CELLS

POOLINGS = ("last", "mean", "max", "attention")
ENCODER_PREFIX = "encoder."  # the encoder's parameters: what a language model can give


@dataclass
class ClassifierConfig:
    vocab_size: int
    num_classes: int
    cell: str = "lstm"
    layers: int = 1
    embed_dim: int = 256
    hidden_dim: int = 256  # the encoder's output width (each direction half when bidirectional)
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3  # on the embeddings, between layers and on the pooled vector
    mlp_dim: int = 0  # 0: one linear layer; else a hidden layer of this size (tanh) before it
    multi_label: bool = False  # one sigmoid per class (thresholded) instead of one softmax

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        for name in ("vocab_size", "num_classes", "layers", "embed_dim", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer (got {value!r})")
        if not isinstance(self.mlp_dim, int) or self.mlp_dim < 0:
            raise ConfigError(f"--mlp-dim must be 0 (no hidden layer) or positive (got {self.mlp_dim!r})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout!r})")
        if self.bidirectional and self.hidden_dim % 2:
            raise ConfigError(f"--hidden-dim must be even with --bidirectional (got {self.hidden_dim})")
        if self.num_classes < 2 and not self.multi_label:
            raise ConfigError("a classifier needs at least two classes")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        return config_from_dict(cls, d, "classifier")


class RNNClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(c.vocab_size, c.embed_dim, c.hidden_dim, c.layers, c.cell, c.bidirectional, c.dropout)
        if c.pooling == "attention":
            self.attention = nn.Sequential(nn.Linear(c.hidden_dim, c.hidden_dim), nn.Tanh(),
                                           nn.Linear(c.hidden_dim, 1, bias=False))
        self.dropout = nn.Dropout(c.dropout)
        if c.mlp_dim:
            self.output = nn.Sequential(nn.Linear(c.hidden_dim, c.mlp_dim), nn.Tanh(), nn.Dropout(c.dropout),
                                        nn.Linear(c.mlp_dim, c.num_classes))
        else:
            self.output = nn.Linear(c.hidden_dim, c.num_classes)
        nn.init.uniform_(self.encoder.embedding.weight, -0.1, 0.1)

    def pool(self, memory: torch.Tensor, final, lengths: torch.Tensor) -> torch.Tensor:
        """memory (B, T, H) with zeros on padding, final state, lengths (B,) -> sentence vectors (B, H)."""
        kind = self.config.pooling
        if kind == "last":
            h = final[0] if isinstance(final, tuple) else final  # (L, B, H): the LSTM's h, not its cell
            return h[-1]  # (B, H)
        mask = (torch.arange(memory.size(1), device=memory.device)[None, :]
                < lengths.to(memory.device)[:, None])  # (B, T)
        if kind == "mean":
            return memory.sum(1) / lengths.to(memory.device).clamp(min=1)[:, None].to(memory.dtype)  # (B, H)
        if kind == "max":
            return memory.masked_fill(~mask[:, :, None], float("-inf")).amax(1)  # (B, H)
        scores = self.attention(memory).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=-1)  # (B, T)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, H)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) (each at least 1) -> pooled sentence vectors (B, H)."""
        memory, final = self.encoder(tokens, lengths)  # (B, T, H), (L, B, H)
        return self.pool(memory, final, lengths)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> logits (B, C)."""
        return self.output(self.dropout(self.encode(tokens, lengths)))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (B, C) -> probabilities (B, C): softmax (rows sum to 1), or per-class sigmoids."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.config.multi_label else torch.softmax(logits, dim=-1)

    def param_groups(self, *, lr_scale: float, unfreeze_every: int) -> list[dict]:
        """Optimizer groups for a pretrained encoder (rnntool.training.optim): the output layers from
        the start; the recurrent layers top first, one more every ``unfreeze_every`` steps, the
        embeddings last (ULMFiT's gradual unfreezing), each at ``lr_scale`` times the rate."""
        layers = self.config.layers
        groups: dict[int, list[nn.Parameter]] = {}  # how many steps after the start the group is frozen
        head: list[nn.Parameter] = []
        for name, param in self.named_parameters():
            if name.startswith(ENCODER_PREFIX + "rnn."):
                layer = int(name.rsplit("_l", 1)[1].split("_")[0])  # weight_ih_l1_reverse -> 1
                groups.setdefault(layers - layer, []).append(param)
            elif name.startswith(ENCODER_PREFIX):
                groups.setdefault(layers + 1, []).append(param)
            else:
                head.append(param)
        return [{"params": head}] + [
            {"params": params, "lr_scale": lr_scale, "start_step": depth * unfreeze_every}
            for depth, params in sorted(groups.items())
        ]


def lm_transfer_weights(lm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A language model's embedding and recurrent weights under the classifier's names."""
    return {ENCODER_PREFIX + k: v for k, v in lm_state.items() if k.startswith(("embedding.", "rnn."))}


def token_batch(sequences: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Id lists (each non-empty) -> padded tokens (B, T) and lengths (B,)."""
    from rnntool.tokenizers.sentencepiece import PAD_ID

    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    tokens = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(sequences):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens.to(device), lengths.to(device)


__all__ = ["POOLINGS", "ClassifierConfig", "RNNClassifier", "lm_transfer_weights", "token_batch"]
