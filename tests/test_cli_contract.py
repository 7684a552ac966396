"""The CLI contract every command shares: help, exit codes, one-line errors, lazy torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import invoke, run_cli


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from rnntool.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "assert 'torch' not in sys.modules, 'rnntool --help imported torch'\n"
        "assert rc == 0, rc\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


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
