"""Bits shared by the language-model commands (`train lm`, `evaluate perplexity`, `generate`)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated, Literal

import typer

DeviceOpt = Annotated[Literal["auto", "cpu", "cuda"], typer.Option("--device", help="auto: CUDA if available.")]


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def reader_may_stop():
    """`... | head -1` closing the pipe early is success, silently.

    typer turns EPIPE into exit status 1 before main() sees the BrokenPipeError, so catch it here.
    """
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # no later flush may raise again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
