"""`rnntool train classify`."""


from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import train_app
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, RegistryOpt, check_format, format_option, stdin_is_tty
from rnntool.cli.train_command import train_command
from rnntool.cli.train_options import (
    CELL_HELP,
    MODEL_TYPE_HELP,
    Cell,
    ModelType,
    TrainOptions,
    check_select,
    select_option,
    train_options,
)
from rnntool.errors import UsageError
from rnntool.kinds.classifier.formats import FORMATS as LABELLED_FORMATS

FORMAT_HELP = ("Input format: fasttext ('__label__a __label__b text'), tsv/csv (a header row; see --text-column), "
               "tab ('label<TAB>text', no header), or auto: detected from the first line.")
FormatOpt = format_option(LABELLED_FORMATS, FORMAT_HELP)
SELECTS = ("accuracy", "macro-f1")
SelectOpt = select_option(SELECTS, "Validation metric that picks the published weights (and --promote's test).")
ARCH_NOTE = " With --init-from a language model: its value (give none, or the same)."


def _opt(help: str, *names: str, **kw):
    return typer.Option(*names, help=help, **kw)


@train_app.command("classify")
@train_options
def train_classify(
    train_file: Annotated[Optional[str], typer.Argument(
        metavar="TRAIN", help="Labelled training examples ('-' or nothing: stdin). Not needed with --resume.",
        show_default=False)] = None,
    valid: Annotated[Optional[Path], _opt("Labelled validation examples (model selection, early stopping).",
                                          "--valid", show_default=False)] = None,
    valid_fraction: Annotated[float, _opt("Without --valid: hold out this fraction of the examples (at most "
                                          "5000), chosen at random with a fixed seed.", "--valid-fraction")] = 0.1,
    format: FormatOpt = "auto",
    text_column: Annotated[Optional[str], _opt("tsv/csv: the text column's name (default: text, sentence, "
                                               "review, question, ...).", "--text-column", show_default=False)] = None,
    label_column: Annotated[Optional[str], _opt("tsv/csv: the label column's name (default: label, class, "
                                                "category, ...); several labels in it: comma-separated.",
                                                "--label-column", show_default=False)] = None,
    name: Annotated[Optional[str], _opt("Publish to the registry under this name.", "--name",
                                        show_default=False)] = None,
    output: Annotated[Optional[Path], _opt("Write the bundle to this directory instead of the registry.",
                                           "-o", "--output", show_default=False)] = None,
    tokenizer: Annotated[Optional[str], _opt("Tokenizer (registry reference or bundle); default: train one on the "
                                             "training text.", "-t", "--tokenizer", show_default=False)] = None,
    vocab_size: Annotated[int, _opt("Vocabulary of the tokenizer trained on the fly.", "--vocab-size")] = 8000,
    model_type: Annotated[ModelType, _opt(MODEL_TYPE_HELP, "--model-type")] = "bpe",
    cell: Annotated[Optional[Cell], _opt(CELL_HELP.rstrip(".") + " (default: lstm)." + ARCH_NOTE, "--cell",
                                         show_default=False)] = None,
    layers: Annotated[Optional[int], _opt("Stacked recurrent layers (default: 1)." + ARCH_NOTE, "--layers",
                                          show_default=False)] = None,
    embed_dim: Annotated[Optional[int], _opt("Embedding size (default: 256)." + ARCH_NOTE, "--embed-dim",
                                             show_default=False)] = None,
    hidden_dim: Annotated[Optional[int], _opt("Recurrent state size; bidirectional: each direction half "
                                              "(default: 256)." + ARCH_NOTE, "--hidden-dim", show_default=False)] = None,
    bidirectional: Annotated[Optional[bool], _opt("Read each text both ways (default: bidirectional). A language "
                                                  "model gives a unidirectional encoder.",
                                                  "--bidirectional/--unidirectional", show_default=False)] = None,
    pooling: Annotated[Literal["last", "mean", "max", "attention"], _opt(
        "Sentence vector from the RNN's outputs: last (the final state), mean, max, or attention (learned "
        "weights).", "--pooling")] = "max",
    dropout: Annotated[float, _opt("Dropout on embeddings, between layers and on the sentence vector.",
                                   "--dropout")] = 0.3,
    mlp_dim: Annotated[int, _opt("A hidden layer of this size before the output layer (0: none).",
                                 "--mlp-dim")] = 0,
    max_len: Annotated[int, _opt("Read at most this many pieces of each text.", "--max-len")] = 256,
    batch_size: Annotated[int, _opt("Examples per batch (of similar length).", "--batch-size")] = 32,
    class_weights: Annotated[Literal["none", "balanced"], _opt(
        "balanced: weight each class by n / (classes x its count) in the loss, for imbalanced data.",
        "--class-weights")] = "none",
    threshold: Annotated[float, _opt("Multi-label models: predict every class whose probability reaches this.",
                                     "--threshold")] = 0.5,
    select: SelectOpt = "accuracy",
    pretrained_lr_scale: Annotated[float, _opt(
        "--init-from a language model: its layers learn at this fraction of --lr (discriminative rates).",
        "--pretrained-lr-scale")] = 1.0,
    unfreeze_every: Annotated[int, _opt(
        "--init-from a language model: hold its layers still at first, and unfreeze one every N steps, top "
        "layer first, embeddings last (gradual unfreezing); 0: all train from the start.", "--unfreeze-every")] = 0,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    *,
    train: TrainOptions,
) -> None:
    """Train an RNN text classifier; publish it (--name) or write it (-o DIR).

    Several labels on one example make a multi-label model (sigmoid outputs, --threshold).
    --init-from takes a classifier (warm start) or a language model with the same tokenizer (its
    embeddings and recurrent layers start the classifier, ULMFiT-style). Validation reports loss,
    accuracy and macro-F1.
    """
    from rnntool.kinds.classifier.train import ClassifyRunSpec

    def new_spec() -> ClassifyRunSpec:
        if train_file is None and stdin_is_tty():
            raise UsageError("no training data: give a labelled file, or pipe examples into stdin")
        given = dict(cell=cell, layers=layers, embed_dim=embed_dim, hidden_dim=hidden_dim, bidirectional=bidirectional)
        model = {k: v for k, v in given.items() if v is not None}
        model.update(pooling=pooling, dropout=dropout, mlp_dim=mlp_dim)
        return ClassifyRunSpec(
            train=train_file or "-", valid=str(valid) if valid else None, valid_fraction=valid_fraction,
            format=check_format(format, LABELLED_FORMATS), text_column=text_column, label_column=label_column, name=name,
            output=str(output.resolve()) if output else None, model=model, tokenizer=tokenizer,
            vocab_size=vocab_size, model_type=model_type, max_len=max_len, batch_size=batch_size,
            class_weights=class_weights, threshold=threshold, select=check_select(select, SELECTS).replace("-", "_"),
            pretrained_lr_scale=pretrained_lr_scale, unfreeze_every=unfreeze_every, on_bad_utf8=on_bad_utf8,
        ).check()

    train_command("classifier", train, registry, json_out, new_spec=new_spec,
                  given_on_resume=any(v is not None for v in (train_file, valid, name, output)),
                  what_to_drop="the data files, --name and -o",
                  config_overrides=lambda spec: {"best_metric": spec.select, "best_mode": "max"})
