"""Word vectors in and out: word2vec's text format (GloVe's too, when reading), gzip, stdin and stdout.

    vectors = read_vectors("glove.6B.100d.txt.gz")   # no header: GloVe, detected; gzip by its magic bytes
    vectors.words[:3], vectors.matrix.shape          # ['the', ',', '.'], (400000, 100): float32
    vectors.matrix[vectors.index["cat"]]             # (100,) the row of "cat"
    write_vectors(vectors, "words.vec")              # "400000 100", then "word v1 ... v100" per line
    write_vectors(vectors, "words.vec.gz")           # gzip when the name ends in .gz; "-" or None: stdout
    load_vectors("news@prod", registry)              # a model's input embedding table (`rnntool models vectors`)
    load_vectors("words.vec", registry)              # ... or a vectors file, the same way

The format: an optional first line ``count dim`` (word2vec and fastText write it, GloVe does not), then
one line per word: the word, a space, its ``dim`` numbers separated by spaces (trailing spaces are
fine). A reader never trusts the header: the count must be the number of rows that follow, every row
must hold ``dim`` finite numbers and every word must appear once; anything else is a ``BadInput``
naming the file and the line. Numbers are written with 9 significant digits (``%.9g``), which gives
every float32 back exactly.

A word may hold any character but those that separate fields or lines in the readers of this format
(word2vec's, fastText's, gensim's): ASCII whitespace, NUL and the Unicode line breaks. SentencePiece's
word-start mark ``▁`` (U+2581) is an ordinary character.

numpy only: this module does not import torch (safetensors is read with its numpy binding).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import os
import re
import sys
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from rnntool.errors import BadInput, CorruptBundle, DiskFull, InvalidName, ModelNotFound, UsageError, WrongKind
from rnntool.textio import atomic_path, display_name, is_stdin

if TYPE_CHECKING:  # pragma: no cover
    from rnntool.registry.bundle import Bundle
    from rnntool.registry.store import Registry

GZIP_MAGIC = b"\x1f\x8b"
FORMAT_HINT = "word2vec text: an optional 'count dim' header, then 'word v1 ... vD' per line"
VECTOR_FILE_SUFFIXES = (".vec", ".txt", ".gz", ".w2v", ".glove")  # how a missing vectors file is recognised
# What may not be part of a word: what word2vec, fastText and gensim split fields or lines at.
_NOT_IN_WORDS = re.compile("[ \t\n\r\x0b\x0c\x00\x1c\x1d\x1e\x85\u2028\u2029]")
_ROWS_PER_BLOCK = 4096  # rows parsed at once (and written at once)
_HEADER = re.compile(r"[0-9]+[ \t]+[0-9]+")


@dataclass(eq=False)
class WordVectors:
    """Words and their vectors: row ``i`` of ``matrix`` is the vector of ``words[i]``."""

    words: list[str]
    matrix: np.ndarray  # (V, D) float32

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words):
            raise ValueError(f"WordVectors needs a (V, D) matrix for {len(self.words)} words, "
                             f"not shape {self.matrix.shape}")

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """word -> its row (the first, should a word appear twice)."""
        index: dict[str, int] = {}
        for row, word in enumerate(self.words):
            index.setdefault(word, row)
        return index

    def normalized(self) -> "WordVectors":
        """The same words with each row scaled to unit L2 norm (a zero row stays zero)."""
        norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)  # (V, 1)
        return WordVectors(list(self.words), self.matrix / np.where(norms > 0, norms, 1).astype(np.float32))


# -- reading --------------------------------------------------------------------------------------
class _Prefixed(io.RawIOBase):
    """The bytes ``head`` already read from ``stream``, then the rest of ``stream`` (stdin cannot seek)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream
        self._read = getattr(stream, "read1", stream.read)  # what has arrived: pipes stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            data, self._head = self._head[:len(buffer)], self._head[len(buffer):]
        else:
            data = self._read(len(buffer)) or b""
        buffer[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def _open_input(path: str | os.PathLike | None, name: str) -> Iterator[BinaryIO]:
    """The bytes of a vectors file or of stdin, gunzipped when they start with gzip's magic bytes."""
    if is_stdin(path):
        raw, owned = sys.stdin.buffer, False
    else:
        try:
            raw, owned = open(path, "rb"), True
        except FileNotFoundError:
            raise BadInput(f"{name}: no such file; give a word-vectors file ({FORMAT_HINT})") from None
        except IsADirectoryError:
            raise BadInput(f"{name}: is a directory; give a word-vectors file ({FORMAT_HINT})") from None
        except PermissionError:
            raise BadInput(f"{name}: permission denied") from None
    try:
        head = raw.read(2)
        stream: BinaryIO = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 20)
        if head == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        yield stream
    finally:
        if owned:
            raw.close()


def _lines(stream: BinaryIO, name: str, gzipped: bool) -> Iterator[bytes]:
    """The raw lines of ``stream``; a corrupt or cut gzip stream is a BadInput."""
    try:
        yield from stream
    except (EOFError, OSError, zlib.error) as e:
        if not gzipped:
            raise
        raise BadInput(f"{name}: the gzip data is corrupt or cut short ({e}); get the file again") from None


def _decode(raw: bytes, name: str, lineno: int, after_header: bool) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if after_header and lineno == 2:
            raise BadInput(f"{name}:2: not UTF-8 text after the 'count dim' header: this looks like word2vec's "
                           "binary format; convert it to text first (gensim: KeyedVectors.load_word2vec_format("
                           "path, binary=True).save_word2vec_format(out))") from None
        raise BadInput(f"{name}:{lineno}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                       "vectors files are UTF-8 text: convert the file (e.g. iconv -t utf-8) or fix the line") from None
    if lineno == 1 and text.startswith("\ufeff"):
        text = text[1:]
    return text.rstrip()  # the newline, a CR, trailing spaces


def _parse_numbers(text: str) -> np.ndarray | None:
    """``text``'s space-separated numbers as float32 (n,), or None when one is not a finite number."""
    try:
        values = np.fromstring(text, dtype=np.float32, sep=" ")  # text mode: not the deprecated binary one
    except (ValueError, DeprecationWarning):  # a token that is not a number (numpy < 2.3 warns)
        return None
    return values if np.isfinite(values).all() else None


def _bad_row(name: str, lineno: int, word: str, rest: str, dim: int, dim_from: str) -> BadInput:
    """Why the numbers after ``word`` on line ``lineno`` are not ``dim`` finite numbers."""
    tokens = rest.split()
    for number, token in enumerate(tokens, start=1):
        values = _parse_numbers(token)
        if values is None or values.size != 1:
            return BadInput(f"{name}:{lineno}: value {number} of {word!r} is {token!r}, not a finite number; "
                            "fix or remove the line")
    tab = " (a tab follows the word: fields are separated by spaces)" if "\t" in word else ""
    return BadInput(f"{name}:{lineno}: {word!r} has {len(tokens)} values but {dim_from} {dim}{tab}; every line "
                    "holds a word and the same number of values: fix or remove the line")


def read_vectors(path: str | os.PathLike | None) -> WordVectors:
    """A word2vec text file (``count dim`` header) or a GloVe one (no header: the first line is a word
    and its numbers), plain or gzipped; ``-`` or None reads stdin. BadInput naming ``file:line`` for
    anything that does not add up (see the module's docstring)."""
    name = display_name(path)
    with _open_input(path, name) as stream, warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy < 2.3: unparsed text is a warning, not an error
        return _parse(_lines(stream, name, isinstance(stream, gzip.GzipFile)), name)


def vectors_dim(path: str | os.PathLike) -> int:
    """The dimension of a vectors file from its first line alone (the ``count dim`` header, or a GloVe
    row's numbers), read as ``read_vectors`` reads it: BOM, gzip and errors alike."""
    name = display_name(path)
    if is_stdin(path):
        raise BadInput("--init-embeddings needs a file (its dimension is read before training starts)")
    with _open_input(path, name) as stream:
        first = next(_lines(stream, name, isinstance(stream, gzip.GzipFile)), b"")
    text = _decode(first, name, 1, after_header=False)
    if _HEADER.fullmatch(text):
        return int(text.split()[1])
    word, _, rest = text.partition(" ")
    if not rest.split():
        raise BadInput(f"{name}:1: neither a 'count dim' header nor 'word v1 v2 ...'; give {FORMAT_HINT}")
    return len(rest.split())


def _parse_block(rows: list[tuple[int, str, str]], dim: int, name: str, dim_from: str) -> np.ndarray:
    """The numbers of ``rows`` (line, word, numbers' text) as (n, D) float32: all at once, and line by
    line only when something is wrong, to say which line."""
    try:
        block = np.loadtxt([rest for _, _, rest in rows], dtype=np.float32, comments=None, ndmin=2)  # (n, D)
        if block.shape == (len(rows), dim) and np.isfinite(block).all():
            return block
    except ValueError:  # a token that is not a number, a row of another length
        pass
    block = np.empty((len(rows), dim), dtype=np.float32)  # (n, D)
    for i, (lineno, word, rest) in enumerate(rows):
        values = _parse_numbers(rest)
        if values is None or values.size != dim:
            raise _bad_row(name, lineno, word, rest, dim, dim_from)
        block[i] = values
    return block


def _parse(lines: Iterator[bytes], name: str) -> WordVectors:
    count: int | None = None  # the header's (None: GloVe)
    dim: int | None = None
    dim_from = ""  # what set the dimension, for messages
    words: list[str] = []
    first_line: dict[str, int] = {}  # word -> the line it is on
    blocks: list[np.ndarray] = []  # (n, D) each, in file order
    pending: list[tuple[int, str, str]] = []  # (line, word, numbers' text) of rows not parsed yet
    blank_line: int | None = None  # an empty line is only fine at the end

    def parse_pending() -> None:
        if pending:
            blocks.append(_parse_block(pending, dim, name, dim_from))
            pending.clear()

    def bad(message: str) -> BadInput:
        parse_pending()  # a line before this one that is wrong is the one to report
        return BadInput(message)

    lineno = 0
    for lineno, raw in enumerate(lines, start=1):
        text = _decode(raw, name, lineno, after_header=count is not None)
        if lineno == 1 and _HEADER.fullmatch(text):
            count, dim = (int(f) for f in text.split())
            dim_from = "the header (line 1) says"
            if dim < 1:
                raise BadInput(f"{name}:1: the header says dimension {dim}; fix the header ('count dim')")
            continue
        if not text:
            blank_line = blank_line or lineno
            continue
        if blank_line is not None:
            raise bad(f"{name}:{blank_line}: empty line among the vectors; remove it")
        word, _, rest = text.partition(" ")
        if not word:
            raise bad(f"{name}:{lineno}: the line starts with a space, so it has no word; fix or remove the line")
        if dim is None:  # GloVe: the first row sets the dimension
            dim, dim_from = len(rest.split()), f"line {lineno} has"
            if dim == 0:
                raise BadInput(f"{name}:{lineno}: {word!r} has no values; each line holds a word and its numbers "
                               f"({FORMAT_HINT})")
        if count is not None and len(words) == count:
            raise bad(f"{name}:{lineno}: more vectors than the header's count of {count} (line 1); fix the "
                      "count in the header")
        seen = first_line.setdefault(word, lineno)
        if seen != lineno:
            raise bad(f"{name}:{lineno}: {word!r} appears again (first on line {seen}); each word needs one "
                      "vector: remove one of the lines")
        words.append(word)
        pending.append((lineno, word, rest))
        if len(pending) == _ROWS_PER_BLOCK:
            parse_pending()
    if lineno == 0:
        raise BadInput(f"{name}: empty file; give word vectors ({FORMAT_HINT})")
    parse_pending()
    if count is not None and len(words) != count:
        raise BadInput(f"{name}:1: the header says {count} vectors but the file holds {len(words)}; it may be cut "
                       "short: get the whole file, or fix the count in the header")
    if not words:
        raise BadInput(f"{name}: no vectors in the file; give word vectors ({FORMAT_HINT})")
    return WordVectors(words, np.concatenate(blocks))  # (V, D)


# -- writing --------------------------------------------------------------------------------------
def writable_rows(vectors: "WordVectors") -> tuple["WordVectors", list[str]]:
    """The rows word2vec's text format can hold, and the words left out: a SentencePiece model trained
    on text with tabs has a tab piece, which no word2vec reader could read back."""
    keep = [i for i, w in enumerate(vectors.words) if w and not _NOT_IN_WORDS.search(w)]
    if len(keep) == len(vectors.words):
        return vectors, []
    kept = set(keep)
    dropped = [w for i, w in enumerate(vectors.words) if i not in kept]
    return WordVectors([vectors.words[i] for i in keep], vectors.matrix[keep]), dropped


def check_words(words: list[str], what: str = "word") -> None:
    """BadInput unless every word can be a field of word2vec's text format, once."""
    seen: dict[str, int] = {}
    for row, word in enumerate(words):
        bad = _NOT_IN_WORDS.search(word)
        if not word or bad:
            why = "is empty" if not word else f"holds {bad.group()!r}, which separates fields in word2vec's text format"
            raise BadInput(f"{what} {row} ({word!r}) {why}; such words cannot be written as word vectors")
        first = seen.setdefault(word, row)
        if first != row:
            raise BadInput(f"{what} {row} ({word!r}) is also {what} {first}; each word needs one vector")


def _vector_lines(vectors: WordVectors) -> Iterator[str]:
    """The header and one line per row, in blocks of lines (as one string each)."""
    yield f"{len(vectors)} {vectors.dim}\n"
    row_format = " ".join(["%.9g"] * vectors.dim)  # 9 significant digits: every float32 comes back exactly
    for start in range(0, len(vectors), _ROWS_PER_BLOCK):
        block = vectors.matrix[start:start + _ROWS_PER_BLOCK].tolist()  # python floats: exact float32 values
        words = vectors.words[start:start + _ROWS_PER_BLOCK]
        yield "".join(f"{word} {row_format % tuple(row)}\n" for word, row in zip(words, block))


def write_vectors(vectors: WordVectors, path: str | os.PathLike | None = None) -> None:
    """``vectors`` as word2vec text (header ``count dim``) to ``path``: written atomically (a temp file
    beside it, renamed), gzipped when the name ends in ``.gz``; ``-`` or None writes stdout."""
    check_words(vectors.words)
    if not np.isfinite(vectors.matrix).all():
        row = int(np.flatnonzero(~np.isfinite(vectors.matrix).all(axis=1))[0])
        raise BadInput(f"the vector of {vectors.words[row]!r} (row {row}) holds a value that is not finite; "
                       "nothing was written")
    if is_stdin(path):
        for text in _vector_lines(vectors):
            sys.stdout.write(text)
        sys.stdout.flush()
        return
    dest = Path(path)
    if dest.is_dir():
        raise UsageError(f"{dest}: is a directory; give a file name, e.g. {dest / 'words.vec'}")
    with DiskFull.translating(dest), atomic_path(dest) as tmp, open(tmp, "wb") as raw:
        if dest.name.endswith(".gz"):  # the name inside is the file's own, the time 0: the same bytes each time
            with gzip.GzipFile(filename=dest.name[:-3], mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
                for text in _vector_lines(vectors):
                    gz.write(text.encode("utf-8"))
        else:
            for text in _vector_lines(vectors):
                raw.write(text.encode("utf-8"))


# -- a model's input embedding table --------------------------------------------------------------
def one_table(bundle: "Bundle", side: str | None) -> None:
    """UsageError for ``side`` given to a kind with one input embedding table."""
    if side is not None:
        from rnntool.kinds.catalog import entry

        raise UsageError(f"--side {side}: {bundle.ref} is {entry(bundle.kind).label}, with one input embedding "
                         "table; --side (src, tgt) chooses a translation model's")


def embedding_table(bundle: "Bundle", weights_file: str, tensor: str, words: list[str]) -> WordVectors:
    """The 2-D tensor ``tensor`` of the bundle's safetensors file ``weights_file`` (one stored under
    another name, as tied weights are, too), as the vectors of ``words`` (its rows, in order)."""
    from safetensors import SafetensorError, safe_open

    path = bundle.file(weights_file)
    try:
        with safe_open(str(path), framework="numpy") as f:
            stored = tensor if tensor in f.keys() else (f.metadata() or {}).get(tensor)  # tied: under another name
            if stored not in f.keys():
                raise CorruptBundle(f"{bundle.ref}: {weights_file} has no tensor {tensor!r}; re-publish the model")
            matrix = f.get_tensor(stored)  # (V, D)
    except (SafetensorError, OSError, TypeError, ValueError) as e:
        raise CorruptBundle(f"{bundle.ref}: cannot read {tensor!r} from {weights_file} ({e}); "
                            "re-publish the model") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(words) or matrix.dtype.kind != "f":
        raise CorruptBundle(f"{bundle.ref}: {tensor} in {weights_file} is {matrix.dtype} of shape {list(matrix.shape)}, "
                            f"not a table of {len(words)} rows; re-publish the model")
    return WordVectors(list(words), matrix.astype(np.float32, copy=False))


def vector_kinds() -> tuple[str, ...]:
    """The kinds whose bundles hold an input embedding table."""
    from rnntool.kinds.catalog import CATALOG

    return tuple(k for k, e in CATALOG.items() if e.input_embeddings)


def load_vectors(ref: str | os.PathLike, registry: "Registry | str | os.PathLike | None" = None,
                 side: str | None = None) -> WordVectors:
    """Word vectors from ``ref``: a vectors file (a file that exists, or ``-`` for stdin) or a model in
    the registry whose kind has an input embedding table (``KindEntry.input_embeddings``); ``side``
    chooses a translation model's table (``src``, the default, or ``tgt``)."""
    import importlib

    from rnntool.kinds.catalog import entry
    from rnntool.registry.store import Registry

    text = os.fspath(ref)
    if is_stdin(text) or Path(text).is_file():
        if side is not None:
            raise UsageError(f"--side {side}: {display_name(text)} is a vectors file, not a translation model")
        return read_vectors(text)
    reg = registry if isinstance(registry, Registry) else Registry.open(registry)
    try:
        bundle = reg.resolve(text)
    except (ModelNotFound, InvalidName):
        if text.endswith(VECTOR_FILE_SUFFIXES):
            raise BadInput(f"{text}: no such vectors file (and no model of that name in the registry)") from None
        raise
    reader = entry(bundle.kind).input_embeddings
    if reader is None:
        raise WrongKind(f"{bundle.ref} is {entry(bundle.kind).label}, which has no word vectors; models with an "
                        f"input embedding table: {', '.join(vector_kinds())} (see 'rnntool models list')")
    bundle = reg.load(bundle)  # checksums verified
    module, _, function = reader.partition(":")
    return getattr(importlib.import_module(module), function)(bundle, side)


__all__ = ["FORMAT_HINT", "WordVectors", "check_words", "embedding_table", "load_vectors", "one_table", "read_vectors",
           "vector_kinds", "write_vectors"]
