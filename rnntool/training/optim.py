"""Optimizers and learning-rate schedules for the training loop.

``build_optimizer(params, cfg)`` makes sgd / adam / adamw. ``params`` may be parameter groups (dicts with
``params`` and optionally ``lr_scale``, a multiplier of the schedule's rate, and ``start_step``, the
first update that moves them: gradual unfreezing and discriminative rates, as in ULMFiT); the rate
of every group is a function of the step alone, so a resumed run sets the same rates. ``LRSchedule`` gives the learning rate of
every step: linear warm-up, then constant, reduce-on-plateau or cosine decay to ``min_lr`` at the
end of the budget. Cosine follows the step budget when one is known (``max_steps``, or epochs x
batches) and the time budget (``max_time``) otherwise — or whichever is used up faster when both are
known — so a run limited only by ``--max-time 10m`` still decays. Its state is plain JSON so it goes
into checkpoints as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from rnntool.errors import ConfigError
from rnntool.training.config import OPTIMIZERS, TrainConfig


def build_optimizer(params: Iterable[torch.nn.Parameter] | list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
        params = [g for g in params if g["params"]]
    else:
        params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} (got {cfg.optimizer!r})")


def set_lr(optimizer: torch.optim.Optimizer, lr: float, step: int = 0) -> None:
    """The schedule's rate ``lr`` for update ``step``, times each group's ``lr_scale``; 0 for a group
    whose ``start_step`` is still ahead (frozen: with a zero rate Adam/AdamW/SGD leave it as it is)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0) if step >= group.get("start_step", 0) else 0.0


def drop_frozen_grads(optimizer: torch.optim.Optimizer, step: int) -> None:
    """Forget the gradients of groups still frozen at update ``step``: they neither count in the
    clipping norm nor enter Adam's moments (a parameter without a gradient is skipped)."""
    for group in optimizer.param_groups:
        if step < group.get("start_step", 0):
            for p in group["params"]:
                p.grad = None


def has_group_schedule(optimizer: torch.optim.Optimizer) -> bool:
    """True when some group's rate is not the schedule's (scaled or frozen for a while)."""
    return any(g.get("lr_scale", 1.0) != 1.0 or g.get("start_step", 0) > 0 for g in optimizer.param_groups)


class LRSchedule:
    """The learning rate as a function of (step, elapsed seconds) plus plateau state.

    ``lr(step, elapsed)``: the rate for update number ``step`` (0-based). ``on_eval(value)`` feeds
    the validation metric (plateau only; ``mode`` "min" or "max"). ``state_dict()`` is JSON.
    """

    def __init__(self, cfg: TrainConfig, *, total_steps: int | None, max_time: float | None) -> None:
        self.kind = cfg.schedule
        self.base_lr = cfg.lr
        self.min_lr = cfg.min_lr
        self.warmup_steps = cfg.warmup_steps
        self.total_steps = total_steps
        self.max_time = max_time
        self.factor = cfg.plateau_factor
        self.patience = cfg.plateau_patience
        self.mode = cfg.best_mode
        # plateau state
        self.plateau_lr = cfg.lr
        self.best: float | None = None
        self.bad_evals = 0
        if self.kind == "cosine" and total_steps is None and max_time is None:
            raise ConfigError(
                "--schedule cosine needs a known budget: give --max-steps or --max-time "
                "(the number of batches per epoch is not known in advance here)"
            )

    @property
    def is_constant(self) -> bool:
        """True when every step gets ``base_lr`` (the loop then never touches the optimizer)."""
        return self.kind == "constant" and self.warmup_steps == 0

    def warmup_factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return 1.0

    def progress(self, step: int, elapsed: float) -> float:
        """Fraction of the decay phase done, 0..1 (the larger of the step and time fractions)."""
        fractions = []
        if self.total_steps is not None:
            span = max(1, self.total_steps - self.warmup_steps)
            fractions.append((step - self.warmup_steps) / span)
        if self.max_time is not None:
            fractions.append(elapsed / self.max_time)
        if not fractions:
            return 0.0
        return min(1.0, max(0.0, max(fractions)))

    def lr(self, step: int, elapsed: float = 0.0) -> float:
        if self.kind == "cosine":
            p = self.progress(step, elapsed)
            rate = self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        elif self.kind == "plateau":
            rate = self.plateau_lr
        else:
            rate = self.base_lr
        return rate * self.warmup_factor(step)

    def on_eval(self, value: float) -> bool:
        """Record a validation value; return True when the plateau rate was just reduced."""
        if self.kind != "plateau":
            return False
        finite = value == value and abs(value) != float("inf")
        improved = finite and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        )
        if improved:
            self.best = value
            self.bad_evals = 0
            return False
        self.bad_evals += 1
        if self.bad_evals > self.patience:
            self.bad_evals = 0
            new = max(self.min_lr, self.plateau_lr * self.factor)
            reduced = new < self.plateau_lr
            self.plateau_lr = new
            return reduced
        return False

    def state_dict(self) -> dict:
        return {"kind": self.kind, "plateau_lr": self.plateau_lr, "best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") == self.kind == "plateau":
            self.plateau_lr = float(state["plateau_lr"])
            self.best = state.get("best")
            self.bad_evals = int(state.get("bad_evals", 0))
