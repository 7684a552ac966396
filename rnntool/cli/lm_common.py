"""Bits shared by the language-model commands (`train lm`, `evaluate perplexity`, `generate`)."""

from __future__ import annotations

import sys


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


