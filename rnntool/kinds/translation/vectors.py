"""A translation model's input embedding tables as word vectors (the catalog's ``input_embeddings``; torch-free).

    vectors = translation_vectors(bundle)          # the encoder's: every source piece in id order, (Vs, E)
    vectors = translation_vectors(bundle, "tgt")   # the decoder's: every target piece in id order, (Vt, E)

The rows are Seq2Seq.encoder.embedding and Seq2Seq.decoder.embedding (rnntool/kinds/translation/model.py),
read alone from model.safetensors; with --share-embeddings both name one stored table.
"""

from __future__ import annotations

from rnntool.errors import UsageError
from rnntool.kinds.catalog import SIDE_FILES, WEIGHTS_FILE
from rnntool.tokenizers.sentencepiece import Tokenizer
from rnntool.vectors.io import WordVectors, embedding_table

EMBEDDINGS = {"src": "encoder.embedding.weight", "tgt": "decoder.embedding.weight"}  # (Vs, E), (Vt, E)


def translation_vectors(bundle, side: str | None = None) -> WordVectors:
    """The source (``side`` "src", the default) or target ("tgt") embedding table of a ``translation``
    bundle, one row per piece of that side's tokenizer."""
    side = side or "src"
    if side not in SIDE_FILES:
        raise UsageError(f"--side {side}: a translation model's sides are {', '.join(SIDE_FILES)}")
    pieces = [piece for piece, _ in Tokenizer.from_bundle(bundle, side=side).vocabulary()]  # id order
    return embedding_table(bundle, WEIGHTS_FILE, EMBEDDINGS[side], pieces)
