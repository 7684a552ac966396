"""The generator: RNN language models."""
