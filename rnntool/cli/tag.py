"""`rnntool tag`: tag each sentence of CoNLL, CoNLL-U or plain-line input with a sequence tagger,
streamed, in input order; and `rnntool evaluate tags`: conlleval's span scores (or token accuracy for a
tag set without spans) of a tagger on tagged data, or of conlleval's own input (gold and predicted
tags as the last two columns).

    rnntool tag -m ner test.conll | conlleval              # rows echoed, the predicted tag appended
    rnntool tag -m ner --format lines                      # type a sentence, get token/TAG back
    rnntool evaluate tags -m ner test.conll                # conlleval's report, CI, signature
    rnntool tag -m ner test.conll | rnntool evaluate tags  # the same, from conlleval input
"""


import json
import re
from collections import deque
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import app, evaluate_app
from rnntool.cli.console import console
from rnntool.cli.options import (
    DeviceOpt,
    InputArg,
    OnBadUtf8Opt,
    OutputOpt,
    QuietOpt,
    RegistryOpt,
    ThreadsOpt,
    batch_size_option,
    check_format,
    format_option,
    line_batch_size,
    set_threads,
    stdin_is_tty,
)
from rnntool.errors import BadInput, UsageError
from rnntool.kinds.tagger.formats import FORMATS as TAG_INPUT_FORMATS

BATCH_SIZE = 32
BIO_PREFIXES = ("B-", "I-", "E-", "S-")

ModelOpt = Annotated[str, typer.Option("-m", "--model", metavar="MODEL",
                                       help="Tagger: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory.")]
TagColumnOpt = Annotated[Optional[str], typer.Option(
    "--tag-column", help="Input with gold tags: the tag column, a number counting from 1 (conll; default: the "
                         "last column) or upos/xpos/feats/deprel/3..10 (conllu; default: upos).",
    show_default=False)]
# --scheme of `train tag` and `evaluate tags`: how tags make spans, or auto
SCHEME_CHOICES = ("auto", "iob1", "iob2", "iobes")
SchemeOpt = Annotated[Literal[SCHEME_CHOICES], typer.Option(
    "--scheme", help="How tags make spans; auto: the model's scheme with -m, else iob2, and gold tags with no "
                     "B-/I-/E-/S- prefix (POS tags) get token accuracy only. A scheme named here always scores "
                     "spans.")]
TAGGED_FORMATS = ("auto", "conll", "conllu")
BatchSizeOpt = batch_size_option("Sentences read and tagged", BATCH_SIZE)
InputFormatOpt = format_option(TAG_INPUT_FORMATS, "conll (TOKEN ... columns, a blank line between sentences), "
                               "conllu, lines (one sentence per line, tokens split on spaces), or auto: from the "
                               "file name and first sentence (on a terminal: lines).")
TaggedFormatOpt = format_option(TAGGED_FORMATS, "With -m: FILE's format (auto: from its name and first sentence).")


def _with_tag(row: str, tag: str) -> str:
    """A CoNLL(-U) word row with one more column: a tab before it, or a space when the row's columns
    are space-separated (CoNLL-2003 style), so the row still splits the way it was read."""
    row = row.rstrip()
    sep = " " if "\t" not in row and len(row.split()) > 1 else "\t"
    return f"{row}{sep}{tag}"


def _spans(tokens: list[str], tags: list[str], scheme: str) -> list[dict]:
    from rnntool.kinds.tagger.spans import extract_spans

    return [{"type": kind, "start": a, "end": b, "text": " ".join(tokens[a:b])}
            for kind, a, b in extract_spans(tags, scheme)]


@app.command("tag")
def tag(
    model: ModelOpt,
    input: InputArg = None,
    input_format: InputFormatOpt = "auto",
    tag_column: TagColumnOpt = None,
    max_len: Annotated[Optional[int], typer.Option(
        "--max-len", help="Longest sentence in tokens (default: no limit); see --on-long.",
        show_default=False)] = None,
    on_long: Annotated[Literal["error", "split"], typer.Option(
        "--on-long", help="A sentence over --max-len: an error, or split into pieces tagged one by one (the "
                          "output still has one sentence per input sentence).")] = "error",
    batch_size: BatchSizeOpt = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="One JSON object per sentence: tokens, tags, probs and (BIO-style tags) spans.")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Tag sentences with a tagger: one output sentence per input sentence, in input order.

    CoNLL and CoNLL-U input is echoed row for row (comments and multiword rows too) with the predicted
    tag appended as one more column, so `rnntool tag -m M gold.conll | conlleval` scores it (the last
    two columns are gold and predicted). Plain lines print as 'token/TAG token/TAG ...'.
    """
    import time

    from rnntool.kinds.tagger import predict
    from rnntool.kinds.tagger.data import read_sentences
    from rnntool.textio import line_writer, open_output

    console.quiet = quiet
    size = line_batch_size(batch_size, input, BATCH_SIZE)
    set_threads(threads)
    if input_format == "auto" and input in (None, "-") and stdin_is_tty():
        input_format = "lines"  # a person typing: one sentence per line, each tagged at once
    check_format(input_format, TAG_INPUT_FORMATS)
    sentences = read_sentences(input, format=input_format, tag_column=tag_column, max_len=max_len,
                               on_long=on_long, on_bad_utf8=on_bad_utf8)  # checks the options, reads lazily
    tagger = predict.open_tagger(model, registry, device)
    scheme = tagger.scheme
    console.log(f"tagging with {tagger.ref} ({len(tagger.tags)} tags, "
                f"{'scheme ' + scheme if scheme else 'no spans'}, device {tagger.device})")

    fed: deque = deque()

    def feed():
        for s in sentences:
            fed.append(s)
            yield list(s.tokens)

    started = time.perf_counter()
    count = words = 0
    with open_output(output) as out:
        write = line_writer(out)
        open_sentence: dict | None = None  # the sentence whose next part may still follow (--on-long split)

        def finish(sent: dict) -> None:
            nonlocal count, words
            count += 1
            words += len(sent["tokens"])
            if json_output:
                obj = {"tokens": sent["tokens"], "tags": sent["tags"], "probs": sent["probs"]}
                if scheme is not None:
                    obj["spans"] = _spans(sent["tokens"], sent["tags"], scheme)
                write(json.dumps(obj, ensure_ascii=False))
            elif sent["format"] == "lines":
                write(" ".join(f"{w}/{t}" for w, t in zip(sent["tokens"], sent["tags"])))
            else:
                write("")  # the blank line after a CoNLL sentence

        for tagged in tagger.stream(feed(), batch_size=size):
            s = fed.popleft()
            tags = list(tagged.tags)
            if len(tags) != len(s.tokens):
                raise BadInput(f"{tagger.ref} gave {len(tags)} tags for a sentence of {len(s.tokens)} tokens "
                               f"(line {s.line}); this is a bug in the model")
            if s.part == 0 and open_sentence is not None:
                finish(open_sentence)
                open_sentence = None
            if open_sentence is None:
                open_sentence = {"tokens": [], "tags": [], "probs": [], "format": s.format}
            open_sentence["tokens"] += s.tokens
            open_sentence["tags"] += tags
            open_sentence["probs"] += [round(float(p), 6) for p in tagged.probs]
            if s.format != "lines" and not json_output:
                word_tag = dict(zip(s.word_rows, tags))
                for r, row in enumerate(s.rows):
                    write(_with_tag(row, word_tag[r]) if r in word_tag else row)
            if max_len is None or len(s.tokens) < max_len:  # no part can follow: answer it now
                finish(open_sentence)
                open_sentence = None
        if open_sentence is not None:
            finish(open_sentence)
    elapsed = time.perf_counter() - started
    console.log(f"tagged {count} sentences, {words} words in {elapsed:.1f}s "
                f"({words / max(elapsed, 1e-9):.1f} words/s)")


# -- evaluate tags --------------------------------------------------------------------------------
def is_bio(tag_sentences) -> bool:
    """Whether some tag has a span prefix (B-, I-, E-, S-): spans apply; else (POS tags, only O) they do not."""
    return any(t.startswith(BIO_PREFIXES) for tags in tag_sentences for t in tags)


def accuracy_report(gold, pred, *, samples: int, seed: int) -> dict:
    """Token accuracy with a bootstrap interval over sentences, in span_report's layout (span fields None)."""
    import numpy as np

    from rnntool.evaluation.bootstrap import DEFAULT_LEVEL, bootstrap_interval

    if len(gold) != len(pred):
        raise BadInput(f"{len(gold)} gold sentences but {len(pred)} predicted")
    if not gold:
        raise BadInput("no sentences to score; give at least one tagged sentence")
    counts = np.zeros((len(gold), 2), dtype=np.float64)  # same, tokens
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise BadInput(f"sentence {i + 1} has {len(g)} gold tags but {len(p)} predicted")
        counts[i] = sum(a == b for a, b in zip(g, p)), len(g)
    same, tokens = (int(x) for x in counts.sum(axis=0))
    interval = None
    if samples:
        n = len(gold)

        def statistic(idx):
            s, t = np.bincount(idx, minlength=n).astype(np.float64) @ counts
            return s / t if t else 0.0

        low, high = bootstrap_interval(statistic, n, samples=samples, seed=seed, level=DEFAULT_LEVEL)
        interval = {"level": DEFAULT_LEVEL, "low": low, "high": high, "samples": samples, "seed": seed}
    return {"sentences": len(gold), "tokens": tokens, "token_accuracy": same / tokens if tokens else 0.0,
            "precision": None, "recall": None, "f1": None, "found_gold": None, "found_pred": None,
            "correct": None, "per_type": None, "scheme": None, "interval": interval}


def _interval_line(report: dict) -> str | None:
    interval = report.get("interval")
    if not interval:
        return None
    name = "FB1" if report["key"] == "f1" else "accuracy"
    level = round(100 * interval["level"])
    return (f"{name} {level}% CI: [{100 * interval['low']:.2f}, {100 * interval['high']:.2f}] "
            f"({interval['samples']} bootstrap resamples of sentences, seed {interval['seed']})")


def format_tags_report(report: dict) -> str:
    """conlleval's text (or the token accuracy when spans do not apply), the interval, the signature."""
    from rnntool.kinds.tagger.spans import conlleval_report

    if report["spans"]:
        text = conlleval_report(report)
    else:
        text = (f"processed {report['tokens']} tokens in {report['sentences']} sentences; "
                f"accuracy: {100 * report['token_accuracy']:6.2f}%\n"
                "spans do not apply: no gold tag has a B-/I-/E-/S- prefix (not BIO-style tags); "
                "token accuracy only\n")
    for line in (_interval_line(report), report["signature"]):
        if line:
            text += line + "\n"
    return text


def _conlleval_file(data: Optional[str], on_bad_utf8: str):
    """(gold, predicted, token_line) of conlleval input; token_line(s, i) is the 1-based line of token i of
    sentence s (for errors)."""
    from rnntool.kinds.tagger.spans import DOCSTART, read_conlleval_input
    from rnntool.textio import display_name, read_lines

    name = display_name(data)
    lines = list(read_lines(data, on_bad_utf8=on_bad_utf8, allow_empty=True))
    try:
        gold, pred = read_conlleval_input(lines)
    except BadInput as e:
        msg = str(e)
        if msg.startswith("line "):
            number, _, rest = msg[len("line "):].partition(": ")
            msg = f"{name}:{number}: {rest}"
        else:
            msg = f"{name}: {msg}"
        raise BadInput(msg) from None
    starts: list[int] = []  # the line of each sentence's first token
    inside = False
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            inside = False
        elif not inside:
            starts.append(number)
            inside = True
    return gold, pred, lambda s, i: starts[s] + i


_TAG_ERROR = re.compile(r"sentence (\d+) \((gold|predicted)\): tag (\d+) is (.*)", re.S)


def _located(e: BadInput, name: str, token_line) -> BadInput:
    """span_report's 'sentence S (gold): tag I is ...' as 'FILE:LINE: gold tag ...'."""
    m = _TAG_ERROR.fullmatch(str(e))
    if m is None:
        return BadInput(f"{name}: {e}")
    line = token_line(int(m.group(1)) - 1, int(m.group(3)) - 1)
    return BadInput(f"{name}:{line}: {m.group(2)} tag {m.group(4)}")


def signature(what: dict, report: dict, *, samples: int, seed: int) -> str:
    """``model:ner@3|data:test.conll#sha:1a2b3c4d|sentences:N|scheme:iob2|bootstrap:1000|seed:12345|version:...``."""
    from rnntool import __version__

    parts = []
    for k in ("model", "data"):
        if k in what:
            sha = what.get(f"{k}_sha256")
            parts.append(f"{k}:{what[k]}" + (f"#sha:{sha[:8]}" if sha else ""))
    parts += [f"sentences:{report['sentences']}", f"scheme:{report['scheme'] or 'none'}", f"bootstrap:{samples}",
              f"seed:{seed}", f"version:rnntool-{__version__}"]
    return "|".join(parts)


@evaluate_app.command("tags")
def evaluate_tags(
    data: Annotated[Optional[str], typer.Argument(
        metavar="FILE", help="With -m: tagged sentences (CoNLL or CoNLL-U) to tag and score. Without: conlleval's "
                             "input, the last two columns gold and predicted tag ('-' or nothing: stdin).",
        show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("-m", "--model", metavar="MODEL", show_default=False,
                                                 help="Tagger to evaluate on FILE's tagged sentences.")] = None,
    data_format: TaggedFormatOpt = "auto",
    tag_column: TagColumnOpt = None,
    scheme: SchemeOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="With -m: sentences tagged together.")] = BATCH_SIZE,
    samples: Annotated[int, typer.Option("--samples", help="Bootstrap resamples for the 95% interval.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap (same seed, same "
                                                     "interval).")] = 12345,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Score a tagger (-m MODEL FILE) or tagged output (FILE: conlleval input): span precision, recall and
    FB1 as conlleval prints them, with token accuracy, per type, a bootstrap 95% interval of FB1 and a
    signature. Tags without span prefixes (POS tags) get token accuracy only."""
    from rnntool.kinds.tagger.spans import span_report
    from rnntool.textio import display_name, fingerprint_file, is_stdin

    console.quiet = quiet
    if samples < 0:
        raise UsageError(f"--samples must be 0 or more (got {samples})")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {batch_size})")
    name = display_name(data)
    what: dict = {}
    check_format(data_format, TAGGED_FORMATS)
    set_threads(threads)
    scheme_given = scheme != "auto"
    scheme = scheme if scheme_given else None
    if model is not None:
        from rnntool.kinds.tagger import predict
        from rnntool.kinds.tagger.data import check_known_tags, read_tagged

        if data is None:
            raise UsageError("-m MODEL needs FILE: tagged sentences to tag and score ('-' for stdin)")
        sentences = read_tagged(data, format=data_format, tag_column=tag_column, on_bad_utf8=on_bad_utf8)
        tagger = predict.open_tagger(model, registry, device)
        check_known_tags(sentences, tagger.tags, name)
        console.log(f"tagging {len(sentences)} sentences of {name} with {tagger.ref} (device {tagger.device})")
        gold = [list(s.tags) for s in sentences]
        token_line = lambda s, i: sentences[s].token_line(i)  # noqa: E731
        pred = [list(t.tags) for t in tagger.stream((list(s.tokens) for s in sentences), batch_size=batch_size)]
        if scheme is None:
            scheme = tagger.scheme or "iob2"
        what["model"] = tagger.ref
    else:
        if data_format != "auto" or tag_column is not None:
            raise UsageError("--format and --tag-column apply with -m MODEL; without it FILE is conlleval input "
                             "(the last two columns gold and predicted)")
        gold, pred, token_line = _conlleval_file(data, on_bad_utf8)
        scheme = scheme or "iob2"
    what["data"] = name
    if not is_stdin(data):
        what["data_sha256"] = fingerprint_file(data)["sha256"]
    spans = scheme_given or is_bio(gold)  # an explicit --scheme scores spans (or says which tag is not one)
    try:
        if spans:
            report = span_report(gold, pred, scheme=scheme, samples=samples, seed=seed)
        else:
            report = accuracy_report(gold, pred, samples=samples, seed=seed)
    except BadInput as e:
        raise _located(e, name, token_line) from None
    report["spans"] = spans
    report["key"] = "f1" if spans else "token_accuracy"
    report["signature"] = signature(what, report, samples=samples, seed=seed)
    if json_output:
        console.emit_json(report)
    else:
        console.emit(format_tags_report(report).rstrip("\n"))
