"""Tagged sentences for the tagger, read from the formats users already have (stdlib only).

    for s in read_sentences("-"):                       # `rnntool tag` input, streamed sentence by sentence
        s.tokens, s.tags, s.line                        # ("EU", "rejects"), ("B-ORG", "O") or None, 3
    train = read_tagged("train.conllu", tag_column="xpos")   # every sentence tagged, else BadInput
    check_known_tags(dev, model_tags, "dev.conll")

Formats (``--format``, else detected from the file name and the first lines):

* ``conll``: one token per line, ``TOKEN ... TAG`` columns (CoNLL-2003, WNUT-17 ``token<TAB>tag``),
  a blank line (or one of only whitespace) between sentences, any number of blank lines in a row.
  Columns are split on tabs when the line has a tab, else on runs of whitespace. The token is
  column 1; the tag is the last column, or column N (counting from 1) with ``tag_column=N``.
  Without ``tag_column`` every token line must have as many columns as the first one; a file of
  one column is prediction input (``tags=None``). ``-DOCSTART-`` lines end a sentence and are
  dropped (they are not in any sentence's ``rows``).
* ``conllu``: Universal Dependencies; 10 tab-separated columns per line. Only words are tokens:
  multiword-token lines (ID ``1-2``) and empty nodes (ID ``8.1``) are not; ``#`` comments are
  skipped. The tag is ``tag_column``: ``upos`` (default), ``xpos``, ``feats``, ``deprel``, or a
  column number N counting from 1 (3..10). A sentence whose tag column is ``_`` on every word is
  prediction input (``tags=None``); ``_`` on some words only is an error naming ``file:line``
  (``_`` is a real value for ``feats``, never an absent tag).
* ``lines``: one sentence per line, tokens split on whitespace, ``tags=None``; a blank line is an
  empty sentence (the caller still answers it, one line out per line in).

Detection: a ``.conllu`` name is conllu; ``.conll``/``.bio``/``.iob``/``.iob2``/``.bioes`` is conll.
Otherwise the first word line (after ``#`` comments) decides: a CoNLL-U row is conllu; a line
starting ``-DOCSTART-`` or holding a tab is conll; space-separated lines are conll only when the
first block has 2+ lines of the same width and ends with a blank line; anything else is lines.
Detection reads ahead at most the first sentence (or 50 lines): on an interactive stdin give
``--format`` (``lines`` especially) so the first answer comes after the first line.

``max_len``: a sentence of more tokens is an error (``on_long="error"``) or, with
``on_long="split"``, cut into consecutive chunks of at most ``max_len`` tokens. Each chunk is its
own Sentence with ``part`` 0, 1, 2, ... (rows split between them, comments with part 0); write the
sentence separator only before ``part == 0`` to echo the input unchanged.

Reading streams: each sentence is yielded as soon as its ending blank line (or end of input) is
read. Every error is one line, ``file:line: what; what to do``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.tagger.formats import FORMATS
from rnntool.textio import display_name, read_lines

UD_COLUMNS = {"upos": 3, "xpos": 4, "feats": 5, "deprel": 7}  # 0-based CoNLL-U column indices
ON_LONG = ("error", "split")
_CONLLU_NAMES = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
_CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".iob2", ".bioes")
_DETECT_LINES = 50  # most lines read ahead to detect the format
_MAX_LISTED = 20
_ID = re.compile(r"[0-9]+(?:-[0-9]+|\.[0-9]+)?\Z")

Numbered = Iterator[tuple[int, str]]


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None  # None when the input has no tags (prediction input)
    line: int  # 1-based line of its first token (of the line, for `lines`)
    rows: tuple[str, ...] = ()  # original lines (conll/conllu; CoNLL-U comments included), verbatim
    word_rows: tuple[int, ...] = ()  # index in rows of each token's row (conll/conllu)
    part: int = 0  # chunk number when split by max_len (0: the sentence's first or only chunk)
    format: str = "lines"  # the resolved format it was read as (never "auto")

    def token_line(self, i: int) -> int:
        """The 1-based line of token ``i``."""
        if not self.word_rows:
            return self.line
        return self.line + self.word_rows[i] - self.word_rows[0]


# -- detection -----------------------------------------------------------------------------------
def detect_format(first_lines: list[str], path: str | os.PathLike | None) -> str:
    """The format of a file from its name and its first lines (the first sentence is enough)."""
    return _detect(first_lines, path, complete=True) or "lines"


def _detect(lines: Sequence[str], path, *, complete: bool) -> str | None:
    """A format, or None while ``lines`` (not ``complete``: more may follow) cannot tell yet."""
    if path not in (None, "-", ""):
        suffix = os.path.splitext(str(path))[1].lower()
        if suffix == ".conllu":
            return "conllu"
        if suffix in _CONLL_SUFFIXES:
            return "conll"
    content = [line for line in lines if line.strip()]
    words = [line for line in content if not line.startswith("#")]
    if words and _is_conllu_row(words[0]):
        return "conllu"
    if not words and not complete:
        return None  # nothing, or only comments, so far
    if not content:
        return "lines"
    first = content[0]
    if first.split()[0] == "-DOCSTART-" or "\t" in first.strip():
        return "conll"
    block: list[str] = []  # the first run of non-blank lines
    ended = False
    for line in lines:
        if line.strip():
            block.append(line)
        elif block:
            ended = True
            break
    width = len(first.split())
    if any(len(line.split()) != width for line in block):
        return "lines"
    if ended:
        return "conll" if len(block) >= 2 else "lines"
    return "lines" if complete else None


def _is_conllu_row(line: str) -> bool:
    fields = line.split("\t")
    return len(fields) == 10 and bool(_ID.match(fields[0]))


# -- reading -------------------------------------------------------------------------------------
def read_sentences(path: str | os.PathLike | None, *, format: str = "auto", tag_column: str | int | None = None,
                   max_len: int | None = None, on_long: str = "error",
                   on_bad_utf8: str = "strict") -> Iterator[Sentence]:
    """Sentences of a file (``-``/None = stdin), streamed. Empty input yields nothing."""
    column = _check_options(format, tag_column, max_len, on_long)
    return _sentences(path, format, column, max_len, on_long, on_bad_utf8)


def read_tagged(path: str | os.PathLike | None, **kw) -> list[Sentence]:
    """Training/evaluation data: every sentence of the file, each with a tag per token."""
    name = display_name(path)
    sentences = list(read_sentences(path, **kw))
    if not sentences:
        raise BadInput(f"{name}: no sentences; give CoNLL (TOKEN<TAB>TAG lines, a blank line between "
                       "sentences) or CoNLL-U")
    for s in sentences:
        if s.tags is None:
            if s.format == "lines":
                raise BadInput(f"{name}:{s.line}: no tags (read as plain lines, one sentence per line); "
                               "tagged data is CoNLL (TOKEN<TAB>TAG lines, a blank line between "
                               "sentences) or CoNLL-U; give --format conll or conllu if it is one")
            if s.format == "conllu":
                col = _conllu_column_name(kw.get("tag_column"))
                raise BadInput(f"{name}:{s.line}: no {col} tag ('_') on any word of this sentence; tagged "
                               f"data needs one per word (choose another column with --tag-column)")
            raise BadInput(f"{name}:{s.line}: one column (no tag); tagged CoNLL lines are TOKEN<TAB>TAG "
                           "(the tag is the last column, or --tag-column N)")
    return sentences


def check_known_tags(sentences: Iterable[Sentence], known: Sequence[str], source: str) -> None:
    """BadInput naming the first token (file:line) whose tag the model was not trained on."""
    known_set = set(known)
    for s in sentences:
        for i, tag in enumerate(s.tags or ()):
            if tag not in known_set:
                raise BadInput(f"{source}:{s.token_line(i)}: tag '{tag}' was not seen in training "
                               f"(known: {_listing(sorted(known_set))}); fix the tag or evaluate with a "
                               "model trained on this tag set")


def _sentences(path, fmt: str, column: int | str | None, max_len: int | None, on_long: str,
               on_bad_utf8: str) -> Iterator[Sentence]:
    name = display_name(path)
    lines: Numbered = enumerate(read_lines(path, on_bad_utf8=on_bad_utf8, allow_empty=True), start=1)
    if fmt == "auto":
        sample: list[tuple[int, str]] = []
        found = None
        for item in lines:
            sample.append(item)
            found = _detect([s for _, s in sample], path, complete=len(sample) >= _DETECT_LINES)
            if found:
                break
        fmt = found or _detect([s for _, s in sample], path, complete=True) or "lines"
        lines = _chain(sample, lines)
    if isinstance(column, str) and fmt != "conllu":
        raise UsageError(f"--tag-column {column} names a CoNLL-U column, but {name} reads as {fmt}; "
                         "give a column number (counting from 1) or --format conllu")
    if fmt == "lines":
        if column is not None:
            raise UsageError(f"--tag-column applies to conll or conllu input, but {name} reads as plain "
                             "lines (one sentence per line); give --format conll or conllu if it is one")
        for lineno, line in lines:
            yield from _limit(name, Sentence(tuple(line.split()), None, lineno), max_len, on_long)
        return
    if fmt == "conllu":
        index = UD_COLUMNS["upos"] if column is None else \
            UD_COLUMNS[column] if isinstance(column, str) else column - 1
        for block in _blocks(lines, docstart=False):
            s = _conllu_sentence(block, name, index)
            if s is not None:
                yield from _limit(name, s, max_len, on_long)
        return
    state: dict = {}
    for block in _blocks(lines, docstart=True):
        yield from _limit(name, _conll_sentence(block, name, column, state), max_len, on_long)


def _chain(first: list[tuple[int, str]], rest: Numbered) -> Numbered:
    yield from first
    yield from rest


def _blocks(lines: Numbered, *, docstart: bool) -> Iterator[list[tuple[int, str]]]:
    """Runs of non-blank lines, each yielded as soon as the blank line (or end) after it is read."""
    block: list[tuple[int, str]] = []
    for lineno, line in lines:
        if not line.strip():
            if block:
                yield block
                block = []
            continue
        if docstart and line.split(None, 1)[0] == "-DOCSTART-":
            if block:
                yield block
                block = []
            continue
        block.append((lineno, line))
    if block:
        yield block


def _conll_sentence(block: list[tuple[int, str]], name: str, column: int | None, state: dict) -> Sentence:
    tokens: list[str] = []
    tags: list[str] = []
    for lineno, line in block:
        text = line.strip()
        tabbed = "\t" in text
        fields = [f.strip() for f in text.split("\t")] if tabbed else text.split()
        if "" in fields:
            raise BadInput(f"{name}:{lineno}: column {fields.index('') + 1} is empty; columns are separated "
                           "by one tab (or by spaces when the line has no tab)")
        n = len(fields)
        if column is not None:
            want = column
        else:
            if "width" not in state:
                state["width"], state["line"] = n, lineno
            want = state["width"]
            if n > want:
                raise BadInput(f"{name}:{lineno}: {_cols(n)}, but line {state['line']} has {want}; every token "
                               "line needs the same columns (give --tag-column N to pick the tag column)")
        if n < want:
            raise BadInput(f"{name}:{lineno}: {_cols(n)}, the tag is column {want}; every token line needs "
                           f"TOKEN ... TAG columns, separated by {'tabs' if tabbed else 'spaces or tabs'} "
                           "(give --tag-column N to pick the tag column)")
        tokens.append(fields[0])
        if want > 1:
            tags.append(fields[want - 1])
    return Sentence(tuple(tokens), tuple(tags) if tags else None, block[0][0],
                    tuple(line for _, line in block), tuple(range(len(block))), format="conll")


def _conllu_sentence(block: list[tuple[int, str]], name: str, index: int) -> Sentence | None:
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    word_rows: list[int] = []
    for r, (lineno, line) in enumerate(block):
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise BadInput(f"{name}:{lineno}: {len(fields)} tab-separated columns; CoNLL-U lines have 10 "
                           "(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), or start with '#'")
        if not _ID.match(fields[0]):
            raise BadInput(f"{name}:{lineno}: ID '{fields[0]}' is not a word number (1), range (1-2) or "
                           "empty node (1.1); is this CoNLL-U?")
        if not fields[0].isdigit():
            continue  # a multiword token or an empty node: not a word
        if not fields[1]:
            raise BadInput(f"{name}:{lineno}: empty FORM (column 2); every CoNLL-U word needs one")
        tokens.append(fields[1])
        tags.append(fields[index])
        lines.append(lineno)
        word_rows.append(r)
    if not tokens:
        return None  # comments only
    if index != UD_COLUMNS["feats"] and "_" in tags:
        if all(t == "_" for t in tags):
            tags = []
        else:
            i = tags.index("_")
            raise BadInput(f"{name}:{lines[i]}: {_CONLLU_NAMES[index]} is '_' (no tag) for '{tokens[i]}'; "
                           f"every word needs a {_CONLLU_NAMES[index]} tag (or choose another column with "
                           "--tag-column)")
    return Sentence(tuple(tokens), tuple(tags) if tags else None, lines[0],
                    tuple(line for _, line in block), tuple(word_rows), format="conllu")


def _limit(name: str, s: Sentence, max_len: int | None, on_long: str) -> Iterator[Sentence]:
    n = len(s.tokens)
    if max_len is None or n <= max_len:
        yield s
        return
    if on_long == "error":
        raise BadInput(f"{name}:{s.line}: sentence of {n} tokens, over --max-len {max_len}; raise --max-len "
                       f"or give --on-long split to cut it into pieces of at most {max_len} tokens")
    for part, a in enumerate(range(0, n, max_len)):
        b = min(a + max_len, n)
        tags = s.tags[a:b] if s.tags is not None else None
        if not s.word_rows:
            yield Sentence(s.tokens[a:b], tags, s.line, s.rows, (), part, s.format)
            continue
        start = 0 if a == 0 else s.word_rows[a - 1] + 1
        end = len(s.rows) if b == n else s.word_rows[b - 1] + 1
        yield Sentence(s.tokens[a:b], tags, s.token_line(a), s.rows[start:end],
                       tuple(r - start for r in s.word_rows[a:b]), part, s.format)


# -- options -------------------------------------------------------------------------------------
def _check_options(fmt: str, tag_column, max_len, on_long) -> int | str | None:
    """The tag column as an int (counting from 1), a CoNLL-U column name, or None."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got '{fmt}')")
    if on_long not in ON_LONG:
        raise UsageError(f"--on-long must be one of {', '.join(ON_LONG)} (got '{on_long}')")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
        raise UsageError(f"--max-len must be a whole number of at least 1 (got '{max_len}')")
    column = tag_column
    if isinstance(column, str):
        key = column.strip().lower()
        column = int(key) if key.isdigit() else key
        if isinstance(column, str) and column not in UD_COLUMNS:
            raise UsageError(f"--tag-column must be a column number (counting from 1) or one of "
                             f"{', '.join(UD_COLUMNS)} (got '{tag_column}')")
    if isinstance(column, bool) or (column is not None and not isinstance(column, (int, str))):
        raise UsageError(f"--tag-column must be a column number or a CoNLL-U column name (got '{tag_column}')")
    if isinstance(column, int):
        low = 3 if fmt == "conllu" else 2
        if column < low or (fmt == "conllu" and column > 10):
            raise UsageError(f"--tag-column {column}: the tag column counts from 1 and cannot be the token "
                             f"(it must be {low} or more{', at most 10, for CoNLL-U' if fmt == 'conllu' else ''})")
    if column is not None and fmt == "lines":
        raise UsageError("--tag-column applies to --format conll or conllu, not lines (plain lines have no tags)")
    if isinstance(column, str) and fmt == "conll":
        raise UsageError(f"--tag-column {column} names a CoNLL-U column; for --format conll give a column "
                         "number (counting from 1)")
    return column


def _conllu_column_name(tag_column) -> str:
    if tag_column is None:
        return "UPOS"
    key = str(tag_column).strip().lower()
    if key.isdigit() and 1 <= int(key) <= 10:
        return _CONLLU_NAMES[int(key) - 1]
    return key.upper()


def _cols(n: int) -> str:
    return f"{n} column" if n == 1 else f"{n} columns"


def _listing(items: Sequence[str]) -> str:
    shown = [s if len(s) <= 40 else s[:39] + "…" for s in items[:_MAX_LISTED]]
    more = f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else ""
    return ", ".join(shown) + more


__all__ = [
    "FORMATS",
    "ON_LONG",
    "UD_COLUMNS",
    "Sentence",
    "check_known_tags",
    "detect_format",
    "read_sentences",
    "read_tagged",
]
