"""Everything the CLI shows a person, on stderr; and data, on stdout.

- ``emit(line)`` / ``emit_json(obj)``: data to stdout, flushed at once (streaming, pipes).
- ``log(msg)``: a human message on stderr. Plain ``2026-11-22T05:49:54 rnntool: msg`` lines when
  stderr is not a TTY (cron logs), rich text on a TTY; nothing with ``--quiet`` except warnings.
- ``progress(...)``: a rich progress bar only when stderr is a TTY; otherwise a no-op, and the caller
  logs a plain line per evaluation instead.
- ``NO_COLOR`` (any value) turns colour off; ``--log-file`` also appends every message, timestamped.
"""


import contextlib
import datetime as _dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _now() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S")


class Console:
    def __init__(self) -> None:
        self.quiet = False
        self.log_files: list[Path] = []
        self._rich = None

    def reset(self) -> None:
        self.quiet = False
        self.log_files = []

    # -- state --------------------------------------------------------------------------------
    @property
    def is_tty(self) -> bool:
        try:
            return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            return False

    @property
    def color(self) -> bool:
        return self.is_tty and "NO_COLOR" not in os.environ

    def rich(self):
        """The rich console on stderr (imported lazily: rich costs start-up time)."""
        if self._rich is None:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(stderr=True, no_color=not self.color, highlight=False)
        return self._rich

    def add_log_file(self, path: str | os.PathLike) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.log_files.append(p)

    # -- stderr ---------------------------------------------------------------------------------
    def record(self, msg: str) -> None:
        """Append a message to the --log-file(s) only (e.g. a result already printed on stdout)."""
        self._to_files(msg)

    def _to_files(self, msg: str) -> None:
        for p in self.log_files:
            with open(p, "a", encoding="utf-8") as f:
                f.write(f"{_now()} {msg}\n")

    def log(self, msg: str, *, force: bool = False) -> None:
        """A progress or status message (suppressed by --quiet unless ``force``)."""
        self._to_files(msg)
        if self.quiet and not force:
            return
        if self.is_tty:
            self.rich().print(msg, markup=False)
        else:
            sys.stderr.write(f"{_now()} rnntool: {msg}\n")
            sys.stderr.flush()

    def warn(self, msg: str) -> None:
        self._to_files(f"warning: {msg}")
        sys.stderr.write(f"rnntool: warning: {msg}\n")
        sys.stderr.flush()

    def error(self, msg: str) -> None:
        self._to_files(f"error: {msg}")
        sys.stderr.write(f"rnntool: error: {msg}\n")
        sys.stderr.flush()

    # -- stdout ---------------------------------------------------------------------------------
    @staticmethod
    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    @staticmethod
    def emit_json(obj: Any, *, indent: int | None = None) -> None:
        from rnntool.textio import finite_json

        text = json.dumps(finite_json(obj), ensure_ascii=False, indent=indent, default=str, allow_nan=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    # -- progress -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, description: str, total: float | None = None) -> Iterator["ProgressHandle"]:
        """Yield a handle with ``update(completed=None, advance=None, **fields)``.

        On a TTY (and not quiet) a rich bar; elsewhere the handle does nothing, so callers log
        a plain line at their own checkpoints (each eval), which is what a cron log wants.
        """
        if not self.is_tty or self.quiet:
            yield ProgressHandle(None, None)
            return
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        # On a narrow terminal the status gives way (cut with '…'), never the times or the percentage.
        fixed = lambda width: Column(no_wrap=True, min_width=width)  # noqa: E731
        columns = [
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=24),
            TextColumn("{task.percentage:>5.1f}%", table_column=fixed(6)),
            TextColumn("{task.fields[status]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            TimeElapsedColumn(table_column=fixed(7)),
            TimeRemainingColumn(table_column=fixed(7)),
        ]
        with Progress(*columns, console=self.rich(), transient=False) as prog:
            task = prog.add_task(description, total=total, status="")
            yield ProgressHandle(prog, task)


class ProgressHandle:
    def __init__(self, prog, task) -> None:
        self._prog = prog
        self._task = task

    @property
    def active(self) -> bool:
        return self._prog is not None

    def update(self, *, completed: float | None = None, advance: float | None = None, status: str | None = None):
        if self._prog is None:
            return
        kw: dict[str, Any] = {}
        if completed is not None:
            kw["completed"] = completed
        if advance is not None:
            kw["advance"] = advance
        if status is not None:
            kw["status"] = status
        self._prog.update(self._task, **kw)

    def print(self, msg: str) -> None:
        """A line above the bar (e.g. an eval result) without breaking it."""
        if self._prog is not None:
            self._prog.console.print(msg, markup=False)


console = Console()
