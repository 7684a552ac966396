"""`rnntool tokenize train|encode|decode` (SentencePiece)."""
