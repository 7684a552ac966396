"""A text classifier's input embedding table as word vectors (the catalog's ``input_embeddings``; torch-free).

    vectors = classifier_vectors(bundle)     # every piece in id order, specials included: (V, E)

The rows are the shared encoder's embedding (RNNClassifier.encoder.embedding, rnntool/layers/encoder.py),
read alone from model.safetensors.
"""

from __future__ import annotations

from rnntool.kinds.catalog import WEIGHTS_FILE
from rnntool.tokenizers.sentencepiece import Tokenizer
from rnntool.vectors.io import WordVectors, embedding_table, one_table

EMBEDDING = "encoder.embedding.weight"  # RNNClassifier.encoder.embedding: (V, E)


def classifier_vectors(bundle, side: str | None = None) -> WordVectors:
    """The embedding table of a ``classifier`` bundle, one row per piece of its tokenizer."""
    one_table(bundle, side)
    pieces = [piece for piece, _ in Tokenizer.from_bundle(bundle).vocabulary()]  # id order
    return embedding_table(bundle, WEIGHTS_FILE, EMBEDDING, pieces)
