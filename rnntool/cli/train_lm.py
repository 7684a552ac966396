"""`rnntool train lm`."""


from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from rnntool.cli.app import train_app
from rnntool.cli.options import JsonOpt, OnBadUtf8Opt, RegistryOpt, stdin_is_tty
from rnntool.cli.train_command import train_command
from rnntool.cli.train_options import CELL_HELP, MODEL_TYPE_HELP, Cell, ModelType, TrainOptions, train_options
from rnntool.errors import UsageError

MODE_HELP = (
    "stream: lines joined by <eos> into --batch-size parallel streams, truncated BPTT of --bptt steps "
    "with the state carried across segments; sentence: each line alone (<bos> ... <eos>), padded and "
    "batched by length."
)


@train_app.command("lm")
@train_options
def train_lm(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Training text files ('-' or nothing: stdin). Not needed with --resume.", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Publish to the registry under this name.",
                                                show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the bundle to this directory "
                                                   "instead of the registry.", show_default=False)] = None,
    tokenizer: Annotated[Optional[str], typer.Option("-t", "--tokenizer", help="Tokenizer to use (registry "
                         "reference or bundle); default: train one on the input.", show_default=False)] = None,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Vocabulary of the tokenizer trained on the fly.")] = 8000,
    model_type: Annotated[ModelType, typer.Option("--model-type", help=MODEL_TYPE_HELP)] = "bpe",
    mode: Annotated[Literal["stream", "sentence"], typer.Option("--mode", help=MODE_HELP)] = "stream",
    cell: Annotated[Cell, typer.Option("--cell", help=CELL_HELP)] = "lstm",
    layers: Annotated[int, typer.Option("--layers", help="Stacked recurrent layers.")] = 2,
    embed_dim: Annotated[int, typer.Option("--embed-dim", help="Embedding size.")] = 256,
    hidden_dim: Annotated[int, typer.Option("--hidden-dim", help="Recurrent state size.")] = 256,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout on embeddings, between layers and before "
                                           "the output (each can be set alone below).")] = 0.2,
    embed_dropout: Annotated[Optional[float], typer.Option("--embed-dropout", help="Dropout on the embeddings.",
                                                           show_default=False)] = None,
    hidden_dropout: Annotated[Optional[float], typer.Option("--hidden-dropout", help="Dropout between layers.",
                                                            show_default=False)] = None,
    output_dropout: Annotated[Optional[float], typer.Option("--output-dropout", help="Dropout before the "
                                                            "output projection.", show_default=False)] = None,
    weight_drop: Annotated[float, typer.Option("--weight-drop", help="DropConnect on the recurrent weights "
                                               "(AWD-LSTM): a fresh mask per batch, off at evaluation.")] = 0.0,
    locked_dropout: Annotated[bool, typer.Option(
        "--locked-dropout", help="One dropout mask per sequence for all its time steps (variational dropout, "
        "AWD-LSTM), on the embeddings, between layers and before the output; off: a new mask at every step.")
    ] = False,
    tie_embeddings: Annotated[bool, typer.Option(
        "--tie-embeddings/--no-tie-embeddings",
        help="Share the embedding matrix with the output layer (through a projection when --embed-dim differs "
             "from --hidden-dim), as train translate does.")] = True,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Parallel streams (stream mode) or lines per "
                                            "batch (sentence mode).")] = 32,
    bptt: Annotated[int, typer.Option("--bptt", help="Time steps per segment in stream mode.")] = 64,
    valid: Annotated[Optional[Path], typer.Option("--valid", help="Validation text file.", show_default=False)] = None,
    valid_fraction: Annotated[float, typer.Option("--valid-fraction", help="Without --valid: hold out this "
                                                  "fraction of the lines, from the end.")] = 0.05,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Token cache directory (default: "
                                                      "cache/ in the registry).", show_default=False)] = None,
    json_out: JsonOpt = False,
    registry: RegistryOpt = None,
    on_bad_utf8: OnBadUtf8Opt = "strict",
    *,
    train: TrainOptions,
) -> None:
    """Train an RNN language model and publish it (--name) or write it as a bundle (-o DIR).

    The validation metrics published with the model: loss (nats/token), ppl and bpc (bits per
    character: total NLL in bits over the characters of the validation text, one newline per line).
    """
    from rnntool.kinds.lm.train import LMRunSpec

    def new_spec() -> LMRunSpec:
        if not inputs and stdin_is_tty():
            raise UsageError("no training data: give text files, or pipe text into stdin")
        drop = lambda v: dropout if v is None else v  # noqa: E731
        return LMRunSpec(
            inputs=list(inputs or ["-"]), name=name, output=str(output.resolve()) if output else None,
            model=dict(cell=cell, layers=layers, embed_dim=embed_dim, hidden_dim=hidden_dim,
                       embed_dropout=drop(embed_dropout), hidden_dropout=drop(hidden_dropout),
                       output_dropout=drop(output_dropout), tie_embeddings=tie_embeddings,
                       **({"weight_drop": weight_drop} if weight_drop else {}),  # off: as before it existed
                       **({"locked_dropout": True} if locked_dropout else {})),
            mode=mode, batch_size=batch_size, bptt=bptt, valid=str(valid) if valid else None,
            valid_fraction=valid_fraction, tokenizer=tokenizer, vocab_size=vocab_size, model_type=model_type,
            cache_dir=str(cache_dir) if cache_dir else None, on_bad_utf8=on_bad_utf8,
        ).check()

    train_command("lm", train, registry, json_out, new_spec=new_spec, given_on_resume=bool(inputs or name or output),
                  what_to_drop="the inputs, --name and -o")
