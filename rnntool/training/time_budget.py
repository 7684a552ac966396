"""A wall-clock promise for a whole `train` command, and what the time was spent on.

    budget = TimeBudget(limit=60.0)          # --max-time 60s, counted from the command's start
    ... prepare data ...                      # counted as "preparing" (whatever precedes training)
    train(task, cfg, budget=budget, ...)      # stops early enough for what must follow it
    with budget.phase("publishing"): ...
    budget.report()                           # "60s budget, 57.9s used: 2.1s preparing, 49.0s training, ..."

``--max-time`` is a promise about the whole command: the training loop stops when the time left
is no more than what the steps after it will cost — the final validation, ``evals_after`` more
validations when ``--promote`` compares two models, the last checkpoint and publishing — each
estimated from what it measured earlier in the run (see training/loop.py). On ``--resume`` an
explicit ``--max-time`` is this much *more* (``extends_run``); without one, the run's own budget
continues, and the promise is what is left of it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

PHASES = ("preparing", "training", "validating", "checkpoints", "promoting", "publishing")


def process_start() -> float:
    """When this process started, on the ``time.monotonic()`` clock (the interpreter's own start-up
    counts against the promise too); now, where /proc does not say."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22: start time, in clock ticks
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - min(max(age, 0.0), 60.0)


_command_start: float | None = None


def mark_command_start(at: float | None = None) -> None:
    """Where budgets of this command count from (the CLI's entry point calls it; default: now)."""
    global _command_start
    _command_start = time.monotonic() if at is None else at


def command_start() -> float:
    return _command_start if _command_start is not None else time.monotonic()


@dataclass
class TimeBudget:
    limit: float | None = None  # seconds this command may take; None: no promise (spending still recorded)
    extends_run: bool = False  # --resume with an explicit --max-time: train this much more
    evals_after: int = 1  # validations that follow training (the final one, + 2 for --promote)
    start: float = field(default_factory=time.monotonic)  # the CLI passes command_start()
    spent: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float | None:
        return None if self.limit is None else self.limit - self.elapsed()

    def settle(self, run_max_time: float | None, time_used: float) -> None:
        """Once the run's state is known: with no limit of its own, the command promises what is left of
        the run's ``--max-time`` (``time_used`` of it spent by earlier commands)."""
        if self.limit is None and run_max_time is not None:
            self.limit = self.elapsed() + max(0.0, run_max_time - time_used)

    def add(self, phase: str, seconds: float) -> None:
        self.spent[phase] = self.spent.get(phase, 0.0) + max(0.0, seconds)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - t0)

    def to_dict(self) -> dict:
        return {"budget": self.limit, "used": round(self.elapsed(), 2),
                "spent": {k: round(v, 2) for k, v in self._ordered().items()}}

    def _ordered(self) -> dict[str, float]:
        order = {p: i for i, p in enumerate(PHASES)}
        return dict(sorted(self.spent.items(), key=lambda kv: order.get(kv[0], len(order))))

    def report(self) -> str:
        """``60s budget, 57.9s used: 2.1s preparing, 49.0s training, ...``"""
        parts = ", ".join(f"{v:.1f}s {k}" for k, v in self._ordered().items() if v >= 0.05)
        head = f"{self.limit:.0f}s budget, " if self.limit is not None else ""
        return f"time: {head}{self.elapsed():.1f}s used" + (f": {parts}" if parts else "")


__all__ = ["PHASES", "TimeBudget"]
