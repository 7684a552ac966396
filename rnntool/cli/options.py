"""Option types shared by several commands (same flag, same help, everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

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
    typer.Option("-m", "--model", help="Model: NAME, NAME@VERSION, NAME@ALIAS or a bundle directory."),
]
