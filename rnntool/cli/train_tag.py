"""`rnntool train tag`."""


from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import train_app
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, RegistryOpt, check_format, format_option, stdin_is_tty
from rnntool.cli.train_command import train_command
from rnntool.cli.train_options import CELL_HELP, Cell, TrainOptions, check_select, select_option, train_options
from rnntool.cli.tag import SCHEME_CHOICES, TAGGED_FORMATS
from rnntool.errors import UsageError

FormatOpt = format_option(TAGGED_FORMATS, "conll: token first, tag last (or --tag-column), blank line between "
                                          "sentences; conllu: Universal Dependencies; auto: detected.")
SELECTS = ("accuracy", "span-f1")
SelectOpt = select_option(SELECTS, "Validation metric that picks the published weights (and --promote's test).")


def _opt(help: str, *names: str, **kw):
    return typer.Option(*names, help=help, **kw)


@train_app.command("tag")
@train_options
def train_tag(
    train_file: Annotated[Optional[str], typer.Argument(
        metavar="TRAIN", help="Tagged training sentences, CoNLL or CoNLL-U ('-' or nothing: stdin). Not needed "
                              "with --resume.", show_default=False)] = None,
    valid: Annotated[Optional[Path], _opt("Tagged validation sentences (model selection, early stopping).",
                                          "--valid", show_default=False)] = None,
    valid_fraction: Annotated[float, _opt("Without --valid: hold out this fraction of the sentences, chosen at "
                                          "random with a fixed seed.", "--valid-fraction")] = 0.1,
    format: FormatOpt = "auto",
    tag_column: Annotated[Optional[str], _opt("CoNLL: the tag's column, counted from 1 (default: the last); "
                                              "CoNLL-U: upos, xpos, feats or deprel (default: upos).",
                                              "--tag-column", show_default=False)] = None,
    name: Annotated[Optional[str], _opt("Publish to the registry under this name.", "--name",
                                        show_default=False)] = None,
    output: Annotated[Optional[Path], _opt("Write the bundle to this directory instead of the registry.",
                                           "-o", "--output", show_default=False)] = None,
    min_count: Annotated[int, _opt("Words seen fewer times in training are unknown (the character encoder still "
                                   "spells them).", "--min-count")] = 1,
    lowercase: Annotated[bool, _opt("Look words up lower-cased (characters keep their case).",
                                    "--lowercase")] = False,
    cell: Annotated[Cell, _opt(CELL_HELP, "--cell")] = "lstm",
    layers: Annotated[int, _opt("Stacked recurrent layers.", "--layers")] = 2,
    embed_dim: Annotated[int, _opt("Word embedding size.", "--embed-dim")] = 100,
    char_hidden: Annotated[int, _opt("Character BiLSTM output per word (0: no character encoder).",
                                     "--char-hidden")] = 64,
    hidden_dim: Annotated[int, _opt("Recurrent state size; bidirectional: each direction half.",
                                    "--hidden-dim")] = 256,
    bidirectional: Annotated[bool, _opt("Read each sentence both ways.", "--bidirectional/--unidirectional")] = True,
    dropout: Annotated[float, _opt("Dropout on the word features, between layers and before the output.",
                                   "--dropout")] = 0.33,
    crf: Annotated[bool, _opt("A CRF output layer (Viterbi decoding; BIO tags: no impossible transitions).",
                              "--crf")] = False,
    scheme: Annotated[Literal[SCHEME_CHOICES], _opt(
        "How BIO tags form spans (span F1, the CRF's constraints); auto: iob2 or iobes from the tags, none for "
        "tags like UPOS.", "--scheme")] = "auto",
    max_len: Annotated[int, _opt("Longest sentence in tokens (see --on-long).", "--max-len")] = 200,
    on_long: Annotated[Literal["error", "split"], _opt("A longer sentence: split it into parts, or stop with an "
                                                       "error naming its line.", "--on-long")] = "split",
    batch_size: Annotated[int, _opt("Sentences per batch (of similar length).", "--batch-size")] = 32,
    select: SelectOpt = "accuracy",
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    *,
    train: TrainOptions,
) -> None:
    """Train an RNN sequence tagger (POS, NER); publish it (--name) or write it (-o DIR).

    Words are read as embeddings plus a character BiLSTM (unseen words still get a vector), then a
    stacked bidirectional RNN gives each token a tag (softmax, or a CRF with --crf). Validation reports
    loss, token accuracy and, for BIO tags, span F1.
    """
    from rnntool.kinds.tagger.train import TagRunSpec

    def new_spec() -> TagRunSpec:
        if train_file is None and stdin_is_tty():
            raise UsageError("no training data: give a tagged file, or pipe CoNLL into stdin")
        return TagRunSpec(
            train=train_file or "-", valid=str(valid) if valid else None, valid_fraction=valid_fraction,
            format=check_format(format, TAGGED_FORMATS), tag_column=tag_column, name=name,
            output=str(output.resolve()) if output else None,
            model=dict(cell=cell, layers=layers, embed_dim=embed_dim, char_hidden=char_hidden, hidden_dim=hidden_dim,
                       bidirectional=bidirectional, dropout=dropout, crf=crf),
            min_count=min_count, lowercase=lowercase, max_len=max_len, on_long=on_long, batch_size=batch_size,
            scheme=scheme, select=check_select(select, SELECTS).replace("-", "_"), on_bad_utf8=on_bad_utf8,
        ).check()

    train_command("tagger", train, registry, json_out, new_spec=new_spec,
                  given_on_resume=any(v is not None for v in (train_file, valid, name, output)),
                  what_to_drop="the data files, --name and -o",
                  config_overrides=lambda spec: {"best_metric": spec.select, "best_mode": "max"})
