"""The typer application and its command groups. Command modules register themselves on these.

Command modules must not import torch (or modules that do) at import time: `rnntool --help` and
tab completion stay fast only if heavy imports happen inside the command functions.
"""


import inspect
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
    help="Recurrent neural models of text from the command line: language models, translation, classification, "
    "tagging.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings=CONTEXT,
    add_completion=False,  # `rnntool completions SHELL` prints static scripts (TAB never starts Python)
)
models_app = _typer("Inspect and manage the model registry (a plain directory).")
tokenize_app = _typer("Train SentencePiece tokenizers; encode and decode text with them.")
train_app = _typer("Train a model and publish it to the registry.")
evaluate_app = _typer("Score models and outputs: perplexity, BLEU/chrF/TER, classification and tagging reports, "
                       "word vectors (word pairs, analogies).")

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


# -- the command tree, with help that reads like a Unix tool's ---------------------------------------
_ARGUMENT_METAVARS = {"input": "FILE", "files": "FILE", "inputs": "FILE"}


def build_command():
    """The click command tree of ``app`` as `rnntool` runs it. Help shows what a user types: a flag
    shows no type (typer would print ``<bool>``), an argument its METAVAR (not ``<str>`` or
    ``<list[str]>``), a text option TEXT; choices stay ``<a|b|c>``, numbers ``<int>``/``<float>``."""
    cmd = typer.main.get_command(app)
    _tidy_help(cmd)
    return cmd


def _unwrap(text: str) -> str:
    """A docstring's paragraphs as single lines (rich wraps them to the terminal; kept as written, every
    source line break would also break the help), but indented lines (examples) as they are."""
    paragraphs = []
    for para in inspect.cleandoc(text).split("\n\n"):
        lines = para.splitlines()
        paragraphs.append(para if any(line.startswith(" ") for line in lines) else " ".join(lines))
    return "\n\n".join(paragraphs)


def _tidy_help(cmd) -> None:
    if getattr(cmd, "help", None):
        cmd.help = _unwrap(cmd.help)
    render = cmd.format_help

    def format_help(ctx, formatter):
        _never_cut_help()
        return render(ctx, formatter)

    cmd.format_help = format_help
    help_option = cmd.get_help_option

    def get_help_option(ctx):
        option = help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""  # a flag
        return option

    cmd.get_help_option = get_help_option
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "argument":
            if param.metavar is None:
                param.metavar = _ARGUMENT_METAVARS.get(param.name, param.name.upper())
            param.display_type_rich = lambda ctx: None  # the name says what it is
        elif getattr(param, "is_flag", False) or getattr(param, "count", False):
            if param.metavar is None:
                param.metavar = ""
        elif param.metavar is None:
            desc = getattr(param, "type_descriptor", None)
            if desc is not None and not desc.is_choice and getattr(desc, "annotation", None) is str:
                param.metavar = "TEXT"
    for sub in (getattr(cmd, "commands", None) or {}).values():
        _tidy_help(sub)


def _never_cut_help() -> None:
    """Help is never cut with '…' (rich's tables do that to a column too narrow for it, e.g. piped at 80
    columns): option names keep their width and the help text wraps, an unbreakable word folds."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.table import Table
    from typer import rich_utils

    if getattr(rich_utils.Table, "never_cuts", False):
        return

    class FoldingTable(Table):
        never_cuts = True

        def add_row(self, *renderables, **kw):
            # typer's option tables add rows without columns: [required,] names..., type, help. Names keep
            # their width; the type and the help wrap, and an unbreakable word folds.
            while len(self.columns) < len(renderables):
                names = len(self.columns) < len(renderables) - 2
                self.add_column(overflow="fold", no_wrap=names)
            cells = []
            for cell in renderables:
                if isinstance(cell, Columns):  # the help and its [default: ...]: rich's Columns cut with '…'
                    cell = Group(*cell.renderables)
                for text in getattr(cell, "renderables", None) or [cell]:
                    if getattr(text, "overflow", None) is not None:
                        text.overflow = "fold"
                cells.append(cell)
            super().add_row(*cells, **kw)

    rich_utils.Table = FoldingTable
