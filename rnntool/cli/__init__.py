"""Command-line entry point and the one place where errors become exit codes and messages.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 75 lock held (EX_TEMPFAIL). A user error is one
line on stderr, ``rnntool: error: ...``; a traceback only with ``--debug`` or ``RNNTOOL_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

import typer

from rnntool.cli.app import app, click_exceptions as cx
from rnntool.cli.console import console
from rnntool.errors import EX_ERROR, EX_USAGE, RnnToolError

# Command modules register their commands on the groups in rnntool.cli.app when imported.
from rnntool.cli import (  # noqa: F401,E402
    bleu,
    generate,
    models,
    perplexity,
    tokenize,
    train_lm,
    train_translate,
    translate,
)

__all__ = ["app", "main"]


def _debug_requested(argv: list[str]) -> bool:
    env = os.environ.get("RNNTOOL_DEBUG", "").lower()
    return env in ("1", "true", "yes", "on") or "--debug" in argv


def _quiet_broken_pipe() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _usage_message(e: cx.UsageError) -> str:
    msg = e.format_message()
    ctx = e.ctx
    if ctx is not None:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    console.reset()  # in-process callers (tests, wrappers) get a fresh console every time
    try:
        rc = app(args=argv, prog_name="rnntool", standalone_mode=False)
        code = rc if isinstance(rc, int) else 0
    except BrokenPipeError:
        _quiet_broken_pipe()
        code = 0
    except SystemExit as e:
        # typer turns EPIPE into sys.exit(1) inside app(); the reader went away (`| head`): quiet 0.
        if isinstance(e.__context__, BrokenPipeError) or (
            isinstance(e.__context__, OSError) and e.__context__.errno == errno.EPIPE
        ):
            _quiet_broken_pipe()
            code = 0
        else:
            raise
    except RnnToolError as e:
        if debug:
            traceback.print_exc()
        console.error(str(e))
        code = e.exit_code
    except cx.NoArgsIsHelpError:  # `rnntool train` alone: typer has printed the help already
        code = EX_USAGE
    except cx.UsageError as e:
        if debug:
            traceback.print_exc()
        console.error(_usage_message(e))
        code = EX_USAGE
    except cx.ClickException as e:
        console.error(e.format_message())
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("rnntool: interrupted\n")
        code = 130
    except Exception as e:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
            code = EX_ERROR
        else:
            console.error(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)")
            code = EX_ERROR
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    sys.exit(code)
