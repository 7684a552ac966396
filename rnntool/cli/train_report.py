"""What the training commands print: progress on stderr and the final one-line summary.

- ``ConsoleProgress``: the training callback. On a TTY a rich bar (loss, ppl, tok/s, lr, ETA);
  otherwise one plain line per eval, ``step 400 epoch 1 loss 2.31 ppl 10.1 val_loss 2.40 val_ppl
  11.0 tok/s 9120 lr 1e-3``. Use it as a context manager so the bar is closed even when training
  fails.
- ``report_result`` / ``report_skipped``: the summary line (or ``--json``) a cron mail shows.

Must not import torch (``rnntool --help`` stays fast).
"""


import contextlib
import math
import time

from rnntool.cli.console import console
from rnntool.training.reporting import summary_number  # noqa: F401 (the CLI's name for it)
from rnntool.training.config import format_duration


# ---------------------------------------------------------------------------------------------
# Results: the one line a cron mail shows
# ---------------------------------------------------------------------------------------------
def report_skipped(bundle, json_out: bool, reason: str = "unchanged") -> None:
    """Nothing to train, exit 0, say why: --if-changed found the same data and settings as the latest
    version ("unchanged"), or the resumed run had already published ``bundle`` ("published")."""
    if reason == "published":
        line = f"already published: this run published {bundle.ref}; nothing to do"
        status = "already_published"
    else:
        line = f"skipped: data and settings unchanged since {bundle.ref}"
        status = "skipped"
    summary = {"status": status, "ref": bundle.ref, "path": str(bundle.path), "metrics": bundle.metrics}
    report_result(summary, line, json_out)


def report_result(summary: dict, line: str, json_out: bool, budget=None) -> None:
    """The final summary: JSON on stdout with --json (and the line on stderr/log file), else the line;
    with a time budget, first what it went to."""
    from rnntool.errors import DiskFull

    published = summary["ref"] if summary.get("status") in ("published", "written") else None
    with DiskFull.translating("the summary", published=published):  # stdout or the log on a full disk
        if budget is not None and budget.limit is not None:
            console.log(budget.report())
        if json_out:
            console.log(line, force=True)
            console.emit_json(summary)
        else:
            console.record(line)
            console.emit(line)


# ---------------------------------------------------------------------------------------------
# Progress display
# ---------------------------------------------------------------------------------------------
def format_lr(lr: float) -> str:
    """``0.001`` -> ``1e-3``, ``0.000316`` -> ``3.16e-4``."""
    if lr == 0 or not math.isfinite(lr):
        return str(lr)
    mantissa, exponent = f"{lr:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _num(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def _ppl(loss: float) -> float:
    return math.exp(loss) if math.isfinite(loss) and loss < 700 else float("inf")


RATE_LABELS = {"tokens": "tok/s", "examples": "ex/s"}


def eval_line(info, rate: str = "tok/s") -> str:
    """``step 400 epoch 1 loss 2.31 ppl 10.1 val_loss 2.40 val_ppl 11.0 tok/s 9120 lr 1e-3`` (``rate``:
    how throughput is labelled, ``ex/s`` for a classifier)."""
    parts = [f"step {info.step}", f"epoch {info.epoch}"]
    if math.isfinite(info.train_loss):
        parts.append(f"loss {info.train_loss:.2f}")
        if "ppl" in info.metrics:  # a task whose loss is per token (not a classifier's, per example)
            parts.append(f"ppl {_num(_ppl(info.train_loss))}")
    for key, value in info.metrics.items():
        parts.append(f"val_{key} {value:.2f}" if key == "loss" else f"val_{key} {_num(value)}")
    parts += [f"{rate} {info.tokens_per_s:.0f}", f"lr {format_lr(info.lr)}"]
    if info.is_best:
        parts.append("(best)")
    return " ".join(parts)


class ConsoleProgress:
    """Training progress on stderr (a training callback; rank 0 only, the loop sees to that)."""

    def __init__(self, description: str = "training", *, refresh_s: float = 0.2) -> None:
        self.description = description
        self.refresh_s = refresh_s
        self._stack = contextlib.ExitStack()
        self._bar = None
        self._last_update = 0.0
        self._skipped_logged = 0
        self.rate = "tok/s"  # throughput label: the task's unit (on_train_start)

    def __enter__(self) -> "ConsoleProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._bar = None
        self._stack.close()

    def _print(self, msg: str) -> None:
        if self._bar is not None and self._bar.active:
            console._to_files(msg)
            self._bar.print(msg)
        else:
            console.log(msg)

    def on_train_start(self, info) -> None:
        self.rate = RATE_LABELS.get(getattr(info, "unit", "tokens"), "tok/s")
        if info.note:
            console.warn(info.note)
        budget = []
        if info.config.epochs is not None:
            budget.append(f"{info.config.epochs} epochs" + (f" x {info.batches_per_epoch} batches"
                                                              if info.batches_per_epoch else ""))
        if info.config.max_steps is not None:
            budget.append(f"{info.config.max_steps} steps")
        if info.max_time is not None:
            budget.append(format_duration(info.max_time))
        if info.run_dir is not None and not info.resumed:  # named once a run exists (the data read), not before
            console.log(f"run directory {info.run_dir} (continue an interrupted run with --resume {info.run_dir})")
        procs = f" x {info.world_size} processes" if info.world_size > 1 else ""
        start = f"resuming at step {info.step} (epoch {info.epoch + 1}); " if info.resumed else ""
        console.log(f"{start}training {info.num_parameters:,} parameters on {info.device}{procs}; "
                    f"budget: {', '.join(budget) or 'none'}")
        known = info.total_steps is not None or info.max_time is not None
        self._bar = self._stack.enter_context(console.progress(self.description, total=100.0 if known else None))

    def on_step(self, info) -> None:
        if info.skipped and info.skipped_steps > self._skipped_logged:
            self._skipped_logged = info.skipped_steps
            console.warn(f"step {info.step}: loss or gradient not finite, update skipped "
                         f"({info.skipped_steps} so far)")
        if self._bar is None or not self._bar.active:
            return
        now = time.monotonic()
        if now - self._last_update < self.refresh_s:
            return
        self._last_update = now
        status = f"step {info.step}"
        if math.isfinite(info.loss):
            status += f" loss {info.loss:.2f}" + (f" ppl {_num(_ppl(info.loss))}" if self.rate == "tok/s" else "")
        status += f" {self.rate} {info.tokens_per_s:.0f} lr {format_lr(info.lr)}"
        self._bar.update(completed=100.0 * info.progress, status=status)

    def on_eval(self, info) -> None:
        self._print(eval_line(info, self.rate))
        if self._bar is not None:
            self._bar.update(completed=100.0 * info.progress)

    def on_end(self, result) -> None:
        if self._bar is not None:
            self._bar.update(completed=100.0)
        self.close()
        best = " ".join(f"val_{k} {_num(v)}" for k, v in result.best_metrics.items())
        n = result.skipped_steps
        skipped = f", {n} step{'s' if n != 1 else ''} skipped (non-finite)" if n else ""
        console.log(f"stopped ({result.stop_reason}) after {result.steps} steps, {format_duration(result.elapsed)}"
                    f"{skipped}; best {best or '-'} at step {result.best_step}")


__all__ = ["ConsoleProgress", "eval_line", "format_lr", "report_result", "report_skipped", "summary_number"]
