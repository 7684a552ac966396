"""TensorBoard event files from training (`rnntool train ... --tensorboard DIR`), beside metrics.jsonl.

A training callback (the loop calls it on rank 0 only): per step ``train/loss`` (nats per token),
``train/lr`` and ``train/tokens_per_s``; per validation ``valid/<metric>`` for every metric the task
reports; all by step, so a resumed run continues the same curves (TensorBoard reads every event file in
DIR). Non-finite values are left out. Needs the ``tensorboard`` package (``pip install
'rnntool[tensorboard]'``), imported only when asked for.
"""

from __future__ import annotations

import math
from pathlib import Path

from rnntool.errors import ConfigError


class TensorBoardLog:
    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install 'rnntool[tensorboard]' "
                              "(or pip install tensorboard)") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def _scalar(self, tag: str, value, step: int) -> None:
        if isinstance(value, (int, float)) and math.isfinite(value):
            self.writer.add_scalar(tag, float(value), step)

    def on_step(self, info) -> None:
        if not info.skipped:
            self._scalar("train/loss", info.loss, info.step)
        self._scalar("train/lr", info.lr, info.step)
        self._scalar("train/tokens_per_s", info.tokens_per_s, info.step)

    def on_eval(self, info) -> None:
        for name, value in info.metrics.items():
            self._scalar(f"valid/{name}", value, info.step)
        self.writer.flush()

    def on_end(self, result) -> None:
        self.close()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


__all__ = ["TensorBoardLog"]
