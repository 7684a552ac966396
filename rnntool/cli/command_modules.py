"""Which module registers each command, so that a command line imports only the modules it runs.

Command modules register their commands on the groups of rnntool.cli.app when imported. Importing all of
them costs about a third of `rnntool --help`'s start-up (bench/startup.py); a command needs only its own.
``COMMANDS`` is that table, and tests/cli/test_command_modules.py checks it against the commands the
modules really register.

- ``rnntool CMD ...`` imports CMD's module; ``rnntool GROUP SUB ...`` SUB's;
- ``rnntool GROUP`` (or ``--help``, or an unknown SUB) imports every module of GROUP;
- ``rnntool`` / ``rnntool --help`` imports the modules of the top-level commands (the groups' help is in
  rnntool.cli.app); ``rnntool --version`` none;
- an unknown command, or ``--`` before the command, imports them all (click's error then knows every name).

Help lists a group's commands in the order of ``COMMANDS``, whatever order their modules were imported in
(in one process, tests and wrappers call main() for one command after another).
"""

import importlib

# (group, command) or (command,) -> the module under rnntool.cli that registers it; in the order help lists them
# (the groups in the order rnntool.cli.app adds them)
COMMANDS: dict[tuple[str, ...], str] = {
    ("classify",): "classify",
    ("completions",): "completions_command",
    ("embed",): "embed",
    ("generate",): "generate",
    ("tag",): "tag",
    ("translate",): "translate",
    ("neighbors",): "vectors",
    **{("models", name): "models" for name in ("list", "show", "alias", "rm", "gc", "path", "verify", "export",
                                                "import", "average", "shortlist", "vectors")},
    ("tokenize", "train"): "tokenize",
    ("tokenize", "encode"): "tokenize",
    ("tokenize", "vocab"): "tokenize",
    ("tokenize", "decode"): "tokenize",
    ("train", "classify"): "train_classify",
    ("train", "lm"): "train_lm",
    ("train", "tag"): "train_tag",
    ("train", "word2vec"): "train_word2vec",
    ("train", "translate"): "train_translate",
    ("evaluate", "bleu"): "bleu",
    ("evaluate", "classification"): "classify",
    ("evaluate", "perplexity"): "perplexity",
    ("evaluate", "tags"): "tag",
    ("evaluate", "word-pairs"): "vectors",
    ("evaluate", "analogies"): "vectors",
}

MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))  # each once, in table order
GROUPS = frozenset(path[0] for path in COMMANDS if len(path) == 2)
_EVERY = object()  # _words' answer when the command cannot be told without click: import every module
_NONE = object()  # ... when none is needed (--version)


def _words(argv: list[str]):
    """The command words of ``argv`` (at most two: a group and its command), _EVERY or _NONE. Root and
    group options (``--version``, ``--debug``) take no values, so every other word before them is a command word;
    a help option ends them (it shows the help of the words before it, listing all their commands)."""
    words: list[str] = []
    for arg in argv:
        if arg in ("-h", "--help") or len(words) == 2:
            break
        if arg == "--":
            if not words or words[0] in GROUPS:  # click reads the next word as a command: leave it to click
                return _EVERY
            break  # the command's own arguments follow
        if not arg.startswith("-"):
            words.append(arg)
        elif words and words[0] not in GROUPS:  # the command's own options: its arguments may follow
            break
        elif not words and arg == "--version":  # eager: prints the version before any command is looked up
            return _NONE
    return words


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs (see the module docstring), in table order."""
    words = _words(argv)
    if words is _EVERY:
        return MODULES
    if words is _NONE:
        return ()
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
    _import(modules_for(argv))


def import_all_commands() -> None:
    """Register every command (help pages, completions, the command tree as data)."""
    _import(MODULES)


def _import(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(f"rnntool.cli.{module}")
    _list_in_table_order()


def _list_in_table_order() -> None:
    """Put every group's registered commands in the order of COMMANDS (typer lists them as registered)."""
    from rnntool.cli.app import app

    rank = {path: i for i, path in enumerate(COMMANDS)}
    app.registered_commands.sort(key=lambda info: rank.get((info.name,), len(rank)))
    for group in app.registered_groups:
        group.typer_instance.registered_commands.sort(key=lambda info: rank.get((group.name, info.name), len(rank)))
