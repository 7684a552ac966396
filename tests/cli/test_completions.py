"""Static shell completions: up to date with the CLI, and they load and complete in real shells."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from rnntool.cli import completions

COMPLETIONS = REPO / "completions"


@pytest.fixture(scope="module")
def tree():
    return completions.command_tree()


def test_committed_scripts_are_up_to_date():
    stale = completions.stale(COMPLETIONS)
    assert not stale, (
        f"completions/{', completions/'.join(stale)} out of date with the CLI; "
        f"regenerate them with `{completions.REGENERATE}` and commit the result"
    )


def test_check_mode_and_regeneration(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rnntool.cli.completions", "--check", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and completions.REGENERATE in r.stderr
    r = subprocess.run([sys.executable, "-m", "rnntool.cli.completions", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(completions.SCRIPT_NAMES)
    r = subprocess.run([sys.executable, "-m", "rnntool.cli.completions", "--check", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_generator_does_not_import_torch(tmp_path):
    code = (
        "import sys\nfrom rnntool.cli import completions\ncompletions.render_all()\n"
        "assert 'torch' not in sys.modules, 'the completion generator imported torch'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_tree_has_every_command_and_option(tree):
    paths = {c.path for c in tree.walk()}
    assert {"rnntool tokenize", "rnntool tokenize train", "rnntool tokenize encode", "rnntool models"} <= paths
    train = next(c for c in tree.walk() if c.path == "rnntool tokenize train")
    opts = {n: o for o in train.options for n in o.names}
    assert opts["--model-type"].value == "choice"
    assert opts["--model-type"].choices == ["bpe", "unigram", "char", "word"]
    assert opts["--byte-fallback"] is opts["--no-byte-fallback"] and opts["--json"].value == ""
    assert opts["-o"].value == "file" and opts["--name"].value == "text"
    encode = next(c for c in tree.walk() if c.path == "rnntool tokenize encode")
    assert {n: o.value for o in encode.options for n in o.names}["-m"] == "model"
    bash_script = (COMPLETIONS / "rnntool.bash").read_text()
    for c in tree.walk():
        for o in c.options:
            for n in o.names:
                assert f"'{c.path}|{n}'" in bash_script or not o.value, (c.path, n)


def _bash_complete(words: list[str], env_home) -> list[str]:
    script = (
        f"source {COMPLETIONS / 'rnntool.bash'}\n"
        "COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()\n"
        "_rnntool\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    r = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "RNNTOOL_HOME": str(env_home)})
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_bash_script_parses():
    r = subprocess.run(["bash", "-n", str(COMPLETIONS / "rnntool.bash")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _models(registry, **kinds):
    """Model directories with a manifest naming their kind (what completion reads)."""
    for name, kind in kinds.items():
        (registry / "models" / name / "1").mkdir(parents=True)
        (registry / "models" / name / "1" / "manifest.json").write_text(f'{{\n  "kind": "{kind}"\n}}\n')


def test_bash_completes_commands_options_and_choices(registry):
    _models(registry, spm="tokenizer")
    (registry / "models" / "spm" / "aliases").mkdir()
    (registry / "models" / "spm" / "aliases" / "prod").write_text("1\n")
    assert {"models", "tokenize", "train"} <= set(_bash_complete(["rnntool", ""], registry))
    assert _bash_complete(["rnntool", "tok"], registry) == ["tokenize"]
    assert _bash_complete(["rnntool", "tokenize", ""], registry) == ["decode", "encode", "train", "vocab"]
    assert _bash_complete(["rnntool", "tokenize", "train", "--model-type", ""], registry) == [
        "bpe", "unigram", "char", "word"]
    assert _bash_complete(["rnntool", "tokenize", "train", "--model-type", "=", "u"], registry) == ["unigram"]
    assert _bash_complete(["rnntool", "tokenize", "train", "--vocab"], registry) == ["--vocab-size"]
    assert _bash_complete(["rnntool", "--debug", "tokenize", "encode", "-m", "spm", "--output-format", ""],
                          registry) == ["piece", "id"]
    assert "spm" in _bash_complete(["rnntool", "tokenize", "encode", "-m", ""], registry)
    assert _bash_complete(["rnntool", "tokenize", "encode", "-m", "spm@"], registry) == ["spm@1", "spm@prod"]
    assert _bash_complete(["rnntool", "tokenize", "train", "--name", ""], registry) == []


def test_model_options_complete_the_models_of_the_kind_the_command_takes(registry, tmp_path, monkeypatch):
    _models(registry, spm="tokenizer", news="lm", en_de="translation", sent="classifier", ner="tagger")
    (registry / "models" / "en_de" / "7").mkdir()  # the newest version decides; it has no manifest yet
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")  # files in the current directory are offered too: let there be none
    models = lambda *words: sorted(w for w in _bash_complete(["rnntool", *words], registry))  # noqa: E731
    assert models("translate", "-m", "") == []  # en_de's newest version is unreadable
    (registry / "models" / "en_de" / "7" / "manifest.json").write_text('{"kind": "translation"}')
    assert models("translate", "-m", "") == ["en_de"]
    assert models("generate", "-m", "") == models("evaluate", "perplexity", "-m", "") == ["news"]
    assert models("classify", "-m", "") == ["sent"] and models("tag", "-m", "") == ["ner"]
    assert models("tokenize", "encode", "-m", "") == ["en_de", "news", "sent", "spm"]  # anything with a tokenizer
    assert models("translate", "-m", "en_de@") == ["en_de@1", "en_de@7"]
    assert models("translate", "-m", "news@") == []
    assert models("models", "show", "") == ["en_de", "ner", "news", "sent", "spm"]  # the registry commands
    assert models("models", "rm", "n") == ["ner", "news"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses_and_completes(registry):
    assert subprocess.run(["zsh", "-n", str(COMPLETIONS / "_rnntool")]).returncode == 0
    _models(registry, spm="tokenizer", news="lm")
    harness = (
        "compadd() { [[ $1 == -X ]] && shift 2; if [[ $1 == -a ]]; then print -rl -- ${(P)2}; "
        "else print -rl -- \"$@\"; fi }\n"
        "_describe() { print -rl -- ${(P)4} }\n_files() { print -r -- FILES }\ncompset() { : }\ncompdef() { : }\n"
        f"source {COMPLETIONS / '_rnntool'}\n"
        "words=(\"$@\"); CURRENT=${#words}; _rnntool\n"
    )

    def complete(*words):
        r = subprocess.run(["zsh", "-f", "-c", harness, "zsh", *words], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "RNNTOOL_HOME": str(registry)})
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    assert [w.split(":")[0] for w in complete("rnntool", "tokenize", "")] == ["decode", "encode", "train", "vocab"]
    assert complete("rnntool", "tokenize", "train", "--model-type", "") == ["bpe", "unigram", "char", "word"]
    assert complete("rnntool", "tokenize", "encode", "-m", "") == ["news", "spm", "FILES"]
    assert complete("rnntool", "generate", "-m", "") == ["news", "FILES"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses_and_completes(registry):
    script = COMPLETIONS / "rnntool.fish"
    r = subprocess.run(["fish", "--no-execute", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _models(registry, spm="tokenizer", news="lm")

    def complete(line):
        r = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(registry),
                                                                "RNNTOOL_HOME": str(registry)})
        assert r.returncode == 0, r.stderr
        return [w.split("\t")[0] for w in r.stdout.splitlines()]

    assert complete("rnntool tokenize ") == ["decode", "encode", "train", "vocab"]
    assert complete("rnntool tokenize train --model-type ") == ["bpe", "char", "unigram", "word"]
    assert "spm" in complete("rnntool tokenize encode -m ")
    assert "news" in complete("rnntool generate -m ") and "spm" not in complete("rnntool generate -m ")
    assert complete("rnntool tokenize encode --output-f") == ["--output-format"]


def test_completions_command_prints_the_static_scripts():
    from conftest import invoke

    for shell, name in (("bash", "rnntool.bash"), ("zsh", "_rnntool"), ("fish", "rnntool.fish")):
        r = invoke("completions", shell)
        assert r.exit_code == 0 and r.stdout == (COMPLETIONS / name).read_text(), shell
    assert invoke("completions", "tcsh").exit_code == 2
    assert "--install-completion" not in invoke("--help").stdout  # one mechanism: the static scripts
