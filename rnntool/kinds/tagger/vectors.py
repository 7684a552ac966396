"""A tagger's word embedding table as word vectors (the catalog's ``input_embeddings``; torch-free).

    vectors = tagger_vectors(bundle)     # "<pad>", "<unk>", then vocab.json's words: (V, E)

The rows are RNNTagger.word_embedding (rnntool/kinds/tagger/model.py), read alone from
model.safetensors; the words are vocab.json's in id order (id = position + 2: 0 is padding, 1 the
unknown word), after names for those two rows that no word of the vocabulary has.
"""

from __future__ import annotations

import json

from rnntool.errors import CorruptBundle
from rnntool.kinds.catalog import VOCAB_FILE, WEIGHTS_FILE
from rnntool.vectors.io import WordVectors, embedding_table, one_table

EMBEDDING = "word_embedding.weight"  # RNNTagger.word_embedding: (V, E)
SPECIAL_ROWS = ("<pad>", "<unk>")  # ids 0 and 1 (rnntool/kinds/tagger/model.py: PAD, UNK)


def _special_names(words: list[str]) -> list[str]:
    """Names for the padding and unknown rows that no word has (``<unk>`` could be a word of the data)."""
    taken = set(words)
    names = []
    for name in SPECIAL_ROWS:
        while name in taken:
            name = f"<{name}>"
        taken.add(name)
        names.append(name)
    return names


def tagger_vectors(bundle, side: str | None = None) -> WordVectors:
    """The word embedding table of a ``tagger`` bundle, one row per word id."""
    one_table(bundle, side)
    try:
        words = json.loads(bundle.file(VOCAB_FILE).read_text(encoding="utf-8"))["words"]
        if not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
            raise TypeError("its words are not a list of strings")
    except (ValueError, KeyError, TypeError) as e:
        raise CorruptBundle(f"{bundle.ref}: {VOCAB_FILE} is not a tagger vocabulary ({e}); re-train the model") from None
    return embedding_table(bundle, WEIGHTS_FILE, EMBEDDING, [*_special_names(words), *words])
