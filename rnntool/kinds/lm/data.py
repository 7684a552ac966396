"""Language-model data: a memory-mapped token cache and two ways to batch it.

The cache (``build_token_cache``) tokenizes the input once, line by line, straight into a binary
file — every line's ids followed by ``<eos>`` — plus a table of where each line ends (in tokens and
in characters). It is keyed by the data's sha256 and the tokenizer's, so a second run with the same
data and tokenizer skips tokenization. Tokens are uint16 when the vocabulary fits, else int32.
Batches are slices of the memory map, and pages already used are released as training moves on,
so the resident set stays flat however large the corpus is.

**stream** mode (``StreamBatches``), as in pytorch/examples' word_language_model: all lines joined
with ``<eos>`` form one long text (read after an initial ``<eos>``), cut into ``batch_size``
parallel streams (one row each); a batch is the next ``bptt`` steps of every stream, and the
trainer carries the hidden state from one segment to the next (detached: truncated BPTT)::

    text  a b c d e f g h i j k l m n o p q r s t u v w x       batch_size 4, bptt 2
    rows  a b c d e f | g h i j k l | m n o p q r | s t u v w x
    batch 0 inputs  [[a b] [g h] [m n] [s t]]   targets  [[b c] [h i] [n o] [t u]]
    batch 1 inputs  [[c d] [i j] [o p] [u v]]   targets  [[d e] [j k] [p q] [v w]]

**sentence** mode (``SentenceBatches``): each line is its own sequence ``<bos> … <eos>``; lines of
similar length are batched together (sorted within pools of ``64 × batch_size`` lines), padded
with ``<pad>`` (id 0), which the loss ignores. The state starts from zeros for every line.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnntool.errors import BadInput, ConfigError
from rnntool.textio import read_lines
from rnntool.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID

MODES = ("stream", "sentence")
CACHE_FORMAT = 1
_FLUSH_TOKENS = 1 << 20  # write the token buffer every ~1M tokens
_ENCODE_LINES = 4096  # lines handed to the tokenizer at once
_RELEASE_BYTES = 64 << 20  # drop mapped pages from the resident set after this much is read


def check_mode(mode: str) -> str:
    """``mode`` if it is one of MODES, else ConfigError naming --mode."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)} (got {mode!r})")
    return mode


class MappedArray:
    """A read-only 1-D array over a file (mmap), whose pages can be given back (``release``)."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...] | None = None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        size = path.stat().st_size
        if size == 0:
            self._mmap = None
            self.array = np.zeros(0 if shape is None else shape, dtype=self.dtype)
            return
        with open(path, "rb") as f:
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        array = np.frombuffer(self._mmap, dtype=self.dtype)
        self.array = array if shape is None else array.reshape(shape)
        self._read = 0

    def note_read(self, nbytes: int) -> None:
        """Count bytes read; past a threshold, release the pages (they stay in the page cache)."""
        if self._mmap is None:
            return
        self._read += nbytes
        if self._read >= _RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        self._read = 0
        if self._mmap is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)


@dataclass
class Corpus:
    """A run of whole lines of a token cache: ids (each line ends with <eos>) and line boundaries.

    ``line_table[i]`` is (the token index one past line i's <eos>, the character count up to and
    including line i's newline), both counted from the start of the *cache*; ``token_base`` and
    ``char_base`` are those counts before this corpus' first line.
    """

    tokens: MappedArray
    line_table: np.ndarray  # (L, 2) int64, a slice of the mapped lines.bin
    token_base: int = 0
    char_base: int = 0

    @property
    def n_lines(self) -> int:
        return len(self.line_table)

    @property
    def n_tokens(self) -> int:
        return int(self.line_table[-1, 0]) - self.token_base if self.n_lines else 0

    @property
    def n_chars(self) -> int:
        return int(self.line_table[-1, 1]) - self.char_base if self.n_lines else 0

    def ids(self, start: int, stop: int) -> np.ndarray:
        """Token ids [start, stop) of this corpus (a copy)."""
        out = np.array(self.tokens.array[self.token_base + start : self.token_base + stop])
        self.tokens.note_read(out.nbytes)
        return out

    def line_bounds(self, first: int, stop: int) -> np.ndarray:
        """Token offsets (stop - first + 1,) of lines [first, stop): start of first … end of last."""
        ends = self.line_table[first:stop, 0] - self.token_base
        start = self.line_table[first - 1, 0] - self.token_base if first > 0 else 0
        return np.concatenate([[start], ends]).astype(np.int64)

    def chars_in(self, first: int, stop: int) -> int:
        """Characters (newlines included) of lines [first, stop)."""
        start = int(self.line_table[first - 1, 1]) if first > 0 else self.char_base
        return int(self.line_table[stop - 1, 1]) - start if stop > first else 0

    def split_last(self, fraction: float) -> tuple["Corpus", "Corpus"]:
        """(first lines, last ``fraction`` of the lines): validation from the end of the data."""
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be between 0 and 1 (exclusive), got {fraction}")
        n_valid = max(1, round(self.n_lines * fraction))
        n_train = self.n_lines - n_valid
        if n_train < 1:
            raise BadInput(
                f"only {self.n_lines} line(s) of text: too few to hold out {fraction:g} for validation; "
                "give more data or a --valid file"
            )
        return self.lines(0, n_train), self.lines(n_train, self.n_lines)

    def lines(self, first: int, stop: int) -> "Corpus":
        token_base = self.token_base if first == 0 else int(self.line_table[first - 1, 0])
        char_base = self.char_base if first == 0 else int(self.line_table[first - 1, 1])
        return Corpus(self.tokens, self.line_table[first:stop], token_base, char_base)


# -- the token cache --------------------------------------------------------------------------------
def cache_key(data_sha256: Sequence[str], tokenizer_sha256: str) -> str:
    h = hashlib.sha256(f"rnntool-lm-tokens/{CACHE_FORMAT}\n{tokenizer_sha256}\n".encode())
    for sha in data_sha256:
        h.update(f"{sha}\n".encode())
    return h.hexdigest()[:32]


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def _chunks(iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_cache(paths: Sequence[str | os.PathLike], tokenizer, dest: Path, on_bad_utf8: str) -> dict:
    dtype = token_dtype(tokenizer.vocab_size)
    n_tokens = n_chars = n_lines = 0
    buffer: list[np.ndarray] = []
    buffered = 0
    with open(dest / "tokens.bin", "wb") as tokens_file, open(dest / "lines.bin", "wb") as lines_file:
        for path in paths:
            for lines in _chunks(read_lines(path, on_bad_utf8=on_bad_utf8, allow_empty=True), _ENCODE_LINES):
                encoded = tokenizer.encode_batch(lines)
                lengths = np.fromiter((len(ids) + 1 for ids in encoded), dtype=np.int64, count=len(encoded))
                chars = np.fromiter((len(line) + 1 for line in lines), dtype=np.int64, count=len(lines))
                flat = np.full(int(lengths.sum()), EOS_ID, dtype=dtype)
                ends = np.cumsum(lengths)
                for ids, end, n in zip(encoded, ends, lengths):
                    flat[end - n : end - 1] = ids
                table = np.stack([n_tokens + ends, n_chars + np.cumsum(chars)], axis=1)
                lines_file.write(table.astype(np.int64).tobytes())
                n_tokens += int(ends[-1])
                n_chars += int(chars.sum())
                n_lines += len(lines)
                buffer.append(flat)
                buffered += len(flat)
                if buffered >= _FLUSH_TOKENS:
                    tokens_file.write(np.concatenate(buffer).tobytes())
                    buffer, buffered = [], 0
        if buffer:
            tokens_file.write(np.concatenate(buffer).tobytes())
    return {"format": CACHE_FORMAT, "dtype": dtype.name, "tokens": n_tokens, "lines": n_lines, "chars": n_chars}


def build_token_cache(
    paths: Sequence[str | os.PathLike],
    data_sha256: Sequence[str],
    tokenizer,
    cache_dir: str | os.PathLike,
    *,
    on_bad_utf8: str = "strict",
) -> tuple[Corpus, bool]:
    """Tokenize ``paths`` into ``cache_dir/lm-tokens/<key>/`` unless already there.

    Returns the whole data as one ``Corpus`` and whether the cache was hit. ``data_sha256`` are the
    files' sha256 (from ``textio.fingerprint_file``, computed once by the caller); the tokenizer is
    known by its ``sha256`` and encodes with ``encode_batch``.
    """
    root = Path(cache_dir) / "lm-tokens"
    final = root / cache_key(data_sha256, tokenizer.sha256)
    hit = (final / "meta.json").exists()  # the directory appears whole (renamed into place)
    if not hit:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            meta = _write_cache(paths, tokenizer, staging, on_bad_utf8)
            (staging / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a shared cache needs more
            try:
                os.rename(staging, final)
            except OSError:  # another process (e.g. another DDP rank) built the same cache first
                if not (final / "meta.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return open_token_cache(final), hit


def open_token_cache(path: Path) -> Corpus:
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    tokens = MappedArray(path / "tokens.bin", np.dtype(meta["dtype"]))
    if len(tokens.array) != meta["tokens"]:
        raise BadInput(f"{path}: token cache is damaged; delete that directory and run again")
    table = MappedArray(path / "lines.bin", np.int64, shape=(meta["lines"], 2)).array
    return Corpus(tokens, table)


# -- batches --------------------------------------------------------------------------------------
@dataclass
class Batch:
    inputs: np.ndarray  # (B, T) int64
    targets: np.ndarray  # (B, T) int64, PAD where there is nothing to predict

    @property
    def n_targets(self) -> int:
        return int(np.count_nonzero(self.targets != PAD_ID))


class StreamBatches:
    """``batch_size`` contiguous streams per rank; batch ``i`` is segment ``i`` of every stream.

    The text is read as ``<eos>`` followed by the corpus (every line ends with <eos>): the first
    token is predicted after an <eos>, as scoring does (rnntool.kinds.lm.scoring, stream mode).
    """

    def __init__(self, corpus: Corpus, batch_size: int, bptt: int, *, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1 or bptt < 1:
            raise ConfigError("--batch-size and --bptt must be positive")
        self.corpus = corpus
        self.bptt = bptt
        n_streams = batch_size * world_size
        self.stream_len = (corpus.n_tokens + 1) // n_streams
        if self.stream_len < 2:
            raise BadInput(
                f"{corpus.n_tokens} tokens are too few for {n_streams} streams of at least 2 tokens; "
                "lower --batch-size or give more data"
            )
        self.starts = (np.arange(batch_size, dtype=np.int64) + rank * batch_size) * self.stream_len
        self.n_batches = math.ceil((self.stream_len - 1) / bptt)

    def __len__(self) -> int:
        return self.n_batches

    def _ids(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of <eos> + corpus."""
        if start > 0:
            return self.corpus.ids(start - 1, stop - 1)
        return np.concatenate([np.array([EOS_ID], dtype=self.corpus.tokens.dtype), self.corpus.ids(0, stop - 1)])

    def batch(self, index: int) -> Batch:
        offset = index * self.bptt
        steps = min(self.bptt, self.stream_len - 1 - offset)
        rows = [self._ids(s + offset, s + offset + steps + 1) for s in self.starts]
        block = np.stack(rows).astype(np.int64)  # (B, T + 1)
        return Batch(block[:, :-1], block[:, 1:])

    def __iter__(self) -> Iterator[Batch]:
        for i in range(self.n_batches):
            yield self.batch(i)


class SentenceBatches:
    """Lines as ``<bos> … <eos>`` sequences, batched by length; order reshuffled every epoch.

    Lines are cut into pools of ``64 × batch_size`` consecutive lines; each epoch visits the pools
    in a random order, sorts each pool by length (random tie-break) and shuffles its batches. With
    several ranks, batch ``k`` goes to rank ``k % world_size`` (all ranks get the same count).
    """

    POOL_BATCHES = 64

    def __init__(
        self,
        corpus: Corpus,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError("--batch-size must be positive")
        if corpus.n_lines < world_size:
            raise BadInput(f"{corpus.n_lines} line(s) are too few for {world_size} processes; give more data")
        self.corpus = corpus
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.pool_lines = batch_size * self.POOL_BATCHES
        n_pools = math.ceil(corpus.n_lines / self.pool_lines)
        sizes = [min(self.pool_lines, corpus.n_lines - p * self.pool_lines) for p in range(n_pools)]
        total = sum(math.ceil(s / batch_size) for s in sizes)
        self.n_batches = total // world_size

    def __len__(self) -> int:
        return self.n_batches

    def line_groups(self, epoch: int) -> Iterator[np.ndarray]:
        """This rank's batches of line indices for ``epoch`` (deterministic given seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        n_pools = math.ceil(self.corpus.n_lines / self.pool_lines)
        pools = rng.permutation(n_pools) if self.shuffle else np.arange(n_pools)
        k = 0
        for pool in pools:
            first = int(pool) * self.pool_lines
            stop = min(first + self.pool_lines, self.corpus.n_lines)
            lengths = np.diff(self.corpus.line_bounds(first, stop))
            tie_break = rng.random(len(lengths)) if self.shuffle else np.arange(len(lengths))
            order = first + np.lexsort((tie_break, lengths))
            groups = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            for j in rng.permutation(len(groups)) if self.shuffle else range(len(groups)):
                if k // self.world_size >= self.n_batches:
                    return
                if k % self.world_size == self.rank:
                    yield groups[j]
                k += 1

    def batch(self, line_indices: np.ndarray) -> Batch:
        return sentence_batch([self.line_ids(int(i)) for i in line_indices])

    def line_ids(self, i: int) -> np.ndarray:
        """Line ``i``'s token ids, ending with <eos>."""
        start, end = self.corpus.line_bounds(i, i + 1)
        return self.corpus.ids(int(start), int(end))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        for k, group in enumerate(self.line_groups(epoch)):
            if k >= start:
                yield self.batch(group)


def sentence_batch(sequences: Sequence[Sequence[int]]) -> Batch:
    """Padded inputs ``<bos> w1 … wn`` and targets ``w1 … wn <eos>`` from ids that end with <eos>."""
    width = max(len(s) for s in sequences)
    inputs = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    targets = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(sequences):
        n = len(ids)
        inputs[row, 0] = BOS_ID
        inputs[row, 1:n] = ids[:-1]
        targets[row, :n] = ids
    return Batch(inputs, targets)
