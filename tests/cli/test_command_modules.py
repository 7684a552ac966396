"""A command line imports only the command modules it runs: the table says which module registers each
command, and must match what the modules really register."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnntool.cli.command_modules import COMMANDS, MODULES, import_all_commands, modules_for


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


def test_the_table_names_every_command_and_its_module():
    assert registered_commands() == COMMANDS
    assert sorted(MODULES) == sorted(set(COMMANDS.values()))


@pytest.mark.parametrize("argv, modules", [
    (["train", "lm", "data.txt", "--hidden-dim", "8"], ("train_lm",)),
    (["--debug", "train", "translate", "--help"], ("train_translate",)),
    (["evaluate", "bleu", "-r", "ref.txt"], ("bleu",)),
    (["models", "list", "--json"], ("models",)),
    (["generate", "-m", "lm", "--help"], ("generate",)),
    (["neighbors", "-m", "vectors", "king"], ("vectors",)),
    (["translate", "--", "models"], ("translate",)),  # later words are the command's own
    (["--help"], ("classify", "completions_command", "embed", "generate", "tag", "translate", "vectors")),
    ([], ("classify", "completions_command", "embed", "generate", "tag", "translate", "vectors")),
    (["evaluate"], ("bleu", "classify", "perplexity", "tag", "vectors")),
    (["train", "--help"], ("train_classify", "train_lm", "train_tag", "train_word2vec", "train_translate")),
    (["train", "nosuch"], ("train_classify", "train_lm", "train_tag", "train_word2vec", "train_translate")),
    # a help option shows the help of the words before it, which lists all their commands
    (["-h", "train", "lm"], ("classify", "completions_command", "embed", "generate", "tag", "translate", "vectors")),
    (["train", "--help", "lm"], ("train_classify", "train_lm", "train_tag", "train_word2vec", "train_translate")),
    (["nosuch", "lm"], MODULES),
])
def test_a_command_line_imports_only_the_modules_it_runs(argv, modules):
    assert modules_for(argv) == modules


def test_help_imports_no_group_command_modules():
    code = (
        "import sys\n"
        "from rnntool.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('rnntool.cli.train', 'rnntool.cli.models',"
        " 'rnntool.registry.store')))\n"
        "assert not loaded, loaded\n"
        "assert rc == 0, rc\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "models" in r.stdout, r.stdout  # the groups are still listed
