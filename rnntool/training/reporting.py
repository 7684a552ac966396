"""How a training command's result reads: the pieces of every kind's one-line summary (torch-free)."""

from __future__ import annotations

import math


def summary_number(x) -> str:
    """A metric in the summary line: 4 significant digits, or as it is (None, inf, an int)."""
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x)


__all__ = ["summary_number"]
