"""`rnntool evaluate bleu`."""
