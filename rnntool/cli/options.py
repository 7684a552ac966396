"""Option types shared by several commands (same flag, same help, everywhere)."""


import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

from rnntool.errors import UsageError
from rnntool.kinds.catalog import SIDE_FILES
from rnntool.layers.precision import INFERENCE_PRECISIONS, PRECISIONS
from rnntool.runtime import DEVICES

if TYPE_CHECKING:
    from rnntool.registry.store import Registry


def open_registry(registry: Optional[Path]) -> "Registry":
    """The registry a command works on (``--registry`` > $RNNTOOL_HOME > user data dir); while it
    waits for another process's registry lock it says whom it waits for, as a warning."""
    from rnntool.cli.console import console
    from rnntool.registry.store import Registry

    reg = Registry.open(registry)
    reg.on_wait = console.warn
    return reg


RegistryOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--registry",
        envvar="RNNTOOL_HOME",
        help="Registry directory (default: $RNNTOOL_HOME, else the user data dir).",
        show_envvar=False,
    ),
]
DeviceOpt = Annotated[
    Literal[DEVICES], typer.Option("--device", help="Where to run: auto (a GPU if there is one), cpu or cuda.")
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Only errors and warnings on stderr.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
OnBadUtf8Opt = Annotated[
    Literal["strict", "replace"],
    typer.Option(
        "--on-bad-utf8",
        help="What to do with invalid UTF-8 input: 'strict' (error naming file:line) or 'replace'.",
    ),
]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("-o", "--output", help="Write to this file (atomically) instead of stdout."),
]
InputArg = Annotated[
    Optional[str], typer.Argument(help="Input text file; '-' or nothing reads stdin.", show_default=False)
]
ModelRefOpt = Annotated[
    str,
    typer.Option("-m", "--model", metavar="MODEL", help="Model: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory."),
]


# A translation model's two sides (src, tgt): one set of choices for --side wherever a command takes it.
Side = Enum("Side", {side: side for side in SIDE_FILES}, type=str)


def side_option(help: str):
    """``--side src|tgt``, with what the side chooses in this command."""
    return Annotated[Optional[Side], typer.Option("--side", help=help, show_default=False)]


def stdin_is_tty() -> bool:
    """Whether a person types the input (stdin is a terminal)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def batch_size_option(what: str, default: int):
    """``--batch-size`` of a line-in/line-out command: ``what`` (e.g. "Lines read and translated") go through
    the model together; with no value, 1 when a person types the input (each line is answered at once),
    else ``default``. Resolve it with :func:`line_batch_size`."""
    return Annotated[Optional[int], typer.Option(
        "--batch-size", metavar="N", show_default=False,
        help=f"{what} together (default: 1 when stdin is a terminal, so each line is answered at once; "
             f"else {default}).")]


def line_batch_size(given: Optional[int], input: Optional[str], default: int) -> int:
    """The batch size of a line-in/line-out command: --batch-size, else 1 when a person types the input
    (stdin is a terminal), else ``default``."""
    if given is not None:
        if given < 1:
            raise UsageError(f"--batch-size must be at least 1 (got {given})")
        return given
    return 1 if input in (None, "-") and stdin_is_tty() else default


BeamOpt = Annotated[int, typer.Option(
    "--beam", "-b", min=1, metavar="K", help="Beam search with K hypotheses (1 = greedy).")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", min=1, metavar="N", show_default=False, help="CPU threads for torch (default: torch's choice).")]


def set_threads(threads: Optional[int]) -> None:
    """Apply --threads (torch is imported only when it is given)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


# An option whose commands each accept part of one shared set of choices keeps the whole set (one set of
# choices per option name: docs/cli.md), says in its help which part this command takes, and refuses
# the rest in one line (check_offered).
def subset_option(option: str, choices: tuple[str, ...], offers: tuple[str, ...], help: str, metavar: str):
    """``option`` with the choices ``choices``, of which this command takes ``offers``."""
    return Annotated[Literal[choices], typer.Option(
        option, metavar=metavar, help=f"{help} This command takes: {', '.join(offers)}.")]


def check_offered(option: str, value: str, offers: tuple[str, ...], what: str = "this command takes") -> str:
    if value not in offers:
        raise UsageError(f"{option} {value}: {what} {', '.join(offers)}")
    return value


InferencePrecisionOpt = subset_option(
    "--precision", PRECISIONS, INFERENCE_PRECISIONS,
    "Number format to run the model in: fp32 (as trained); bf16; fp16 (GPU only); int8 (dynamic "
    "quantization of the linear and LSTM/GRU layers, CPU only). Not bit-for-bit fp32: "
    "bench/RESULTS.md gives each one's speed and BLEU.", "P")


# Every reader of labelled or tagged data names its formats from this one list.
DATA_FORMATS = ("auto", "lines", "fasttext", "tsv", "csv", "tab", "conll", "conllu")


def format_option(reads: tuple[str, ...], help: str):
    """``--format`` of a command that reads the formats ``reads`` (a subset of DATA_FORMATS)."""
    return subset_option("--format", DATA_FORMATS, reads, help, "FORMAT")


def check_format(value: str, reads: tuple[str, ...]) -> str:
    return check_offered("--format", value, reads, "this command reads")


# Sampling, alike in `generate` and `translate` (back-translation)
TemperatureOpt = Annotated[float, typer.Option("--temperature", min=0.0,
                                               help="Sampling temperature (0 = greedy).")]
TopKOpt = Annotated[int, typer.Option("--top-k", min=0, help="Sample among the k likeliest tokens (0 = all).")]
TopPOpt = Annotated[float, typer.Option("--top-p", min=0.0, max=1.0,
                                        help="Nucleus sampling: the smallest set with this probability.")]
