"""`rnntool completions SHELL`: print a static completion script (rnntool/cli/completions.py makes them)."""


import sys
from typing import Annotated, Literal

import typer

from rnntool.cli.app import app


@app.command("completions")
def completions(
    shell: Annotated[Literal["bash", "zsh", "fish"], typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print a shell's completion script (static: TAB never starts Python).

    It completes commands, options, choices and the model names in the registry.

    bash: rnntool completions bash > ~/.local/share/bash-completion/completions/rnntool
    zsh:  rnntool completions zsh > DIR/_rnntool   (DIR on $fpath)
    fish: rnntool completions fish > ~/.config/fish/completions/rnntool.fish
    """
    from rnntool.cli.completions import SHELLS, render_all

    sys.stdout.write(render_all()[SHELLS[shell]])
