"""`rnntool classify`: one line of labels per input line, streamed, in input order; and
`rnntool evaluate classification`: accuracy, F1s, per-class scores and a confusion matrix, of a model
on a labelled file or of predictions against gold labels."""


import json
from pathlib import Path
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
)
from rnntool.errors import UsageError
from rnntool.kinds.classifier.formats import FORMATS as LABELLED_FORMATS
from rnntool.kinds.classifier.formats import TEXT_FORMATS

BATCH_SIZE = 64
FORMAT_HELP = ("Labelled data: fasttext, tsv/csv (a header row), tab ('label<TAB>text'), or auto: detected from "
               "the first line.")
FormatOpt = format_option(LABELLED_FORMATS, FORMAT_HELP)
TextFormatOpt = format_option(TEXT_FORMATS, "lines: each line is a text (leading __label__ tokens are skipped, so a "
                              "labelled fastText file works as is); fasttext/tsv/csv/tab: the texts of labelled data.")
BatchSizeOpt = batch_size_option("Lines read and classified", BATCH_SIZE)
TextColumnOpt = Annotated[Optional[str], typer.Option("--text-column", help="tsv/csv: the text column's name.",
                                                      show_default=False)]
LabelColumnOpt = Annotated[Optional[str], typer.Option("--label-column", help="tsv/csv: the label column's name.",
                                                       show_default=False)]


@app.command("classify")
def classify(
    model: Annotated[str, typer.Option("-m", "--model", metavar="MODEL",
                                       help="Classifier: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory.")],
    input: InputArg = None,
    top: Annotated[Optional[int], typer.Option("-k", "--top", min=1, metavar="K", show_default=False,
                                               help="Print the K most probable labels, best first (default: the "
                                                    "decision).")] = None,
    prob: Annotated[bool, typer.Option("--prob", help="Each label followed by its probability "
                                                      "(fastText's predict-prob: '__label__pos 0.93').")] = False,
    threshold: Annotated[Optional[float], typer.Option(
        "--threshold", help="Only labels with at least this probability (multi-label models: the decision "
                            "threshold; default: the one it was trained with).", show_default=False)] = None,
    input_format: TextFormatOpt = "lines",
    text_column: TextColumnOpt = None,
    batch_size: BatchSizeOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line: the labels and every "
                                                             "class's probability.")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    output: OutputOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Classify text with a classifier: one output line per input line, in input order.

    The default prints the decision: one label (a multi-label model: every label at or above its
    threshold, space-separated; an empty line when none is). Labels print as the training data wrote
    them (__label__NAME for fastText data).
    """
    import time

    from rnntool.kinds.classifier.data import read_texts
    from rnntool.kinds.classifier.predict import open_classifier
    from rnntool.textio import line_writer, open_output

    console.quiet = quiet
    check_format(input_format, TEXT_FORMATS)
    set_threads(threads)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be between 0 and 1 (got {threshold})")
    clf = open_classifier(model, registry, device)
    if top is not None and top > len(clf.labels):
        raise UsageError(f"-k {top}: {clf.ref} knows only {len(clf.labels)} labels")
    console.log(f"classifying with {clf.ref} ({len(clf.labels)} labels{', multi-label' if clf.multi_label else ''}, "
                f"device {clf.device})")
    texts = read_texts(input, format=input_format, text_column=text_column, on_bad_utf8=on_bad_utf8)
    started, count = time.perf_counter(), 0
    with open_output(output) as out:
        write = line_writer(out)
        for p in clf.stream(texts, batch_size=line_batch_size(batch_size, input, BATCH_SIZE), threshold=threshold):
            count += 1
            if top is not None:
                chosen = p.top(clf.labels, top)
            else:
                chosen = [(lbl, float(p.probs[clf.labels.index(lbl)])) for lbl in p.labels]
            if threshold is not None:  # multi-label: the decision already used it; fastText's predict -t
                chosen = [(lbl, v) for lbl, v in chosen if v >= threshold]
            if json_output:
                write(json.dumps({"labels": [clf.shown(lbl) for lbl, _ in chosen],
                                  "probs": {clf.shown(lbl): round(float(v), 6) for lbl, v in zip(clf.labels, p.probs)}},
                                 ensure_ascii=False))
            elif prob:
                write(" ".join(f"{clf.shown(lbl)} {v:.6f}" for lbl, v in chosen))
            else:
                write(" ".join(clf.shown(lbl) for lbl, _ in chosen))
    elapsed = time.perf_counter() - started
    console.log(f"classified {count} lines in {elapsed:.1f}s ({count / max(elapsed, 1e-9):.1f} lines/s)")


@evaluate_app.command("classification")
def evaluate_classification(
    data: Annotated[Optional[str], typer.Argument(
        metavar="FILE", help="With -m: labelled examples to classify. With --ref: predicted labels, one line per "
                             "example ('-' or nothing: stdin).", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("-m", "--model", metavar="MODEL", show_default=False,
                                                 help="Classifier to evaluate on FILE's labelled examples.")] = None,
    ref: Annotated[Optional[Path], typer.Option(
        "--ref", "-r", metavar="GOLD", help="Gold labels to score FILE's predictions against: one line of labels per "
                                            "example, or labelled data (see --format).", show_default=False)] = None,
    data_format: FormatOpt = "auto",
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    key: Annotated[Literal["accuracy", "macro-f1", "micro-f1"], typer.Option(
        "--key", help="The metric the bootstrap interval is given for.")] = "accuracy",
    samples: Annotated[int, typer.Option("--samples", help="Bootstrap resamples for the 95% interval.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap (same seed, same interval).")] = 12345,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the confusion matrix into this "
                                                                "file (.png, .svg or .pdf).", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Score a classifier (-m MODEL FILE) or predictions (FILE --ref GOLD): accuracy, macro- and micro-F1,
    per-class precision/recall/F1/support, the confusion matrix, a bootstrap 95% interval, a signature."""
    from rnntool.kinds.classifier.metrics import classification_report, format_report
    from rnntool.kinds.classifier import scoring

    console.quiet = quiet
    check_format(data_format, LABELLED_FORMATS)
    set_threads(threads)
    if (model is None) == (ref is None):
        raise UsageError("give -m MODEL (classify FILE's labelled examples) or --ref GOLD (score FILE's "
                         "predictions), not both")
    if samples < 0:
        raise UsageError(f"--samples must be 0 or more (got {samples})")
    if plot is not None:
        from rnntool.cli.plotting import plot_format

        plot_format(plot)
    read = dict(format=data_format, text_column=text_column, label_column=label_column, on_bad_utf8=on_bad_utf8)
    if model is not None:
        gold, pred, labels, what = scoring.model_predictions(model, data, registry=registry, device=device, **read)
    else:
        gold, pred, labels, what = scoring.predictions_against(data, ref, **read)
    key_name = key.replace("-", "_")
    report = classification_report(gold, pred, labels, key=key_name, samples=samples, seed=seed)
    report["signature"] = scoring.signature(what, report, samples=samples, seed=seed)
    if plot is not None:
        from rnntool.cli.plotting import plot_confusion_matrix

        if report.get("confusion_matrix") is None:
            raise UsageError("--plot draws a confusion matrix, which a multi-label evaluation does not have")
        console.log(f"wrote {plot_confusion_matrix(report, plot)}")
    if json_output:
        console.emit_json(report)
    else:
        console.emit(format_report(report, signature=report["signature"]))
