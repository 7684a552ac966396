"""Span (chunk) scoring for tagged sentences, as conlleval and seqeval score them (numpy only, no torch).

    extract_spans(tags, scheme) -> [(type, start, end_exclusive), ...]
    span_report(gold, pred, scheme=...) -> {"precision", "recall", "f1", "per_type", "interval", ...}
    conlleval_report(report) -> conlleval.pl's text output, line for line
    read_conlleval_input(lines) -> (gold sentences, predicted sentences) from conlleval's own input format

A tag is ``O`` or ``PREFIX-TYPE`` (the type may contain hyphens; the prefix is what precedes the first
one). Which rule finds the spans depends on the scheme:

* ``iob1`` and ``iob2``: conlleval.pl's chunk rules, which treat both the same (so do seqeval's default
  mode, ``get_entities``, and ``classification_report`` without ``mode``). A chunk starts at ``B-X``, or
  at ``I-X`` after ``O`` or after a tag of another type; it ends before ``O``, before ``B-``, and before a
  type change. So a stray ``I-X`` (at the sentence start, or after ``O``/another type) opens a chunk, as
  it must in IOB1, and ``B-X`` directly after ``I-X``/``B-X`` splits the run. Tags with prefixes other
  than B/I (``E-``, ``S-``, ...) raise ``BadInput``: conlleval has no ``S`` rule, so it would glue
  ``S-X S-X`` into one chunk, and seqeval's default mode guesses; score such data with ``iobes``.
  Not seqeval's ``mode="strict", scheme=IOB1``, which disagrees with conlleval on most IOB1 data: it
  drops ``B-X`` unless it follows ``I-X``/``B-X`` (``O B-X`` -> nothing) and opens a new span at ``I-X``
  after ``B-X`` (``B-X I-X`` -> only token 2).
* ``iobes``: seqeval's strict mode (``mode="strict", scheme=IOBES``, ``seqeval.scheme.Tokens``). A span
  is ``S-X`` alone, or ``B-X`` followed by ``I-X``... and closed by ``E-X`` (all the same type). A run
  that is not closed that way (``B-X`` then ``O``, ``I-X`` alone, ``B-X I-Y E-Y``, ``E-X`` alone) is
  invalid and yields no span; its tokens are not reused as starts, though a ``B-``/``S-`` that cuts it
  short starts a span of its own. Prefixes other than B/I/E/S raise ``BadInput``.

Scores are fractions in [0, 1], each equal to seqeval's (``precision_score``, ``recall_score``,
``f1_score``, ``classification_report(..., output_dict=True)`` with the matching mode) on the same data:
a span is correct when gold has the same (type, start, end) in the same sentence, and 0/0 counts as 0
(seqeval's ``zero_division``, conlleval's defaults), so no NaN reaches the report. ``conlleval_report``
prints them as percentages from the counts, with conlleval.pl's formulas and printf formats.

The interval is the percentile bootstrap of micro F1 with sentences resampled
(``rnntool.evaluation.bootstrap.bootstrap_interval``, same seed, same interval): per-sentence counts of
correct/predicted/gold spans are weighted by how often each sentence was drawn, so 1000 resamples of
10k sentences cost well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rnntool.errors import BadInput, UsageError
from rnntool.evaluation.bootstrap import DEFAULT_LEVEL, DEFAULT_SAMPLES, DEFAULT_SEED, bootstrap_interval

SCHEMES = ("iob1", "iob2", "iobes")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}
DOCSTART = "-DOCSTART-"

__all__ = ["SCHEMES", "conlleval_report", "extract_spans", "read_conlleval_input", "span_report"]

Span = tuple[str, int, int]


# -- spans ----------------------------------------------------------------------------------------
def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise UsageError(f"unknown tagging scheme {scheme!r}; choose from {', '.join(SCHEMES)}")


def _split(tags: Sequence[str], scheme: str) -> tuple[list[str], list[str]]:
    """(prefixes, types) of ``tags``: ``O`` is ('O', ''), ``B-PER`` is ('B', 'PER')."""
    allowed = _PREFIXES[scheme]
    prefixes, types = [], []
    for i, tag in enumerate(tags):
        if tag == "O":
            prefixes.append("O")
            types.append("")
            continue
        prefix, dash, kind = str(tag).partition("-")
        if not dash or not kind or len(prefix) != 1 or prefix not in allowed:
            want = ", ".join(f"{p}-TYPE" for p in allowed)
            raise BadInput(f"tag {i + 1} is {tag!r}, not a {scheme} tag (O, {want}); "
                           f"fix the tags or choose the scheme they are written in ({', '.join(SCHEMES)})")
        prefixes.append(prefix)
        types.append(kind)
    return prefixes, types


def _conll_spans(prefixes: list[str], types: list[str]) -> list[Span]:
    """conlleval.pl's startOfChunk/endOfChunk, restricted to the tags O, B-X and I-X."""
    spans: list[Span] = []
    start = 0
    prev_tag, prev_type = "O", ""
    for i, (tag, kind) in enumerate(zip([*prefixes, "O"], [*types, ""])):
        ends = prev_tag != "O" and (tag in ("B", "O") or prev_type != kind)
        if ends:
            spans.append((prev_type, start, i))
        if tag == "B" or (tag == "I" and (prev_tag == "O" or prev_type != kind)):
            start = i
        prev_tag, prev_type = tag, kind
    return spans


def _iobes_spans(prefixes: list[str], types: list[str]) -> list[Span]:
    """seqeval's strict IOBES (``seqeval.scheme.Tokens.entities`` with ``IOBES``): invalid runs dropped."""
    spans: list[Span] = []
    n = len(prefixes)
    i = 0
    while i < n:
        tag, kind = prefixes[i], types[i]
        if tag == "S":
            spans.append((kind, i, i + 1))
            i += 1
        elif tag == "B":
            j = i + 1  # extend while (B|I) -> (I|E) of the same type
            while j < n and prefixes[j] in "IE" and types[j] == kind and prefixes[j - 1] in "BI":
                j += 1
            if prefixes[j - 1] == "E":
                spans.append((kind, i, j))
            i = j
        else:
            i += 1
    return spans


def extract_spans(tags: Sequence[str], scheme: str) -> list[Span]:
    """The spans ``(type, start, end_exclusive)`` in one sentence's ``tags``, in order (see the module doc).

    ``iob1``/``iob2`` follow conlleval.pl (= seqeval's default mode); ``iobes`` follows seqeval's strict
    mode. A tag that the scheme does not allow raises ``BadInput`` naming its position (from 1).
    """
    _check_scheme(scheme)
    prefixes, types = _split(tags, scheme)
    if scheme == "iobes":
        return _iobes_spans(prefixes, types)
    return _conll_spans(prefixes, types)


# -- scores ---------------------------------------------------------------------------------------
def _prf(tp: float, pp: float, gp: float) -> tuple[float, float, float]:
    """(precision, recall, F1) as seqeval/sklearn compute them, 0 for 0/0."""
    precision = tp / pp if pp else 0.0
    recall = tp / gp if gp else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return precision, recall, f1


def span_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, scheme: str = "iob2",
                samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED) -> dict[str, Any]:
    """Span precision/recall/F1 (micro and per type) of ``pred`` against ``gold``, one tag list per sentence.

    Returns ``{"sentences", "tokens", "token_accuracy" (tags equal to gold / tokens), "precision",
    "recall", "f1", "found_gold", "found_pred", "correct" (span counts), "per_type": [{"type",
    "precision", "recall", "f1", "support" (gold spans), "predicted", "correct"}, ...] (sorted by type),
    "scheme", "interval": {"level", "low", "high", "samples", "seed"}}``; the interval is the 95%
    bootstrap interval of ``f1`` over resampled sentences, ``None`` for ``samples=0``. All plain Python
    numbers, JSON-able, no NaN.
    """
    _check_scheme(scheme)
    if samples < 0:
        raise UsageError(f"the number of bootstrap samples must be at least 0, got {samples}")
    if len(gold) != len(pred):
        raise BadInput(f"{len(gold)} gold sentences but {len(pred)} predicted; "
                       "give one predicted tag sequence per sentence, in the same order")
    if not gold:
        raise BadInput("no sentences to score; give at least one tagged sentence")
    n = len(gold)
    per_sentence = np.zeros((n, 3), dtype=np.int64)  # correct, predicted, gold spans
    by_type: dict[str, list[int]] = {}
    tokens = same = 0
    for s, (g_tags, p_tags) in enumerate(zip(gold, pred)):
        if isinstance(g_tags, str) or isinstance(p_tags, str):
            raise BadInput(f"sentence {s + 1} is a string, not a list of tags; split it into tags")
        if len(g_tags) != len(p_tags):
            raise BadInput(f"sentence {s + 1} has {len(g_tags)} gold tags but {len(p_tags)} predicted; "
                           "give one predicted tag per token")
        try:
            g_spans = set(extract_spans(g_tags, scheme))
            p_spans = set(extract_spans(p_tags, scheme))
        except BadInput as exc:
            side = "gold" if _bad(g_tags, scheme) else "predicted"
            raise BadInput(f"sentence {s + 1} ({side}): {exc}") from None
        hits = g_spans & p_spans
        per_sentence[s] = len(hits), len(p_spans), len(g_spans)
        for col, spans in enumerate((hits, p_spans, g_spans)):
            for kind, _, _ in spans:
                by_type.setdefault(kind, [0, 0, 0])[col] += 1
        tokens += len(g_tags)
        same += sum(a == b for a, b in zip(g_tags, p_tags))

    correct, found_pred, found_gold = (int(x) for x in per_sentence.sum(axis=0))
    precision, recall, f1 = _prf(correct, found_pred, found_gold)
    per_type = []
    for kind in sorted(by_type):
        tp, pp, gp = by_type[kind]
        p, r, f = _prf(tp, pp, gp)
        per_type.append({"type": kind, "precision": p, "recall": r, "f1": f, "support": gp,
                         "predicted": pp, "correct": tp})

    interval = None
    if samples:
        counts = per_sentence.astype(np.float64)

        def statistic(idx: np.ndarray) -> float:
            tp, pp, gp = np.bincount(idx, minlength=n).astype(np.float64) @ counts
            return _prf(tp, pp, gp)[2]

        low, high = bootstrap_interval(statistic, n, samples=samples, seed=seed, level=DEFAULT_LEVEL)
        interval = {"level": DEFAULT_LEVEL, "low": low, "high": high, "samples": samples, "seed": seed}
    return {
        "sentences": n,
        "tokens": tokens,
        "token_accuracy": same / tokens if tokens else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "found_gold": found_gold,
        "found_pred": found_pred,
        "correct": correct,
        "per_type": per_type,
        "scheme": scheme,
        "interval": interval,
    }


def _bad(tags: Sequence[str], scheme: str) -> bool:
    try:
        _split(tags, scheme)
    except BadInput:
        return True
    return False


# -- conlleval text -------------------------------------------------------------------------------
def _conll_prf(correct: int, found_pred: int, found_gold: int) -> tuple[float, float, float]:
    """conlleval.pl's percentages, computed in its order (so the printed roundings agree)."""
    precision = 100 * correct / found_pred if found_pred > 0 else 0.0
    recall = 100 * correct / found_gold if found_gold > 0 else 0.0
    fb1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, fb1


def conlleval_report(report: dict[str, Any]) -> str:
    """``span_report``'s dict as conlleval.pl prints it (its printf formats; percentages, 2 decimals).

    The accuracy line is left out when there are no tokens, as conlleval.pl does.
    """
    tokens = report["tokens"]
    correct, found_pred, found_gold = report["correct"], report["found_pred"], report["found_gold"]
    lines = [f"processed {tokens} tokens with {found_gold} phrases; "
             f"found: {found_pred} phrases; correct: {correct}.\n"]
    if tokens > 0:
        precision, recall, fb1 = _conll_prf(correct, found_pred, found_gold)
        same = round(report["token_accuracy"] * tokens)
        lines.append("accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n"
                     % (100 * same / tokens, precision, recall, fb1))
    for row in report["per_type"]:
        tp = row.get("correct", round(row["precision"] * row["predicted"]))
        precision, recall, fb1 = _conll_prf(tp, row["predicted"], row["support"])
        lines.append("%17s: precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %d\n"
                     % (row["type"], precision, recall, fb1, row["predicted"]))
    return "".join(lines)


def read_conlleval_input(lines: Iterable[str]) -> tuple[list[list[str]], list[list[str]]]:
    """(gold, predicted) tag sentences from conlleval's input: one token a line, whitespace-separated
    columns of which the last two are the gold and the predicted tag; blank lines end sentences, and
    ``-DOCSTART-`` lines are skipped (they end a sentence too). Every token line must have as many
    columns as the first one (conlleval.pl checks this as well); errors are ``BadInput("line N: ...")``.
    """
    gold: list[list[str]] = []
    pred: list[list[str]] = []
    g_sent: list[str] = []
    p_sent: list[str] = []
    width = first = None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if g_sent:
                gold.append(g_sent)
                pred.append(p_sent)
                g_sent, p_sent = [], []
            continue
        if len(fields) < 2:
            raise BadInput(f"line {number}: one column {fields[0]!r}, but conlleval input needs the gold and "
                           "the predicted tag as the last two columns")
        if width is None:
            width, first = len(fields), number
        elif len(fields) != width:
            raise BadInput(f"line {number}: {len(fields)} columns, but line {first} has {width}; "
                           "give every token the same columns (token ... gold predicted)")
        g_sent.append(fields[-2])
        p_sent.append(fields[-1])
    if g_sent:
        gold.append(g_sent)
        pred.append(p_sent)
    return gold, pred
