"""The CLI contract every command shares: help, exit codes, one-line errors, lazy torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import invoke, run_cli


def test_help_imports_neither_torch_nor_the_group_command_modules():
    """Start-up: `rnntool --help` lists the groups from rnntool.cli.app, not from their command modules
    (rnntool/cli/command_modules.py)."""
    code = (
        "import sys\n"
        "from rnntool.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "assert 'torch' not in sys.modules, 'rnntool --help imported torch'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('rnntool.cli.train', 'rnntool.cli.models',"
        " 'rnntool.registry.store')))\n"
        "assert not loaded, loaded\n"
        "assert rc == 0, rc\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "models" in r.stdout, r.stdout  # the groups are still listed


def test_no_args_shows_help_and_exits_2():
    r = run_cli()
    assert r.returncode == 2
    assert "Usage" in r.stdout + r.stderr


def test_unknown_option_is_one_line_usage_error():
    r = invoke("--no-such-option")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnntool: error:"), r.stderr
    assert "Traceback" not in r.output


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0
    assert r.stdout.startswith("rnntool ")


def test_head_closes_pipe_quietly_with_exit_0(tmp_path):
    """`rnntool … | head -1` exits 0 with nothing on stderr (typer turns EPIPE into exit 1)."""
    from conftest import rnntool_cmd

    big = tmp_path / "big.txt"
    big.write_text("".join(f"line {i} with some words in it\n" for i in range(200000)), encoding="utf-8")
    model = tmp_path / "tok"
    r = run_cli("tokenize", "train", str(big), "-o", str(model), "--vocab-size", "300", "-q")
    assert r.returncode == 0, r.stderr
    script = f"set -o pipefail; {rnntool_cmd()} tokenize encode -m {model} {big} | head -1"
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stderr == ""
    assert len(p.stdout.splitlines()) == 1


def test_atomic_output_has_normal_permissions(tmp_path):
    import os

    from rnntool.textio import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_help_texts_hold_no_square_bracket_markup():
    """rich reads "[default: x]" in a help string as markup and drops it; say "(default: x)" (or escape
    it: "rnntool\\[plot]")."""
    import re

    import typer.main

    from rnntool.cli import app
    from rnntool.cli.command_modules import import_all_commands

    import_all_commands()

    def commands(cmd, path=()):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, (*path, name))

    eaten = [(" ".join(path), p.name) for path, cmd in commands(typer.main.get_command(app))
             for p in cmd.params if re.search(r"(?<!\\)\[[a-z]", getattr(p, "help", None) or "")]
    assert not eaten
