"""A command line imports only the command modules it runs: the table says which module registers each
command, and must match what the modules really register."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnntool.cli.command_modules import COMMANDS, GROUPS, MODULES, import_all_commands, modules_for

TOP_LEVEL = ("classify", "completions_command", "embed", "generate", "tag", "translate", "vectors")
TRAIN = ("train_classify", "train_lm", "train_tag", "train_word2vec", "train_translate")


def registered_commands() -> dict[tuple[str, ...], str]:
    """(group, command) or (command,) -> the module (under rnntool.cli) of every registered command."""
    from rnntool.cli.app import app

    import_all_commands()
    found = {}
    for info in app.registered_commands:
        found[(info.name,)] = info.callback.__module__.removeprefix("rnntool.cli.")
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            found[(group.name, info.name)] = info.callback.__module__.removeprefix("rnntool.cli.")
    return found


def test_the_table_names_every_command_and_its_module_in_help_order():
    assert list(registered_commands().items()) == list(COMMANDS.items())  # the same commands, the same order
    assert sorted(MODULES) == sorted(set(COMMANDS.values()))


@pytest.mark.parametrize("argv, modules", [
    (["train", "lm", "data.txt", "--hidden-dim", "8"], ("train_lm",)),
    (["--debug", "train", "translate", "--help"], ("train_translate",)),
    (["evaluate", "bleu", "-r", "ref.txt"], ("bleu",)),
    (["models", "list", "--json"], ("models",)),
    (["generate", "-m", "lm", "--help"], ("generate",)),
    (["neighbors", "-m", "vectors", "king"], ("vectors",)),
    (["translate", "--", "models"], ("translate",)),  # later words are the command's own
    (["--", "train", "lm"], MODULES),  # click reads a command after a root or group "--": left to it
    (["train", "--", "lm"], MODULES),
    (["--version"], ()),
    (["--debug", "--version", "train"], ()),
    (["--help", "--version"], TOP_LEVEL),
    (["--help"], TOP_LEVEL),
    ([], TOP_LEVEL),
    (["evaluate"], ("classify", "tag", "vectors", "bleu", "perplexity")),
    (["train", "--help"], TRAIN),
    (["train", "nosuch"], TRAIN),
    # a help option shows the help of the words before it, which lists all their commands
    (["-h", "train", "lm"], TOP_LEVEL),
    (["train", "--help", "lm"], TRAIN),
    (["nosuch", "lm"], MODULES),
])
def test_a_command_line_imports_only_the_modules_it_runs(argv, modules):
    assert modules_for(argv) == modules


HELP_AND_ERRORS = [
    [], ["--help"], ["-h", "train"], ["--version"], ["nosuch"], ["train", "nosuch"], ["--", "models", "list", "-h"],
    *([group, "--help"] for group in sorted(GROUPS)), ["train", "-h", "lm"],
    ["generate", "--help"], ["evaluate", "bleu", "--help"], ["models", "list", "--bad-option"],
]


def run_main(argv: list[str], everything: bool) -> tuple[int, str, str]:
    """`rnntool ARGV` in a fresh process, importing the command modules main() picks or all of them first."""
    code = ("import sys\n"
            + ("from rnntool.cli.command_modules import import_all_commands\nimport_all_commands()\n"
               if everything else "")
            + "from rnntool.cli import main\n"
            f"main({argv!r})\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"})
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("argv", HELP_AND_ERRORS, ids=lambda argv: " ".join(argv) or "(none)")
def test_help_and_errors_read_as_with_every_module_imported(argv):
    lazy = run_main(argv, everything=False)
    assert lazy == run_main(argv, everything=True)
    assert lazy[1] or lazy[2]
