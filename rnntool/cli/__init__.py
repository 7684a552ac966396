"""Command-line entry point and the one place where errors become exit codes and messages.

Exit codes: 0 ok, 1 runtime error, 2 usage error, 75 lock held (EX_TEMPFAIL). A user error is one
line on stderr, ``rnntool: error: ...``; a traceback only with ``--debug`` (anywhere before a
literal ``--``) or ``RNNTOOL_DEBUG=1``. Besides the domain errors, two things that are no bug become
one line here wherever they happen: a full disk or quota (ENOSPC/EDQUOT, also inside a library's own
exception) and memory running out (MemoryError, torch's allocator). Anything else is an
``internal error``.
"""


import errno
import os
import re
import sys
import traceback

import typer

from rnntool.cli.app import app, build_command, click_exceptions as cx
from rnntool.cli.command_modules import import_commands
from rnntool.cli.console import console
from rnntool.errors import EX_ERROR, EX_USAGE, DiskFull, RnnToolError

__all__ = ["app", "main"]


DEBUG_FLAG = "--debug"


def _take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (accepted anywhere before a literal ``--``), and whether it was there.

    The root option ``rnntool --debug`` stays declared (help, completion, ``RNNTOOL_DEBUG``); taking
    the flag out here is what lets ``rnntool models list --debug`` work too.
    """
    out: list[str] = []
    found = False
    for i, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[i:])
            break
        if arg == DEBUG_FLAG:
            found = True
        else:
            out.append(arg)
    return out, found


def _debug_requested(flag: bool) -> bool:
    env = os.environ.get("RNNTOOL_DEBUG", "").lower()
    return flag or env in ("1", "true", "yes", "on")


def _quiet_broken_pipe(stream=None) -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot raise again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, (stream or sys.stdout).fileno())
    except (OSError, ValueError):
        pass


def _report(msg: str) -> None:
    """``rnntool: error: msg`` on stderr (and the --log-file), even when the log file's disk is full."""
    try:
        console.error(msg)
        return
    except OSError:  # the --log-file could not be written: stderr alone
        pass
    try:
        sys.stderr.write(f"rnntool: error: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself is gone (a full disk under `2>>log`): the exit code is left
        _quiet_broken_pipe(sys.stderr)


def _print_traceback() -> None:
    try:
        traceback.print_exc()
    except (OSError, ValueError):
        pass


def _chain(e: BaseException | None):
    """``e`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


# Libraries that report a full disk in their own exception types (safetensors: "... (os error 28)").
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|os error (28|122)\b", re.I)


def _disk_full(e: BaseException) -> DiskFull | None:
    """A DiskFull for an exception caused by ENOSPC/EDQUOT anywhere in its chain, else None."""
    for x in _chain(e):
        if DiskFull.matches(x):
            return DiskFull.from_oserror(x, published=None)  # whether anything was published: unknown here
    for x in _chain(e):
        m = _DISK_FULL_TEXT.search(str(x))
        if m:
            quota = "quota" in m.group(0).lower() or m.group(0).endswith("122")
            code = getattr(errno, "EDQUOT", errno.ENOSPC) if quota else errno.ENOSPC
            return DiskFull.from_oserror(OSError(code, os.strerror(code)), published=None)
    return None


_OOM_TEXT = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|unable to allocate", re.I)
_OOM_SIZE = (
    re.compile(r"tried to allocate (\d+) bytes", re.I),  # torch's CPU allocator
    re.compile(r"(?:unable to|tried to) allocate (\d+(?:\.\d+)? [KMGTPE]i?B)", re.I),  # numpy, CUDA
)


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _out_of_memory(e: BaseException) -> str | None:
    """The message for an exception caused by memory running out (MemoryError, torch/CUDA), else None."""
    for x in _chain(e):
        if not (isinstance(x, MemoryError) or (isinstance(x, OSError) and x.errno == errno.ENOMEM)
                or (isinstance(x, RuntimeError) and _OOM_TEXT.search(str(x)))):
            continue
        size = None
        for pattern in _OOM_SIZE:
            m = pattern.search(str(x))
            if m:
                size = _human_bytes(int(m.group(1))) if m.group(1).isdigit() else m.group(1)
                break
        return ("out of memory" + (f" (could not allocate {size})" if size else "") +
                "; a size given on the command line is too large for this machine: lower it (e.g. --batch-size, "
                "--batch-tokens, --beam, --samples, --hidden-dim) and run again")
    return None


def _usage_message(e: cx.UsageError) -> str:
    msg = e.format_message().replace(": Value error, ", ": ")  # typer's validator's prefix says nothing
    ctx = e.ctx
    if ctx is not None:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


def main(argv: list[str] | None = None) -> None:
    from rnntool.training.time_budget import mark_command_start, process_start

    # --max-time promises the whole command: a real command counts from the process's start
    mark_command_start(process_start() if argv is None else None)
    argv, flag = _take_debug(list(sys.argv[1:] if argv is None else argv))
    debug = _debug_requested(flag)
    if flag:
        argv = [DEBUG_FLAG, *argv]  # the root option, where typer expects it
    console.reset()  # in-process callers (tests, wrappers) get a fresh console every time
    try:
        import_commands(argv)  # only the modules this command line runs (start-up time)
        rc = build_command()(args=argv, prog_name="rnntool", standalone_mode=False)
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
            _print_traceback()
        _report(str(e))
        code = e.exit_code
    except cx.NoArgsIsHelpError:  # `rnntool train` alone: typer has printed the help already
        code = EX_USAGE
    except cx.UsageError as e:
        if debug:
            _print_traceback()
        _report(_usage_message(e))
        code = EX_USAGE
    except cx.ClickException as e:
        _report(e.format_message())
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("rnntool: interrupted\n")
        code = 130
    except Exception as e:
        code = EX_ERROR
        known = _disk_full(e) or _out_of_memory(e)  # not a bug: the machine ran out of something
        if debug:
            _print_traceback()
        if known is not None:
            _report(str(known))
        elif not debug:  # a bug: still one line unless --debug
            _report(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)")
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except OSError as e:  # data still buffered for a stdout on a full disk
        _quiet_broken_pipe()
        if code == 0:
            full = _disk_full(e)
            _report(str(full) if full is not None else f"could not write the output: {e}")
            code = EX_ERROR
    sys.exit(code)
