"""Labelled text for the classifier, read from the formats users already have (stdlib only).

    data = read_labelled("train.txt")                  # format detected: fasttext, tsv, csv or tab
    data.format, data.labels, data.multi_label         # "fasttext", ["neg", "pos"], False
    for ex in data.examples:                           # Example(text, labels, line)
        ...
    weights = balanced_class_weights(data.label_counts(), data.labels)
    for text in read_texts("-"):                       # `rnntool classify` input, streamed line by line
        ...

Formats (``--format``, else detected from the first non-blank line and the file name):

* ``fasttext``: ``__label__pos __label__funny some text``; leading tokens with the label prefix are
  the labels (stored without the prefix), the rest of the line is the text.
* ``tsv``: tab-separated with a header row; the text and label columns are chosen by name.
* ``csv``: the same with commas, read with the csv module (quoted fields may hold commas and line
  breaks; a row's line number is the line it starts on).
* ``tab``: headerless ``LABEL<TAB>TEXT`` (split on the first tab; the rest is the text).

In tsv, csv and tab a label field may hold several labels separated by commas (``funny,pos``).
Several labels on one example make the data multi-label. Blank lines are skipped; text keeps what
was written, less surrounding whitespace. Every error is one line, ``file:line: what; what to do``.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rnntool.errors import BadInput, UsageError
from rnntool.kinds.classifier.formats import FORMATS, TEXT_FORMATS
from rnntool.textio import display_name, read_lines

LABEL_PREFIX = "__label__"
TEXT_COLUMNS = ("text", "sentence", "review", "question", "content", "document", "tweet", "utterance")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment", "intent", "y")
_MAX_LISTED = 20  # labels or columns named in one error message

Numbered = Iterator[tuple[int, str]]


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[str, ...]  # distinct, in the order written
    line: int  # 1-based line in the source file (the row's first line for csv)


@dataclass
class LabelledData:
    examples: list[Example]
    source: str  # display name of the file ("<stdin>" for stdin)
    format: str  # the resolved format (never "auto")

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def multi_label(self) -> bool:
        return any(len(ex.labels) > 1 for ex in self.examples)

    def label_counts(self) -> dict[str, int]:
        """label -> number of examples carrying it, sorted by label."""
        counts: dict[str, int] = {}
        for ex in self.examples:
            for label in ex.labels:
                counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def labels(self) -> list[str]:
        return sorted({label for ex in self.examples for label in ex.labels})

    @property
    def texts(self) -> list[str]:
        return [ex.text for ex in self.examples]

    @property
    def gold(self) -> list[tuple[str, ...]]:
        return [ex.labels for ex in self.examples]


# -- detection -----------------------------------------------------------------------------------
def detect_format(first_line: str, path: str | os.PathLike | None, *, label_prefix: str = LABEL_PREFIX,
                  lineno: int = 1) -> str:
    """The format of a file from its first non-blank line (line ``lineno``) and its name."""
    if first_line.lstrip().startswith(label_prefix):
        return "fasttext"
    if _csv_suffix(path):
        return "csv"
    if "," in first_line and "\t" not in first_line and _names_columns(_csv_fields(first_line)):
        return "csv"
    if "\t" in first_line:
        return "tsv" if _names_columns(first_line.split("\t")) else "tab"
    raise BadInput(f"{display_name(path)}:{lineno}: cannot tell the format (no '{label_prefix}' prefix, "
                   "no tab-separated label); give --format fasttext|tsv|csv|tab")


def _csv_suffix(path) -> bool:
    return path not in (None, "-", "") and str(path).lower().endswith(".csv")


def _csv_fields(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return []


def _names_columns(fields: Sequence[str]) -> bool:
    names = {f.strip().lower() for f in fields}
    return bool(names & set(TEXT_COLUMNS)) and bool(names & set(LABEL_COLUMNS))


# -- reading -------------------------------------------------------------------------------------
def read_labelled(path: str | os.PathLike | None, *, format: str = "auto", text_column: str | None = None,
                  label_column: str | None = None, label_prefix: str = LABEL_PREFIX,
                  on_bad_utf8: str = "strict", min_classes: int = 2) -> LabelledData:
    """Every labelled example of a file (``-``/None = stdin). ``min_classes``: 2 for training data,
    1 for evaluation data."""
    _check_options(format, FORMATS, text_column, label_column, label_prefix)
    name = display_name(path)
    numbered: Numbered = enumerate(read_lines(path, on_bad_utf8=on_bad_utf8, allow_empty=True), start=1)
    first = next(((n, line) for n, line in numbered if line.strip()), None)
    if first is None:
        raise BadInput(f"{name}: no labelled examples; give a file with lines like "
                       f"'{label_prefix}NAME some text' (or a tsv/csv with a header row)")
    lines = itertools.chain([first], numbered)
    fmt = format
    if fmt == "auto" and (text_column is not None or label_column is not None):
        fmt = "csv" if _csv_suffix(path) or "\t" not in first[1] else "tsv"
    elif fmt == "auto":
        fmt = detect_format(first[1], path, label_prefix=label_prefix, lineno=first[0])

    if fmt == "fasttext":
        records = _fasttext_records(lines, label_prefix)
    elif fmt == "tab":
        records = _tab_records(lines)
    else:
        records = _table_records(lines, fmt, name, text_column, label_column, need_label=True)

    examples = []
    for lineno, text, labels, label_hint in records:
        if text is None:  # a blank line
            continue
        if not labels:
            hint = label_hint or {
                "fasttext": f"fastText lines start with {label_prefix}NAME, then the text",
                "tab": "--format tab lines are LABEL<TAB>TEXT",
            }[fmt]
            raise BadInput(f"{name}:{lineno}: no label; {hint}")
        if "" in labels:
            raise BadInput(f"{name}:{lineno}: a label with no name ('{label_prefix}' alone); "
                           f"write {label_prefix}NAME")
        if not text:
            raise BadInput(f"{name}:{lineno}: empty text after the label(s); give the example some text "
                           "or delete the line")
        examples.append(Example(text, labels, lineno))

    if not examples:
        raise BadInput(f"{name}: no labelled examples; the file has a header but no rows")
    data = LabelledData(examples, name, fmt)
    labels = data.labels
    if len(labels) < min_classes:
        if len(labels) == 1:
            raise BadInput(f"{name}: every example has label '{labels[0]}'; a classifier needs at least "
                           "two classes")
        raise BadInput(f"{name}: {len(labels)} distinct labels ({_listing(labels)}); "
                       f"at least {min_classes} are needed")
    return data


def read_texts(path: str | os.PathLike | None, *, format: str = "lines", text_column: str | None = None,
               label_prefix: str = LABEL_PREFIX, on_bad_utf8: str = "strict") -> Iterator[str]:
    """The texts to classify, streamed: one per input line (per row after the header for tsv/csv),
    each yielded as soon as its line is read. ``lines``/``fasttext``: the line less any leading
    label tokens; ``tsv``/``csv``/``tab``: the text field (labels ignored). A blank line gives ""."""
    _check_options(format, TEXT_FORMATS, text_column, None, label_prefix)
    return _texts(path, format, text_column, label_prefix, on_bad_utf8)


def _texts(path, fmt: str, text_column: str | None, label_prefix: str, on_bad_utf8: str) -> Iterator[str]:
    name = display_name(path)
    lines: Numbered = enumerate(read_lines(path, on_bad_utf8=on_bad_utf8), start=1)
    if fmt in ("lines", "fasttext"):
        records = _fasttext_records(lines, label_prefix)
    elif fmt == "tab":
        records = _tab_records(lines)
    else:
        records = _table_records(lines, fmt, name, text_column, None, need_label=False)
    for lineno, text, labels, _hint in records:
        if labels is None:  # a tab line with no tab
            raise BadInput(f"{name}:{lineno}: no tab; --format tab lines are LABEL<TAB>TEXT "
                           "(give --format lines for plain lines)")
        yield text or ""


# Records: (line, text, labels, hint for a missing label). text None: a blank line; labels None: a
# tab-format line with no tab.
Record = tuple[int, str | None, tuple[str, ...] | None, str | None]


def _fasttext_records(lines: Numbered, prefix: str) -> Iterator[Record]:
    for lineno, line in lines:
        rest = line.strip()
        if not rest:
            yield lineno, None, (), None
            continue
        labels = []
        while rest.startswith(prefix):
            token, *more = rest.split(None, 1)
            labels.append(token[len(prefix):])
            rest = more[0] if more else ""
        yield lineno, rest, _distinct(labels), None


def _tab_records(lines: Numbered) -> Iterator[Record]:
    for lineno, line in lines:
        if not line.strip():
            yield lineno, None, (), None
            continue
        field, tab, text = line.partition("\t")
        if not tab:
            yield lineno, line.strip(), None, "--format tab lines are LABEL<TAB>TEXT (this line has no tab)"
            continue
        yield lineno, text.strip(), _split_labels(field), None


def _table_records(lines: Numbered, fmt: str, name: str, text_column: str | None, label_column: str | None,
                   *, need_label: bool) -> Iterator[Record]:
    """tsv/csv: the first non-blank row is the header; blank lines before it give nothing."""
    rows = _csv_rows(lines, name) if fmt == "csv" else ((n, line.split("\t")) for n, line in lines)
    header: list[str] | None = None
    for lineno, fields in rows:
        if not any(f.strip() for f in fields):  # a blank line
            if header is not None:
                yield lineno, None, (), None
            continue
        if header is None:
            header = fields
            ti = _column(header, text_column, TEXT_COLUMNS, "text", "--text-column", name, lineno)
            li = _column(header, label_column, LABEL_COLUMNS, "label", "--label-column", name, lineno) \
                if need_label else None
            if li == ti:
                raise BadInput(f"{name}:{lineno}: the text and the label are both column '{header[ti]}'; "
                               "name two different columns with --text-column and --label-column")
            continue
        if len(fields) < len(header) or any(f.strip() for f in fields[len(header):]):
            sep = "commas (quote fields that hold commas)" if fmt == "csv" else \
                "tabs (a tsv field cannot hold a tab; use csv with quotes)"
            raise BadInput(f"{name}:{lineno}: {len(fields)} fields, the header has {len(header)}; "
                           f"rows must have one field per header column, separated by {sep}")
        if li is None:
            yield lineno, fields[ti].strip(), (), None
        else:
            yield lineno, fields[ti].strip(), _split_labels(fields[li]), \
                f"the '{header[li].strip()}' column is empty; every {fmt} row needs a label"


def _csv_rows(lines: Numbered, name: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) for each csv record; pulls only the lines a record spans (streams)."""
    start: list[int | None] = [None]

    def feed() -> Iterator[str]:
        for lineno, line in lines:
            if start[0] is None:
                start[0] = lineno
            yield line + "\n"

    reader = csv.reader(feed(), strict=True)
    while True:
        start[0] = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise BadInput(f"{name}:{start[0]}: cannot read this csv row ({e}); a field holding commas, quotes "
                           "or line breaks must be in double quotes, with inner quotes doubled") from None
        yield start[0], fields


def _column(header: list[str], wanted: str | None, defaults: Sequence[str], what: str, option: str,
            name: str, lineno: int) -> int:
    stripped = [h.strip() for h in header]
    lowered = [h.lower() for h in stripped]
    if wanted is not None:
        for keys, key in ((stripped, wanted.strip()), (lowered, wanted.strip().lower())):
            if key in keys:
                return keys.index(key)
        raise BadInput(f"{name}:{lineno}: no column '{wanted}' in the header (it has: {_listing(stripped)}); "
                       f"check {option}")
    for d in defaults:
        if d in lowered:
            return lowered.index(d)
    raise BadInput(f"{name}:{lineno}: no {what} column in the header (it has: {_listing(stripped)}); "
                   f"name it with {option} (looked for: {', '.join(defaults)}), or give --format tab for "
                   "headerless LABEL<TAB>TEXT lines")


def _split_labels(field: str) -> tuple[str, ...]:
    return _distinct(p.strip() for p in field.split(",") if p.strip())


def _distinct(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(labels))


def _listing(items: Sequence[str]) -> str:
    shown = [s if len(s) <= 40 else s[:39] + "…" for s in items[:_MAX_LISTED]]
    more = f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _check_options(fmt: str, formats: Sequence[str], text_column: str | None, label_column: str | None,
                   label_prefix: str) -> None:
    if fmt not in formats:
        raise UsageError(f"--format must be one of {', '.join(formats)} (got '{fmt}')")
    if (text_column is not None or label_column is not None) and fmt not in ("auto", "tsv", "csv"):
        raise UsageError(f"--text-column and --label-column apply to --format tsv or csv, not {fmt} "
                         "(its lines have no named columns)")
    if not label_prefix or label_prefix != label_prefix.strip() or any(c.isspace() for c in label_prefix):
        raise UsageError(f"--label-prefix must be non-empty, without spaces (got '{label_prefix}')")


# -- checks and weights --------------------------------------------------------------------------
def check_known_labels(data: LabelledData, known: Sequence[str]) -> None:
    """BadInput naming the first example (file:line) with a label the model was not trained on."""
    known_set = set(known)
    for ex in data.examples:
        for label in ex.labels:
            if label not in known_set:
                raise BadInput(f"{data.source}:{ex.line}: label '{label}' is not one the model was trained on "
                               f"(it knows: {_listing(sorted(known_set))}); fix the label or evaluate "
                               "with the model trained on these labels")


def balanced_class_weights(counts: dict[str, int], labels: Sequence[str]) -> list[float]:
    """sklearn's ``class_weight="balanced"``: ``n_samples / (n_classes * count)`` per label, in
    ``labels`` order, where n_samples sums the counts of ``labels``. A label with no examples gets 1.0."""
    n = sum(counts.get(label, 0) for label in labels)
    k = len(labels)
    return [n / (k * counts[label]) if counts.get(label, 0) > 0 else 1.0 for label in labels]


__all__ = [
    "FORMATS",
    "LABEL_COLUMNS",
    "LABEL_PREFIX",
    "TEXT_COLUMNS",
    "TEXT_FORMATS",
    "Example",
    "LabelledData",
    "balanced_class_weights",
    "check_known_labels",
    "detect_format",
    "read_labelled",
    "read_texts",
]
