"""Which module registers each command, so that a command line imports only the modules it runs.

Command modules register their commands on the groups of rnntool.cli.app when imported. Importing all of
them costs about a third of `rnntool --help`'s start-up (the registry, training options, tokenizer
modules they pull in); a command needs only its own. ``COMMANDS`` is that table, and
tests/cli/test_command_modules.py checks it against the commands the modules really register.

- ``rnntool CMD ...`` imports CMD's module; ``rnntool GROUP SUB ...`` SUB's;
- ``rnntool GROUP`` (or ``--help``, or an unknown SUB) imports every module of GROUP;
- ``rnntool`` / ``rnntool --help`` imports the modules of the top-level commands (the groups' help is in
  rnntool.cli.app);
- an unknown command imports them all (click's error then knows every name).
"""

import importlib

# (group, command) or (command,) -> the module under rnntool.cli that registers it
COMMANDS: dict[tuple[str, ...], str] = {
    ("classify",): "classify",
    ("completions",): "completions_command",
    ("embed",): "embed",
    ("generate",): "generate",
    ("neighbors",): "vectors",
    ("tag",): "tag",
    ("translate",): "translate",
    ("evaluate", "analogies"): "vectors",
    ("evaluate", "bleu"): "bleu",
    ("evaluate", "classification"): "classify",
    ("evaluate", "perplexity"): "perplexity",
    ("evaluate", "tags"): "tag",
    ("evaluate", "word-pairs"): "vectors",
    **{("models", name): "models" for name in ("list", "show", "alias", "rm", "gc", "path", "verify", "export",
                                                "import", "average", "shortlist", "vectors")},
    ("tokenize", "train"): "tokenize",
    ("tokenize", "encode"): "tokenize",
    ("tokenize", "vocab"): "tokenize",
    ("tokenize", "decode"): "tokenize",
    ("train", "classify"): "train_classify",
    ("train", "lm"): "train_lm",
    ("train", "tag"): "train_tag",
    ("train", "translate"): "train_translate",
    ("train", "word2vec"): "train_word2vec",
}

# every module, in import order: help lists a group's commands in the order they were registered
MODULES: tuple[str, ...] = ("bleu", "classify", "completions_command", "embed", "generate", "models", "perplexity",
                            "tag", "tokenize", "train_classify", "train_lm", "train_tag", "train_word2vec",
                            "train_translate", "translate", "vectors")
GROUPS = frozenset(path[0] for path in COMMANDS if len(path) == 2)


def _words(argv: list[str]) -> list[str]:
    """The command words of ``argv``: at most two, a group and its command. Root and group options
    (``--version``, ``--debug``) take no values, so every other word before them is a command word; a help
    option ends them (it shows the help of the words before it, listing all their commands)."""
    words = []
    for arg in argv:
        if arg in ("--", "-h", "--help") or len(words) == 2:  # help shows the words before it: `rnntool -h train`
            break
        if not arg.startswith("-"):
            words.append(arg)
        elif words and words[0] not in GROUPS:  # the command's own options: its arguments may follow
            break
    return words


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs (see the module docstring), in import order."""
    words = _words(argv)
    if not words:
        wanted = {module for path, module in COMMANDS.items() if len(path) == 1}
    elif (words[0],) in COMMANDS:
        wanted = {COMMANDS[(words[0],)]}
    elif words[0] in GROUPS:
        wanted = ({COMMANDS[tuple(words)]} if tuple(words) in COMMANDS
                  else {module for path, module in COMMANDS.items() if path[0] == words[0]})
    else:
        wanted = set(MODULES)
    return tuple(m for m in MODULES if m in wanted)


def import_commands(argv: list[str]) -> None:
    """Register the commands ``argv`` needs on rnntool.cli.app's groups."""
    for module in modules_for(argv):
        importlib.import_module(f"rnntool.cli.{module}")


def import_all_commands() -> None:
    """Register every command (help pages, completions, the command tree as data)."""
    for module in MODULES:
        importlib.import_module(f"rnntool.cli.{module}")
