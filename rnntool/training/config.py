"""Every setting of the one training loop (``TrainConfig``), checked with messages that name the CLI
option, and the durations ``--max-time`` takes ("90s", "10m", "1h30m").

Torch-free: the CLI imports it to build the config before anything heavy is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from rnntool.errors import ConfigError
from rnntool.runtime import DEVICES

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "plateau", "cosine")
from rnntool.layers.precision import PRECISIONS, TRAIN_PRECISIONS  # noqa: F401 (PRECISIONS re-exported)
BEST_MODES = ("min", "max")

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Every training setting. ``validate()`` raises ConfigError naming the CLI option.

    Budgets: training stops at the first of ``epochs``, ``max_steps`` (optimizer steps taken, skipped
    non-finite ones included) and ``max_time`` (seconds of training, summed over resumes); at least
    one must be set. A "step" is one optimizer update: one batch, or ``accumulate`` batches whose
    gradients are added up (an ``accumulate`` times larger effective batch).
    """

    optimizer: str = "adam"  # sgd | adam | adamw
    lr: float = 1e-3
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.0
    clip: float = 1.0  # max gradient norm; 0 = off
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    schedule: str = "constant"  # constant | plateau | cosine
    plateau_factor: float = 0.5  # plateau: lr *= factor ...
    plateau_patience: int = 0  # ... after this many evals without improvement beyond the first
    min_lr: float = 0.0  # floor for plateau and the end value of cosine
    epochs: int | None = 10
    max_steps: int | None = None
    max_time: float | None = None  # seconds
    eval_every: int | None = None  # steps; None = at the end of each epoch
    patience: int | None = None  # early stopping: evals without improvement; None = off
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch.set_num_threads
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 on a GPU, with a loss scale)
    init_range: float = 0.0  # > 0: every weight of a new model uniform in [-init_range, init_range]
    ema: float = 0.0  # > 0: validate and publish an exponential moving average of the weights, this decay
    max_bad_steps: int = 5  # consecutive non-finite steps before giving up
    best_metric: str = "loss"
    best_mode: str = "min"  # min | max
    save_every: int | None = None  # steps between checkpoints (also saved at each eval and at the end)
    keep_checkpoints: int = 2  # how many checkpoint directories to keep in the run dir
    log_every: int = 100  # steps between train-loss lines in metrics.jsonl
    ddp_find_unused_parameters: bool = False
    accumulate: int = 1  # batches per optimizer step (gradient accumulation)

    def validate(self) -> "TrainConfig":
        """Check every value; raise ConfigError naming the option and the valid choices."""

        def choice(name: str, value: str, valid: Sequence[str]) -> None:
            if value not in valid:
                raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(valid)} (got {value!r})")

        def positive(name: str, value, *, allow_none: bool = True, allow_zero: bool = False) -> None:
            if value is None:
                if not allow_none:
                    raise ConfigError(f"--{name.replace('_', '-')} is required")
                return
            if value < 0 or (value == 0 and not allow_zero) or value != value:
                need = "zero or more" if allow_zero else "greater than 0"
                raise ConfigError(f"--{name.replace('_', '-')} must be {need} (got {value})")

        choice("optimizer", self.optimizer, OPTIMIZERS)
        choice("schedule", self.schedule, SCHEDULES)
        choice("device", self.device, DEVICES)
        choice("precision", self.precision, TRAIN_PRECISIONS)
        choice("best_mode", self.best_mode, BEST_MODES)
        positive("lr", self.lr, allow_none=False)
        positive("momentum", self.momentum, allow_zero=True)
        positive("weight_decay", self.weight_decay, allow_zero=True)
        positive("clip", self.clip, allow_zero=True)
        positive("warmup", self.warmup_steps, allow_zero=True)
        positive("min_lr", self.min_lr, allow_zero=True)
        positive("epochs", self.epochs)
        positive("max_steps", self.max_steps)
        positive("max_time", self.max_time)
        positive("eval_every", self.eval_every)
        positive("patience", self.patience)
        positive("threads", self.threads)
        positive("max_bad_steps", self.max_bad_steps, allow_none=False)
        positive("save_every", self.save_every)
        positive("keep_checkpoints", self.keep_checkpoints, allow_none=False)
        positive("log_every", self.log_every, allow_none=False)
        positive("accumulate", self.accumulate, allow_none=False)
        positive("init_range", self.init_range, allow_zero=True)
        if self.init_range == float("inf"):
            raise ConfigError("--init-range must be a finite number (0.1 in OpenNMT-py)")
        if not 0 <= self.ema < 1 or self.ema != self.ema:
            raise ConfigError(f"--ema must be a decay in [0, 1), e.g. 0.999 (0: off; got {self.ema})")
        if not 0 < self.plateau_factor < 1:
            raise ConfigError(f"--plateau-factor must be between 0 and 1 (got {self.plateau_factor})")
        positive("plateau_patience", self.plateau_patience, allow_zero=True)
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError("--momentum only applies to --optimizer sgd")
        if self.min_lr > self.lr:
            raise ConfigError(f"--min-lr ({self.min_lr}) must not exceed --lr ({self.lr})")
        if self.epochs is None and self.max_steps is None and self.max_time is None:
            raise ConfigError("no training budget: give --epochs, --max-steps or --max-time")
        if not self.best_metric:
            raise ConfigError("best_metric must name a validation metric such as 'loss'")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        for name, off in (("accumulate", 1), ("init_range", 0.0), ("ema", 0.0)):
            if d[name] == off:  # off: the config reads as before the setting existed (retrain keys)
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict (e.g. a run's saved config); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------------------------------------
# Durations ("90s", "10m", "1h30m")
# ---------------------------------------------------------------------------------------------
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([dhms])")


def parse_duration(text: str | float | int | None, *, option: str = "--max-time") -> float | None:
    """Seconds from ``90``, ``90s``, ``10m``, ``1h``, ``1h30m``, ``1.5h``, ``2d``; None/'' -> None."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = text.strip().lower().replace(" ", "")
        if not s:
            return None
        try:
            seconds = float(s)
        except ValueError:
            pos = 0
            seconds = 0.0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos = m.end()
            if pos != len(s) or pos == 0:
                raise ConfigError(
                    f"{option}: cannot read {text!r} as a duration; use e.g. 90s, 10m, 1h or 1h30m"
                ) from None
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{option} must be a positive duration such as 90s, 10m or 1h30m (got {text!r})")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; ``75.5`` -> ``1m16s``."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec or not (h or m) else "")
    return out


__all__ = ["BEST_MODES", "OPTIMIZERS", "PRECISIONS", "SCHEDULES", "TRAIN_PRECISIONS", "TrainConfig", "format_duration", "parse_duration"]
