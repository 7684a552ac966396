"""Translation pairs: reading (two aligned files or one TSV), length filtering, and token-based,
length-bucketed, shuffled batches that can be replayed exactly (for resuming).

    src_lines, tgt_lines = read_parallel("train.en", "train.de")   # BadInput on a count mismatch
    data = ParallelData.from_lines(src_lines, tgt_lines, src_tok.encode, tgt_tok.encode, max_len=100)
    for indices in data.epoch_batches(epoch=0, batch_tokens=4096, seed=1):
        batch = data.collate(indices)        # src (B, S), src_lengths (B,), tgt_in / tgt_out (B, T)

Batching: sentences are sorted by length (ties broken at random per epoch), cut into batches whose
*padded* size ``rows * max(S, T)`` stays within ``batch_tokens`` and whose sources all have the same
length, and the batch order is shuffled.
The same (seed, epoch) always gives the same batches, so a run resumes at (epoch, batch index).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnntool.runtime import to_device
from rnntool.errors import BadInput, UsageError
from rnntool.textio import display_name, read_lines
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:  # pragma: no cover
    import torch

Encode = Callable[[list[str]], list[list[int]]]


def read_parallel(src_path: str | os.PathLike, tgt_path: str | os.PathLike,
                  on_bad_utf8: str = "strict") -> tuple[list[str], list[str]]:
    """Both sides of a parallel corpus; a line-count mismatch names both files and both counts."""
    src = list(read_lines(src_path, on_bad_utf8=on_bad_utf8))
    tgt = list(read_lines(tgt_path, on_bad_utf8=on_bad_utf8))
    if len(src) != len(tgt):
        raise BadInput(
            f"parallel files differ in length: {display_name(src_path)} has {len(src)} lines, "
            f"{display_name(tgt_path)} has {len(tgt)}; line N of one must translate line N of the other"
        )
    return src, tgt


def read_tsv(path: str | os.PathLike, on_bad_utf8: str = "strict") -> tuple[list[str], list[str]]:
    """``source<TAB>target`` per line (further tabs belong to the target)."""
    src, tgt = [], []
    for lineno, line in enumerate(read_lines(path, on_bad_utf8=on_bad_utf8), start=1):
        s, tab, t = line.partition("\t")
        if not tab:
            raise BadInput(f"{display_name(path)}:{lineno}: no tab; each --tsv line must be "
                           "'source<TAB>target' (or give --src and --tgt files)")
        src.append(s)
        tgt.append(t)
    return src, tgt


@dataclass
class Batch:
    src: "torch.Tensor"  # (B, S) source ids + EOS, PAD-filled
    src_lengths: "torch.Tensor"  # (B,)
    tgt_in: "torch.Tensor"  # (B, T) BOS + target ids
    tgt_out: "torch.Tensor"  # (B, T) target ids + EOS
    n_tokens: int  # real target tokens (incl. EOS): what the loss is averaged over
    n_src_tokens: int

    def to(self, device) -> "Batch":
        return Batch(to_device(self.src, device), to_device(self.src_lengths, device), to_device(self.tgt_in, device),
                     to_device(self.tgt_out, device), self.n_tokens, self.n_src_tokens)


class ParallelData:
    """Tokenized pairs kept as flat int32 arrays + offsets (compact, fast to index)."""

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
                 dropped_long: int = 0, dropped_empty: int = 0) -> None:
        if len(src) != len(tgt):
            raise BadInput(f"{len(src)} source but {len(tgt)} target sentences")
        self.src_lens = np.fromiter((len(s) + 1 for s in src), dtype=np.int64, count=len(src))  # + EOS
        self.tgt_lens = np.fromiter((len(t) + 1 for t in tgt), dtype=np.int64, count=len(tgt))  # + BOS/EOS
        self._src_ids, self._src_off = _flatten(src)
        self._tgt_ids, self._tgt_off = _flatten(tgt)
        self.dropped_long = dropped_long
        self.dropped_empty = dropped_empty
        self.kept: list[int] | None = None  # from_lines: the line numbers of the pairs kept

    @classmethod
    def from_lines(cls, src_lines: list[str], tgt_lines: list[str], encode_src: Encode, encode_tgt: Encode,
                   max_len: int | None = None, keep_all: bool = False) -> "ParallelData":
        """Tokenize; drop pairs with a side over ``max_len`` pieces or an empty side (both counted).
        ``keep_all`` keeps every pair (validation: BLEU is scored against every reference).
        ``kept`` holds the line numbers of the pairs kept."""
        src_ids = encode_src(src_lines)
        tgt_ids = encode_tgt(tgt_lines)
        if keep_all:
            data = cls(src_ids, tgt_ids)
            data.kept = list(range(len(src_ids)))
            return data
        keep_src, keep_tgt, kept = [], [], []
        long = empty = 0
        for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
            if not s or not t:
                empty += 1
            elif max_len is not None and (len(s) > max_len or len(t) > max_len):
                long += 1
            else:
                keep_src.append(s)
                keep_tgt.append(t)
                kept.append(i)
        if not keep_src:
            raise BadInput(f"no usable sentence pairs: {long} longer than --max-len {max_len}, {empty} with an "
                           "empty side; raise --max-len or check the input files")
        data = cls(keep_src, keep_tgt, dropped_long=long, dropped_empty=empty)
        data.kept = kept
        return data

    def __len__(self) -> int:
        return len(self.src_lens)

    @property
    def src_tokens(self) -> int:
        return int(self.src_lens.sum())

    @property
    def tgt_tokens(self) -> int:
        return int(self.tgt_lens.sum())

    def source(self, i: int) -> np.ndarray:
        return self._src_ids[self._src_off[i]:self._src_off[i + 1]]

    def target(self, i: int) -> np.ndarray:
        return self._tgt_ids[self._tgt_off[i]:self._tgt_off[i + 1]]

    # -- batching --------------------------------------------------------------------------------
    def batches(self, batch_tokens: int, order: np.ndarray | None = None) -> list[np.ndarray]:
        """Cut ``order`` (default: by length) into batches of at most ``batch_tokens`` padded tokens,
        and wherever the source length changes: every source in a batch has the same length, so the
        encoder needs no packing (on CPU, packed input costs up to twice the fused RNN's time).
        A single pair longer than the budget still gets a batch of its own."""
        if batch_tokens < 1:
            raise UsageError(f"--batch-tokens must be positive (got {batch_tokens})")
        if order is None:
            order = np.lexsort((self.tgt_lens, self.src_lens))
        width = np.maximum(self.src_lens, self.tgt_lens)[order].tolist()
        src_lens = self.src_lens[order].tolist()
        out: list[np.ndarray] = []
        start, widest = 0, 0
        for i, w in enumerate(width):
            widest_with = max(widest, w)
            if i > start and (widest_with * (i - start + 1) > batch_tokens or src_lens[i] != src_lens[start]):
                out.append(order[start:i])
                start, widest_with = i, w
            widest = widest_with
        if start < len(order):
            out.append(order[start:])
        return out

    def epoch_batches(self, epoch: int, batch_tokens: int, seed: int) -> list[np.ndarray]:
        """This epoch's batches: length-sorted with random tie-breaks, then in shuffled order."""
        rng = np.random.default_rng([seed, epoch])
        noise = rng.random(len(self))
        order = np.lexsort((noise, self.tgt_lens, self.src_lens))
        batches = self.batches(batch_tokens, order)
        rng.shuffle(batches)
        return batches

    def collate(self, indices: Sequence[int]) -> Batch:
        import torch

        indices = np.asarray(indices)
        src_lens = self.src_lens[indices]
        tgt_lens = self.tgt_lens[indices]
        rows = len(indices)
        src = np.full((rows, int(src_lens.max())), PAD_ID, dtype=np.int64)
        tgt_in = np.full((rows, int(tgt_lens.max())), PAD_ID, dtype=np.int64)
        tgt_out = np.full_like(tgt_in, PAD_ID)
        for row, i in enumerate(indices.tolist()):
            s, t = self.source(i), self.target(i)
            src[row, :len(s)] = s
            src[row, len(s)] = EOS_ID
            tgt_in[row, 0] = BOS_ID
            tgt_in[row, 1:len(t) + 1] = t
            tgt_out[row, :len(t)] = t
            tgt_out[row, len(t)] = EOS_ID
        return Batch(torch.from_numpy(src), torch.from_numpy(src_lens.copy()), torch.from_numpy(tgt_in),
                     torch.from_numpy(tgt_out), int(tgt_lens.sum()), int(src_lens.sum()))


class SampledSegmentations:
    """Subword regularisation (Kudo 2018; BPE-dropout, Provilkov et al. 2020): each epoch sees the training
    pairs in a segmentation drawn at random, both sides, for the pairs ``ParallelData.from_lines`` kept.

    ``for_epoch(e)`` is a pure function of (seed, epoch), so a resumed run and every DDP rank see the same
    pieces. ``sample(lines, seed)`` -> ids: a tokenizer's seeded draw (``Tokenizer.sample_batch``, the same in any
    process).
    """

    def __init__(self, src_lines: Sequence[str], tgt_lines: Sequence[str], kept: Sequence[int],
                 sample_src: Callable[[list[str], int], list[list[int]]],
                 sample_tgt: Callable[[list[str], int], list[list[int]]], seed: int) -> None:
        self.src_lines = [src_lines[i] for i in kept]
        self.tgt_lines = [tgt_lines[i] for i in kept]
        self.sample_src, self.sample_tgt = sample_src, sample_tgt
        self.seed = seed

    def for_epoch(self, epoch: int) -> ParallelData:
        base = np.random.SeedSequence([self.seed, epoch]).generate_state(2)  # one seed per side
        src = self.sample_src(self.src_lines, int(base[0]))
        tgt = self.sample_tgt(self.tgt_lines, int(base[1]))
        return ParallelData(src, tgt)


def _flatten(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((tok for s in seqs for tok in s), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets
