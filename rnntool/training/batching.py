"""Batches of similar length for tasks whose examples are whole sequences (classification, tagging).

    batches = length_batches([len(x) for x in examples], batch_size=32, seed=cfg.seed + epoch)

Shuffled, sorted by length within pools of POOL_BATCHES batches (little padding), cut, and the
batches shuffled: the same for the same lengths, batch size and seed, so an epoch's batches can be
rebuilt on resume and split across DDP ranks.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

POOL_BATCHES = 50  # a shuffled pool of this many batches is sorted by length before it is cut


def length_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Indices in batches of similar length: shuffled, sorted within pools of POOL_BATCHES batches,
    cut, and the batches shuffled — the same for the same (lengths, batch_size, seed)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


__all__ = ["POOL_BATCHES", "length_batches"]
