"""The encoder-decoder: attention translation models."""
