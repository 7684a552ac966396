"""The typer application and its command groups. Command modules register themselves on these.

Command modules must not import torch (or modules that do) at import time: `rnntool --help` and
tab completion stay fast only if heavy imports happen inside the command functions.
"""

from __future__ import annotations

from typing import Annotated

import typer

try:  # typer >= 0.25 vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as click_exceptions  # noqa: F401 (re-exported)
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # noqa: F401

from rnntool import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _typer(help: str) -> typer.Typer:
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        context_settings=CONTEXT,
        add_completion=False,
    )


app = typer.Typer(
    help="Recurrent neural language and translation models from the command line.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings=CONTEXT,
    add_completion=True,
)
models_app = _typer("Inspect and manage the model registry (a plain directory).")
tokenize_app = _typer("Train SentencePiece tokenizers; encode and decode text with them.")
train_app = _typer("Train a model and publish it to the registry.")
evaluate_app = _typer("Score models: perplexity for language models, BLEU/chrF/TER for translations.")

app.add_typer(models_app, name="models")
app.add_typer(tokenize_app, name="tokenize")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnntool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", envvar="RNNTOOL_DEBUG", help="Show a full traceback on errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """rnntool: Unix-style tools for RNN language models and translation."""
