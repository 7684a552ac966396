"""Subword regularisation with our own seeded generator: the same seed draws the same pieces in any
process (``tokenize encode --sample --seed``, ``train translate --sample-alpha`` on resume and on
every DDP rank).

    sampler = SubwordSampler(tokenizer, alpha=0.1, seed=7)
    sampler.sample_ids("a cat")      # one segmentation drawn at random, as ids
    sampler.sample_pieces("a cat")   # ... as pieces

SentencePiece's own sampling (``enable_sampling``) does not repeat across processes under
``set_random_generator_seed`` (measured with sentencepiece 0.2: the same seed, a fresh thread, and two
processes drew different pieces), so the draw happens here:

- unigram tokenizers: l-best sampling (Kudo 2018, section 3.2): among the ``NBEST`` most likely
  segmentations, one drawn with probability proportional to P(x)^alpha, P(x) the product of its
  pieces' probabilities (smaller alpha: closer to uniform).
- bpe tokenizers: BPE-dropout (Provilkov et al. 2020) within each piece of the deterministic
  segmentation: the piece is rebuilt from its characters by BPE's merges in score order, each merge
  that is possible at a step dropped with probability ``alpha``; when every possible merge is
  dropped the piece stays split there. (Full BPE-dropout reruns the merges over the whole word, so
  pieces may also straddle the deterministic boundaries; this variant only ever splits them.)

Either way the pieces decode to the text the deterministic segmentation decodes to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from rnntool.tokenizers.sentencepiece import Tokenizer

NBEST = 32  # l of l-best sampling


class SubwordSampler:
    def __init__(self, tokenizer: "Tokenizer", alpha: float, seed: int | None = None) -> None:
        self.sp = tokenizer._sp
        self.alpha = float(alpha)
        self.rng = np.random.default_rng(seed)
        self.unigram = tokenizer.is_unigram
        size = self.sp.get_piece_size()
        if self.unigram:
            self.scores = np.array([self.sp.get_score(i) for i in range(size)], dtype=np.float64)
        else:  # the pieces BPE may merge into, with their merge priority (higher first)
            self.merges = {self.sp.id_to_piece(i): (i, self.sp.get_score(i)) for i in range(size)
                           if not (self.sp.is_control(i) or self.sp.is_unknown(i) or self.sp.is_byte(i))}

    def sample_batch(self, lines: Sequence[str]) -> list[list[int]]:
        return [self.sample_ids(line) for line in lines]

    def sample_pieces(self, text: str) -> list[str]:
        return [self.sp.id_to_piece(i) for i in self.sample_ids(text)]

    def sample_ids(self, text: str) -> list[int]:
        return self._lbest(text) if self.unigram else self._dropout(text)

    def _lbest(self, text: str) -> list[int]:
        candidates = self.sp.nbest_encode(text, nbest_size=NBEST)
        if len(candidates) <= 1:
            return candidates[0] if candidates else []
        logp = np.array([self.scores[c].sum() for c in candidates]) * self.alpha  # log P(x)^alpha
        p = np.exp(logp - logp.max())
        return candidates[int(self.rng.choice(len(candidates), p=p / p.sum()))]

    def _dropout(self, text: str) -> list[int]:
        out: list[int] = []
        for i in self.sp.encode(text):
            piece = self.sp.id_to_piece(i)
            if len(piece) < 2 or self.sp.is_byte(i) or i not in self._merge_ids:
                out.append(i)
            else:
                out.extend(self._split(piece, i))
        return out

    @property
    def _merge_ids(self) -> set[int]:
        if not hasattr(self, "_ids"):
            self._ids = {i for i, _ in self.merges.values()}
        return self._ids

    def _split(self, piece: str, piece_id: int) -> list[int]:
        symbols = list(piece)
        if any(s not in self.merges for s in symbols):
            return [piece_id]  # a character the vocabulary lacks: keep the piece whole
        merges, drop, rng = self.merges, self.alpha, self.rng
        while len(symbols) > 1:
            best, best_score = -1, -math.inf
            for k in range(len(symbols) - 1):
                merged = merges.get(symbols[k] + symbols[k + 1])
                if merged is not None and merged[1] > best_score and rng.random() >= drop:
                    best, best_score = k, merged[1]
            if best < 0:
                break
            symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
        return [merges[s][0] for s in symbols]
