"""Decoding any step model: greedy, sampling and batched beam search."""
