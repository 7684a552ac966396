"""Bits shared by the language-model commands (`train lm`, `evaluate perplexity`, `generate`)."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer

DeviceOpt = Annotated[Literal["auto", "cpu", "cuda"], typer.Option("--device", help="auto: CUDA if available.")]


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


