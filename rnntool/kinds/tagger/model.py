"""The transducer: one tag per word. Word embeddings + a character BiLSTM per word -> stacked,
optionally bidirectional RNN over packed sentences -> per-token scores -> softmax, or a CRF.

    config = TaggerConfig(vocab_size=20000, char_vocab_size=120, num_tags=17, crf=False)
    model = RNNTagger(config)
    emissions = model(words, chars, lengths)   # words (B, T), chars (B, T, W), lengths (B,) -> (B, T, K)
    model.decode(emissions, mask)              # best tag ids per sentence (Viterbi with --crf)

The character encoder gives words never seen in training a vector from their spelling (without it
tagging accuracy on real text falls by points). Words: id 0 padding, 1 unknown; characters the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnntool.errors import ConfigError
from rnntool.kinds.configs import config_from_dict
from rnntool.layers.crf import CRF
from rnntool.layers.recurrent import CELLS, make_rnn

PAD, UNK = 0, 1  # word and character ids


@dataclass
class TaggerConfig:
    vocab_size: int
    char_vocab_size: int
    num_tags: int
    cell: str = "lstm"
    layers: int = 2
    embed_dim: int = 100
    char_dim: int = 32
    char_hidden: int = 64  # the character BiLSTM's output per word (each direction half); 0: none
    hidden_dim: int = 256  # the sentence RNN's output (each direction half when bidirectional)
    bidirectional: bool = True
    dropout: float = 0.33
    crf: bool = False
    constraints: str | None = None  # "iob1" | "iob2" | "iobes": transitions the CRF may not take

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        for name in ("vocab_size", "char_vocab_size", "num_tags", "layers", "embed_dim", "char_dim", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer (got {value!r})")
        if not isinstance(self.char_hidden, int) or self.char_hidden < 0 or self.char_hidden % 2:
            raise ConfigError(f"--char-hidden must be 0 (no character encoder) or a positive even number "
                              f"(got {self.char_hidden!r})")
        if self.bidirectional and self.hidden_dim % 2:
            raise ConfigError(f"--hidden-dim must be even with --bidirectional (got {self.hidden_dim})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout!r})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TaggerConfig":
        return config_from_dict(cls, d, "tagger")


def _packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor):
    """rnn over x (N, T, D) with true lengths (N,) (each >= 1) -> outputs (N, T, H) zero on padding,
    and the final state."""
    lengths = lengths.cpu()
    if bool((lengths == x.size(1)).all()):
        return rnn(x)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final


class RNNTagger(nn.Module):
    def __init__(self, config: TaggerConfig, tags: list[str] | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.word_embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=PAD)
        features = c.embed_dim
        if c.char_hidden:
            self.char_embedding = nn.Embedding(c.char_vocab_size, c.char_dim, padding_idx=PAD)
            self.char_rnn = nn.LSTM(c.char_dim, c.char_hidden // 2, batch_first=True, bidirectional=True)
            features += c.char_hidden
        self.dropout = nn.Dropout(c.dropout)
        directions = 2 if c.bidirectional else 1
        self.rnn = make_rnn(c.cell, features, c.hidden_dim // directions, c.layers, c.dropout, c.bidirectional)
        self.output = nn.Linear(c.hidden_dim, c.num_tags)
        if c.crf:
            from rnntool.layers.crf import bio_transitions

            masks = bio_transitions(tags, c.constraints) if c.constraints and tags else ()
            self.crf = CRF(c.num_tags, *masks)

    def char_features(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (B, T, W) -> one vector per word (B, T, C): the character BiLSTM's final states."""
        b, t, w = chars.shape
        flat = chars.reshape(b * t, w)  # (B*T, W)
        lengths = (flat != PAD).sum(1)  # (B*T,)
        real = lengths > 0
        out = torch.zeros(b * t, self.config.char_hidden, device=chars.device)
        if bool(real.any()):
            emb = self.dropout(self.char_embedding(flat[real]))  # (N, W, D)
            _, (h, _) = _packed(self.char_rnn, emb, lengths[real])  # h (2, N, C/2)
            out[real] = torch.cat([h[0], h[1]], dim=-1).to(out.dtype)  # (N, C)
        return out.view(b, t, -1)

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """words (B, T), chars (B, T, W), lengths (B,) -> emissions (B, T, K) (zeros past each length)."""
        x = self.word_embedding(words)  # (B, T, E)
        if self.config.char_hidden:
            x = torch.cat([x, self.char_features(chars).to(x.dtype)], dim=-1)  # (B, T, E + C)
        hidden, _ = _packed(self.rnn, self.dropout(x), lengths)  # (B, T, H)
        return self.output(self.dropout(hidden))  # (B, T, K)

    def loss_sum(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed loss over the real tokens: the CRF's sentence NLLs, or per-token cross-entropy."""
        if self.config.crf:
            return self.crf.nll(emissions, tags, mask).sum()
        logits = emissions.float()[mask]  # (N, K)
        return nn.functional.cross_entropy(logits, tags[mask], reduction="sum")

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[list[list[int]], list[list[float]]]:
        """Best tag ids per sentence and each chosen tag's probability (CRF: Viterbi and marginals)."""
        if self.config.crf:
            paths = self.crf.decode(emissions, mask)
            probs = self.crf.marginals(emissions, mask)  # (B, T, K)
        else:
            probs = torch.softmax(emissions.float(), dim=-1)  # (B, T, K)
            best = probs.argmax(-1)  # (B, T)
            lengths = mask.sum(1).tolist()
            paths = [best[i, :n].tolist() for i, n in enumerate(lengths)]
        chosen = [[float(probs[i, j, k]) for j, k in enumerate(path)] for i, path in enumerate(paths)]
        return paths, chosen


__all__ = ["PAD", "UNK", "RNNTagger", "TaggerConfig"]
