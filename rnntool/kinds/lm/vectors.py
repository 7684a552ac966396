"""A language model's input embedding table as word vectors (the catalog's ``input_embeddings``; torch-free).

    vectors = lm_vectors(bundle)     # every piece in id order, specials included: (V, E)

The rows are RNNLM.embedding (rnntool/kinds/lm/model.py), read alone from model.safetensors.
"""

from __future__ import annotations

from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.tokenizers.sentencepiece import Tokenizer
from rnntool.vectors.io import WordVectors, embedding_table, one_table

EMBEDDING = "embedding.weight"  # RNNLM.embedding: (V, E)


def lm_vectors(bundle, side: str | None = None) -> WordVectors:
    """The embedding table of an ``lm`` bundle, one row per piece of its tokenizer."""
    one_table(bundle, side)
    pieces = [piece for piece, _ in Tokenizer.from_bundle(bundle).vocabulary()]  # id order
    return embedding_table(bundle, WEIGHTS_FILE, EMBEDDING, pieces)
