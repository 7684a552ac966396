"""The consistency rules of docs/cli.md, checked over every command: a short option means one thing
everywhere, an option name has one set of choices everywhere, options with a closed set of values offer
it as choices, and help reads like a Unix tool's (no Python types, nothing cut with '…')."""

from __future__ import annotations

from collections import defaultdict

import pytest
from conftest import invoke

from rnntool.cli.completions import command_tree

# what each short option means, everywhere (docs/cli.md)
SHORT_OPTIONS = {"-h": "--help", "-m": "--model", "-o": "--output", "-q": "--quiet", "-t": "--tokenizer",
                 "-r": "--ref", "-n": {"--num-samples", "--nbest"}, "-k": "--top", "-b": "--beam", "-f": "--force"}
# options whose values are a closed set: they must offer it as choices (help, completion, one error)
CLOSED_SETS = ("--cell", "--attention", "--bridge", "--optimizer", "--schedule", "--precision", "--model-type",
               "--kind", "--device", "--format", "--select", "--scheme", "--on-bad-utf8", "--mode", "--pooling",
               "--output-format", "--input-format", "--normalization", "--class-weights", "--key", "--side",
               "--on-long")

TREE = command_tree()
COMMANDS = [c for c in TREE.walk() if not c.subcommands]


def _long(option) -> str:
    return next(n for n in option.names if n.startswith("--"))


def test_a_short_option_means_one_thing_everywhere():
    meanings = defaultdict(set)
    for c in TREE.walk():
        for o in c.options:
            for short in (n for n in o.names if not n.startswith("--")):
                meanings[short].add(_long(o))
    for short, longs in meanings.items():
        allowed = SHORT_OPTIONS.get(short)
        assert allowed is not None, f"{short} ({longs}) is not in docs/cli.md's table"
        allowed = {allowed} if isinstance(allowed, str) else allowed
        assert longs <= allowed, f"{short} means {sorted(longs)}; docs/cli.md says {sorted(allowed)}"
    assert "-v" not in meanings  # reserved: every Unix user reads it as verbose


def test_an_option_name_has_one_set_of_choices_everywhere():
    seen = defaultdict(dict)
    for c in TREE.walk():
        for o in c.options:
            if o.value == "choice" or not o.value:
                seen[_long(o)][c.path] = tuple(o.choices)
    for name, by_command in seen.items():
        assert len(set(by_command.values())) == 1, f"{name} has different choices: {by_command}"
    for name in CLOSED_SETS:
        if name in seen:
            assert all(by_command for by_command in seen[name].values()), f"{name} offers no choices"


@pytest.mark.parametrize("command", [c.path for c in TREE.walk()], ids=lambda p: p.replace(" ", "-"))
def test_help_reads_like_a_unix_tools_and_is_never_cut(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe gets
    r = invoke(*command.split()[1:], "--help")
    assert r.exit_code == 0, r.stderr
    text = r.stdout
    for python_speak in ("<bool>", "<str>", "<list[", "[default: None]"):
        assert python_speak not in text, f"{command} --help shows {python_speak}"
    assert "…" not in text, [line for line in text.splitlines() if "…" in line]


def test_format_names_one_set_of_data_formats_and_each_command_refuses_the_others(tmp_path):
    data = tmp_path / "x.txt"
    data.write_text("a b\n")
    r = invoke("train", "tag", data, "--format", "fasttext", "-o", tmp_path / "m")
    assert r.exit_code == 2 and "--format fasttext: this command reads auto, conll, conllu" in r.stderr, r.stderr
    r = invoke("train", "classify", data, "--select", "span-f1", "-o", tmp_path / "m")
    assert r.exit_code == 2 and "--select span-f1: this model kind offers accuracy, macro-f1" in r.stderr, r.stderr


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source_lines():
    from conftest import invoke

    out = invoke("classify", "--help").stdout
    assert "every label at or above its threshold, space-separated" in " ".join(out.split())
    lines = [line.strip() for line in out.splitlines()]
    assert any("at or above its threshold, space-separated" in line for line in lines)  # not broken after "its"
