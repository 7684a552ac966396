"""`rnntool evaluate perplexity`."""
