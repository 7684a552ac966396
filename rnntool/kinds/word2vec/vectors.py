"""A word2vec bundle's vectors: as word vectors (the catalog's ``input_embeddings``; torch-free) and as a
sentence encoder (``sentence_encoder``: `rnntool embed` averages a line's word vectors).

    vectors = word2vec_vectors(bundle)       # (V, D), words in frequency order
    encoder = open_word2vec_encoder(bundle, device)

As a sentence encoder a line is its whitespace-separated words (lowercased if the vectors were trained
so) that have a vector; ``mean`` is the averaged word vectors (the usual baseline), ``max`` their
element-wise maximum, ``last`` the last known word's vector (word vectors have no recurrent state).
"""

from __future__ import annotations

import json

import numpy as np

from rnntool.errors import CorruptBundle
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE
from rnntool.kinds.word2vec import VECTORS_TENSOR
from rnntool.vectors.io import WordVectors, embedding_table, one_table


def _vocab(bundle) -> dict:
    try:
        vocab = json.loads(bundle.file(VOCAB_FILE).read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise CorruptBundle(f"{bundle.ref}: {VOCAB_FILE} is not a word2vec vocabulary ({e}); re-train it") from None
    if not isinstance(vocab, dict) or not isinstance(vocab.get("words"), list):
        raise CorruptBundle(f"{bundle.ref}: {VOCAB_FILE} has no word list; re-train it")
    return vocab


def word2vec_vectors(bundle, side: str | None = None) -> WordVectors:
    """The vectors of a ``word2vec`` bundle."""
    one_table(bundle, side)
    return embedding_table(bundle, WEIGHTS_FILE, VECTORS_TENSOR, _vocab(bundle)["words"])


class Word2VecSentenceEncoder:
    def __init__(self, vectors: WordVectors, lowercase: bool, ref: str, device) -> None:
        import torch

        self.vectors, self.lowercase, self.ref, self.device = vectors, lowercase, ref, device
        self.table = torch.from_numpy(np.ascontiguousarray(vectors.matrix)).to(device)  # (V, D)
        self.dim = vectors.dim

    def states(self, lines: list[str]):
        import torch

        from rnntool.vectors.sentences import States

        index = self.vectors.index
        rows = [[index[w] for w in (line.lower() if self.lowercase else line).split() if w in index] for line in lines]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)  # (B,)
        width = max(int(lengths.max()), 1)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        ids = ids.to(self.device)
        mask = (torch.arange(width)[None, :] < lengths[:, None]).to(self.device)  # (B, T)
        memory = self.table[ids] * mask[:, :, None]  # (B, T, D) zeros past each length
        last = memory[torch.arange(len(rows)), (lengths - 1).clamp(min=0).to(self.device)]  # (B, D)
        return States(memory, lengths, last)


def open_word2vec_encoder(bundle, device) -> Word2VecSentenceEncoder:
    """The catalog's ``sentence_encoder`` of the word2vec kind."""
    return Word2VecSentenceEncoder(word2vec_vectors(bundle), bool(_vocab(bundle).get("lowercase")), bundle.ref,
                                   device)
