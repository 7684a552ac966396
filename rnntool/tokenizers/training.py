"""Training SentencePiece tokenizers with rnntool's fixed special ids (see :mod:`rnntool.tokenizers.sentencepiece`).

Training reads its input through :mod:`rnntool.textio` (``file:line`` errors for invalid UTF-8, BOM
and CRLF handled) and is deterministic: the same input and settings give the same model file,
byte for byte, in any process (the line sample is drawn from ``seed``; unigram results also depend
on ``threads``). Errors from sentencepiece are turned into messages that say what to change.

    tok = train_tokenizer([Path("corpus.txt")], Path("tokenizer.model"), vocab_size=8000)

This module does not import torch.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rnntool.errors import BadInput, ConfigError, DiskFull, UsageError
from rnntool.textio import atomic_write_bytes, display_name, is_stdin, read_lines, spool_stdin
from rnntool.tokenizers.sentencepiece import (
    BOS_ID,
    BYTE_PIECES,
    EOS_ID,
    MODEL_TYPES,
    NORMALIZATIONS,
    PAD_ID,
    SPECIAL_PIECES,
    UNK_ID,
    Tokenizer,
    _sentencepiece,
)

DEFAULT_MAX_LINE_BYTES = 65536  # longer lines are left out of training (sentencepiece's default: 4192)
DEFAULT_SAMPLE_LINES = 5_000_000  # train on a random sample of this many lines from larger inputs

# sentencepiece's own limits: its settings are 32-bit integers, the seed an unsigned one
MAX_VOCAB_SIZE = 2**31 - 1
MAX_LINE_BYTES = 2**30  # its max_sentence_length: 10 ... 2^30
_SPM_MIN_SENTENCE_LENGTH = 10
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\).*?<=\s*(\d+)")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\.\s*(\d+)\s*vs\s*(\d+)")


def check_vocab_size(vocab_size: int) -> None:
    """Reject a vocabulary size no tokenizer can have, before any work (callers may check early)."""
    if vocab_size < 1:
        raise ConfigError(f"vocabulary size must be positive, not {vocab_size}")
    if vocab_size > MAX_VOCAB_SIZE:
        raise ConfigError(
            f"--vocab-size {vocab_size} is too large: sentencepiece takes at most {MAX_VOCAB_SIZE} (a 32-bit "
            "integer), and an input gives far fewer pieces than that; use a vocabulary size such as 8000 "
            "(typical: 1000 to 64000)"
        )


def _check_settings(
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    byte_fallback: bool,
    user_symbols: Sequence[str],
    normalization: str,
    max_line_bytes: int,
    sample_lines: int,
    threads: int,
    seed: int,
) -> None:
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"model type {model_type!r} is not one of: {', '.join(MODEL_TYPES)}")
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"normalization {normalization!r} is not one of: {', '.join(NORMALIZATIONS)}")
    if not 0.0 < character_coverage <= 1.0:
        raise ConfigError(f"character coverage must be in (0, 1], not {character_coverage}")
    if byte_fallback and model_type == "word":
        raise ConfigError("byte fallback does not work with word models; turn it off or use bpe/unigram/char")
    if max_line_bytes < 1:
        raise ConfigError(f"max line bytes must be positive, not {max_line_bytes}")
    if max_line_bytes > MAX_LINE_BYTES:
        raise ConfigError(f"--max-line-bytes {max_line_bytes} is too large: sentencepiece takes lines of at most "
                          f"{MAX_LINE_BYTES} bytes (1 GiB); use at most that")
    if sample_lines < 0 or 0 < sample_lines <= 100:  # the limit sentencepiece sets on its own sampling
        raise ConfigError(f"sample lines must be 0 (use all) or more than 100, not {sample_lines}")
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, not {threads}")
    if threads > MAX_THREADS:
        raise ConfigError(f"--threads {threads} is too many: sentencepiece uses at most {MAX_THREADS}; "
                          "use at most the number of cores")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed {seed} is out of range: sentencepiece's seed is from 0 to {MAX_SEED}")
    seen: set[str] = set()
    for s in user_symbols:
        if not s or any(c.isspace() for c in s):
            raise ConfigError(f"user symbol {s!r} must be non-empty and contain no whitespace")
        if s in SPECIAL_PIECES or s in seen:
            raise ConfigError(f"user symbol {s!r} is a duplicate or a reserved piece ({', '.join(SPECIAL_PIECES)})")
        seen.add(s)
    check_vocab_size(vocab_size)


def check_settings(*, vocab_size: int, model_type: str = "bpe", character_coverage: float = 1.0,
                   byte_fallback: bool | None = None, user_symbols: Sequence[str] = (),
                   normalization: str = "identity", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                   sample_lines: int = DEFAULT_SAMPLE_LINES, threads: int = 1, seed: int = 0, **_other) -> None:
    """Raise ConfigError for any setting :func:`train_tokenizer` would refuse, before an input is read or
    spooled: ``check_settings(**train_kw)`` takes train_tokenizer's keywords (the others are ignored)."""
    if byte_fallback is None:
        byte_fallback = model_type != "word"
    _check_settings(vocab_size, model_type, character_coverage, byte_fallback, tuple(user_symbols),
                    normalization, max_line_bytes, sample_lines, threads, seed)


def _meta_pieces(byte_fallback: bool, user_symbols: Sequence[str]) -> tuple[int, str]:
    """How many pieces are fixed before any learned one, and what they are, in words."""
    n_meta = len(SPECIAL_PIECES) + len(user_symbols) + (BYTE_PIECES if byte_fallback else 0)
    parts = f"{len(SPECIAL_PIECES)} special pieces"
    if user_symbols:
        parts += f" + {len(user_symbols)} user symbols"
    if byte_fallback:
        parts += f" + {BYTE_PIECES} byte pieces (byte fallback)"
    return n_meta, parts


class _LineFeed:
    """The training input as a sentence iterator, with counts and the first error kept aside.

    sentencepiece's own sampling (``input_sentence_size``) ignores its seed when fed an iterator, so
    the sample is drawn here: a first pass counts the text lines, a second keeps a uniform random
    sample of ``sample_lines`` of them (selection sampling, Knuth's Algorithm S) in input order,
    from ``random.Random(seed)``. Nothing but the counts is held in memory.
    """

    def __init__(self, inputs: Sequence, on_bad_utf8: str, max_line_bytes: int,
                 sample_lines: int = 0, seed: int = 0) -> None:
        self.inputs = list(inputs)
        self.on_bad_utf8 = on_bad_utf8
        self.max_line_bytes = max_line_bytes
        self.sample_lines = sample_lines
        self.seed = seed
        self.lines = 0
        self.text_lines = 0
        self.too_long = 0
        self.error: BaseException | None = None
        for _ in self._text(count=True):  # the first pass: counts (and any input error, raised here)
            self.text_lines += 1

    @property
    def sampled(self) -> bool:
        return 0 < self.sample_lines < self.text_lines

    def _text(self, count: bool = False) -> Iterator[str]:
        for path in self.inputs:
            for line in read_lines(path, on_bad_utf8=self.on_bad_utf8):
                self.lines += count
                if not line.strip():  # blank: nothing to learn pieces from
                    continue
                if len(line) * 4 > self.max_line_bytes and len(line.encode("utf-8")) > self.max_line_bytes:
                    self.too_long += count
                    continue
                yield line

    def __iter__(self) -> Iterator[str]:
        import random

        rng = random.Random(self.seed)
        wanted = self.sample_lines if self.sampled else self.text_lines
        left = self.text_lines
        try:
            for line in self._text():
                if wanted == 0:
                    break
                if wanted == left or rng.random() * left < wanted:
                    wanted -= 1
                    yield line
                left -= 1
        except GeneratorExit:  # the reader stopped early: nothing went wrong here
            raise
        except BaseException as e:  # sentencepiece turns it into RuntimeError: keep the real one
            self.error = e
            raise


def _explain_failure(message: str, *, vocab_size: int, byte_fallback: bool, character_coverage: float,
                     user_symbols: Sequence[str]) -> BadInput:
    m = _TOO_HIGH.search(message)
    if m:
        asked, largest = m.groups()
        return BadInput(
            f"vocabulary size {asked} is too large for this input: the largest that works is {largest}; "
            "use a smaller vocabulary size or train on more text"
        )
    m = _TOO_SMALL.search(message)
    if m:
        asked, smallest = m.groups()
        hint = " (or lower the character coverage)" if character_coverage > 0.99 else ""
        if byte_fallback:
            hint += f"; {BYTE_PIECES} pieces go to byte fallback"
        return BadInput(
            f"vocabulary size {asked} is too small for this input: the smallest that works is {smallest}; "
            f"use a vocabulary size of at least {smallest}{hint}"
        )
    n_meta, parts = _meta_pieces(byte_fallback, user_symbols)
    if vocab_size <= n_meta:
        return BadInput(
            f"vocabulary size {vocab_size} is too small: {parts} alone take {n_meta}; "
            f"use a vocabulary size above {n_meta}" + (" or turn byte fallback off" if byte_fallback else "")
        )
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    first = re.sub(r"^INTERNAL:\s*\S+\(\d+\)\s*", "", first)
    return BadInput(f"sentencepiece could not train a tokenizer: {first}")


def train_tokenizer(
    inputs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    vocab_size: int,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
    byte_fallback: bool | None = None,
    user_symbols: Sequence[str] = (),
    normalization: str = "identity",
    split_digits: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    sample_lines: int = DEFAULT_SAMPLE_LINES,
    threads: int = 1,
    seed: int = 0,
    on_bad_utf8: str = "strict",
    on_log: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    display_names: Sequence[str] | None = None,
) -> Tokenizer:
    """Train a SentencePiece model on text files and write it to ``out_path`` (atomically).

    ``byte_fallback=None`` means on, except for word models (which cannot use it). Lines longer than
    ``max_line_bytes`` are skipped (with a warning); inputs with more than ``sample_lines`` lines are
    sampled (0 = use all). ``inputs`` may include ``"-"`` (stdin, read once into a temporary file:
    sampling reads the input twice). ``display_names``
    replaces the input paths in messages (e.g. ``<stdin>`` for a spooled copy of stdin).
    """
    if byte_fallback is None:
        byte_fallback = model_type != "word"
    user_symbols = tuple(user_symbols)
    _check_settings(vocab_size, model_type, character_coverage, byte_fallback, user_symbols,
                    normalization, max_line_bytes, sample_lines, threads, seed)
    if not inputs:
        raise UsageError("no input files to train the tokenizer on")
    log = on_log or (lambda msg: None)
    warn = on_warning or log

    spm = _sentencepiece()
    names = ", ".join(display_names or [display_name(p) for p in inputs])
    with tempfile.TemporaryDirectory(prefix="rnntool-tokenizer-") as spool_dir:
        inputs = [spool_stdin(Path(spool_dir), on_bad_utf8) if is_stdin(p) else p for p in inputs]
        feed = _LineFeed(inputs, on_bad_utf8, max_line_bytes, sample_lines, seed)
        if feed.text_lines == 0:
            raise _no_text(feed, names)
        identity = normalization == "identity"
        options = dict(
            model_type=model_type,
            vocab_size=vocab_size,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            normalization_rule_name=normalization,
            remove_extra_whitespaces=not identity,  # identity: text round-trips exactly
            split_digits=split_digits,
            # _LineFeed leaves longer lines out; sentencepiece wants at least 10
            max_sentence_length=max(max_line_bytes, _SPM_MIN_SENTENCE_LENGTH),
            input_sentence_size=0,  # _LineFeed samples: sentencepiece's sampling ignores the seed
            shuffle_input_sentence=False,
            num_threads=threads,
            minloglevel=2,  # sentencepiece's own INFO/WARNING lines would flood stderr
        )
        if user_symbols:
            options["user_defined_symbols"] = list(user_symbols)
        log(f"training a {model_type} tokenizer (vocabulary {vocab_size}) on {names}")
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(sentence_iterator=iter(feed), model_writer=model, **options)
        except RuntimeError as e:
            if feed.error is not None:
                raise feed.error from None
            raise _explain_failure(str(e), vocab_size=vocab_size, byte_fallback=byte_fallback,
                                   character_coverage=character_coverage, user_symbols=user_symbols) from None
    if feed.error is not None:  # pragma: no cover - sentencepiece always re-raises
        raise feed.error
    if feed.too_long:
        warn(f"left {feed.too_long} lines longer than {max_line_bytes} bytes out of training "
             "(raise the maximum line length to use them)")
    data = model.getvalue()
    with DiskFull.translating(out_path):
        atomic_write_bytes(out_path, data)
    tok = Tokenizer(data, Path(out_path))
    tok.train_stats = {"lines": feed.lines, "text_lines": feed.text_lines, "skipped_long_lines": feed.too_long}
    tok.train_config = {
        "vocab_size": vocab_size, "model_type": model_type, "character_coverage": character_coverage,
        "byte_fallback": byte_fallback, "user_symbols": list(user_symbols), "normalization": normalization,
        "split_digits": split_digits, "max_line_bytes": max_line_bytes, "sample_lines": sample_lines,
        "threads": threads, "seed": seed,
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
    }
    if tok.vocab_size != vocab_size:
        log(f"the vocabulary has {tok.vocab_size} pieces (the input has no more distinct characters)")
    if feed.sampled:
        log(f"trained on a random sample of {sample_lines} of {feed.text_lines} lines: {tok.vocab_size} pieces")
    else:
        log(f"trained on {feed.text_lines} lines: {tok.vocab_size} pieces")
    return tok


def _no_text(feed: _LineFeed, names: str) -> BadInput:
    if feed.too_long:
        return BadInput(f"{names}: every line is longer than the maximum line length; raise it to train on them")
    return BadInput(f"{names}: no text to train on ({feed.lines} blank lines); give a file with some text")


__all__ = ["DEFAULT_MAX_LINE_BYTES", "DEFAULT_SAMPLE_LINES", "MAX_VOCAB_SIZE", "check_settings", "check_vocab_size",
           "train_tokenizer"]
