"""SentencePiece tokenizers: loading with fixed special ids, and training."""
