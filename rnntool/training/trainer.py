"""The one training loop for every model kind (language models, translation), minGPT style.

This module does not import torch at import time (CLI modules may import it at the top); the loop
body lives in ``rnntool.training.loop``.

A *task* supplies the model, resumable batches, a loss and a validation; the loop owns the optimizer,
clipping, warm-up + schedule, evaluation, early stopping, best weights, the non-finite guard,
checkpoints + exact resume, DDP, and reports progress through callbacks (it never prints)::

    from rnntool.training.config import TrainConfig
    from rnntool.training.trainer import seed_everything, train

    seed_everything(cfg.seed)                # before building the model: same init every run
    task = MyTask(model, train_data, valid_data, seed=cfg.seed)
    result = train(task, cfg, run_dir=Path("runs/x"), callbacks=[ConsoleProgress()],
                   model_config=asdict(model_cfg), run_meta={"argv": ...})
    if result.is_main:                       # rank 0 under torchrun; always True otherwise
        publish(task.model.state_dict(), metrics=result.best_metrics)   # model holds BEST weights

Under ``torchrun --nproc-per-node N`` the same call trains with DistributedDataParallel (see
``rnntool.training.distributed``); only rank 0 writes checkpoints/metrics and calls callbacks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rnntool.errors import TrainingError
from rnntool.training.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch

STOP_REASONS = ("max_steps", "max_time", "epochs", "early_stopping")


class TrainingInterrupted(TrainingError):
    """Ctrl-C or SIGTERM: training stopped at a step boundary after writing a checkpoint.

    The message says how to continue (``--resume RUN_DIR``); ``exit_code`` is 128 + the signal
    (130 for Ctrl-C, 143 for SIGTERM), as a shell expects.
    """

    exit_code = 130


# ---------------------------------------------------------------------------------------------
# The task protocol
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class TrainTask(Protocol):
    """What a model kind gives the loop. Duck-typed: any object with these members works.

    - ``model``: the ``nn.Module`` to train. The loop moves it to the device (``model.to(device)``)
      before training and, under DDP, wraps it; ``task.model`` itself stays the bare module.
    - ``set_shard(rank, world_size)``: called once before training (``(0, 1)`` without DDP). Under
      DDP each rank must then yield only its own share of the batches (e.g. every ``world_size``-th
      batch, or its own slice of the BPTT streams) and ``num_batches`` must count that share.
    - ``batches(epoch)``: an iterator over this epoch's batches, deterministic for
      (seed, epoch, shard) — shuffle with your own ``random.Random(seed + epoch)``/``torch.Generator``,
      never the global RNG. On resume the loop skips the batches already done by consuming the
      iterator, so make batches lazy (slice on demand) so skipping is cheap. A batch is a tensor, a
      tuple/list/dict of tensors, or an object with ``.to(device)``; the loop moves it to the device.
    - ``num_batches(epoch)``: how many batches ``batches(epoch)`` yields on this shard, or None if
      unknown (then a cosine schedule needs ``max_steps`` or ``max_time``).
    - ``loss(model, batch) -> (nll_sum, n_tokens)``: the SUMMED negative log-likelihood over the
      batch's target tokens (a scalar tensor with grad) and how many target tokens (an int). The loop
      backpropagates ``nll_sum / n_tokens``. ``model`` may be DDP-wrapped: call ``model(...)`` (its
      forward) — under DDP only forward calls through the wrapper synchronize gradients. Runs under
      autocast when ``precision`` is bf16 or fp16 (fp16's loss scale is the loop's business).
    - ``evaluate(model) -> {"loss": nats/token, ...}``: validation on the bare module (already in
      ``eval()`` mode and under ``torch.no_grad()``); move data to its device
      (``rnntool.layers.weights.model_device(model)``). Must
      include ``"loss"``; translation may add ``"bleu"`` and pick ``best_metric="bleu"``. Under DDP
      only rank 0 evaluates and the metrics are broadcast.
    - ``chance_loss``: optional, the validation loss of a uniform guess (ln V); a validation loss
      over 10x this (or any non-finite one) stops training as diverged, and nothing is published;
      ``has_validation`` (optional, default True) False says ``evaluate`` measures nothing (not checked).
    - ``param_groups(model)``: optional, the optimizer's parameter groups (rnntool.training.optim:
      ``{"params": [...], "lr_scale": 0.4, "start_step": 200}``) for discriminative rates and gradual
      unfreezing of pretrained layers; every parameter in exactly one group. None: one group.
    - ``reports_perplexity``: optional, default True; False (a loss per example, not per token) keeps
      the loop from adding ``ppl`` to the validation metrics.
    - ``count_unit``: optional, default "tokens": what ``loss``'s count counts ("examples" for a
      classifier); progress and the published metrics name it (``train_examples``, ``examples_per_s``).
    - ``state_dict()`` / ``load_state_dict(state)``: optional extra resumable state, e.g. the LM's
      hidden state carried across BPTT segments. Values: tensors, or JSON-able values (nested
      dicts/lists of tensors are fine). Return ``{}`` if there is none.
    """

    model: "torch.nn.Module"

    def set_shard(self, rank: int, world_size: int) -> None: ...

    def batches(self, epoch: int) -> Iterator[Any]: ...

    def num_batches(self, epoch: int) -> int | None: ...

    def loss(self, model: "torch.nn.Module", batch: Any) -> "tuple[torch.Tensor, int]": ...

    def evaluate(self, model: "torch.nn.Module") -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


# ---------------------------------------------------------------------------------------------
# What callbacks receive
# ---------------------------------------------------------------------------------------------
@dataclass
class StartInfo:
    """``on_train_start(info)``: once, before the first step (after a resume has been restored)."""

    step: int  # 0, or the step a resumed run continues after
    epoch: int  # 0-based epoch the next step belongs to
    resumed: bool
    total_steps: int | None  # max_steps, or epochs x batches per epoch, when known
    max_time: float | None
    batches_per_epoch: int | None
    device: str
    world_size: int
    num_parameters: int
    run_dir: Path | None
    config: TrainConfig
    note: str | None = None  # a warning for the user (e.g. a resumed run with no time left to train)
    unit: str = "tokens"  # what the loss is averaged over and throughput counts (task.count_unit)


@dataclass
class StepInfo:
    """``on_step(info)``: after every step. ``loss`` is this batch's nats/token (NaN if skipped)."""

    step: int  # steps done so far (this one included)
    epoch: int  # 1-based epoch this step belongs to
    batch: int  # batches done in this epoch
    batches_per_epoch: int | None
    loss: float
    tokens: int  # target tokens in this batch (all ranks)
    lr: float
    elapsed: float  # training seconds, summed over resumes
    tokens_per_s: float  # since the last eval (all ranks)
    skipped: bool  # the update was skipped (non-finite loss or gradient)
    skipped_steps: int
    progress: float  # fraction of the budget used, 0..1 (max over steps/epochs/time budgets)
    total_steps: int | None


@dataclass
class EvalInfo:
    """``on_eval(info)``: after every validation. ``metrics`` are the task's (``loss``, ``ppl``...)."""

    step: int
    epoch: int  # 1-based epoch of the latest step (after epoch 1 ends: 1)
    metrics: dict[str, float]
    train_loss: float  # mean nats/token over the steps since the previous eval
    lr: float
    elapsed: float
    tokens_per_s: float
    is_best: bool
    best_metrics: dict[str, float]
    best_step: int
    bad_evals: int  # evals in a row without improvement (early stopping counter)
    progress: float


@dataclass
class TrainResult:
    """What ``train`` returns. The model holds the BEST weights (by ``best_metric``) on return."""

    best_metrics: dict[str, float]
    last_metrics: dict[str, float]
    best_step: int
    steps: int
    epochs: int  # completed epochs
    elapsed: float
    stop_reason: str  # max_steps | max_time | epochs | early_stopping (non_finite: TrainingError.result)
    skipped_steps: int
    history: list[dict] = field(default_factory=list)  # one record per eval (as in metrics.jsonl)
    tokens: int = 0  # of ``unit``: tokens, or examples for a classifier
    tokens_per_s: float = 0.0
    unit: str = "tokens"
    is_main: bool = True  # rank 0 (or no DDP): the process that should publish
    world_size: int = 1
    run_dir: Path | None = None
    loss_scale: dict | None = None  # fp16: the loss scale at the end and the overflows it skipped

    def to_dict(self) -> dict:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir) if self.run_dir else None
        return d


class Callback:
    """Base class with no-op hooks; subclass and override what you need (duck typing also works)."""

    def on_train_start(self, info: StartInfo) -> None: ...

    def on_step(self, info: StepInfo) -> None: ...

    def on_eval(self, info: EvalInfo) -> None: ...

    def on_end(self, result: TrainResult) -> None: ...


def train(
    task: TrainTask,
    cfg: TrainConfig,
    *,
    run_dir: Path | None,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    model_config: dict | None = None,
    run_meta: dict | None = None,
    budget=None,
) -> TrainResult:
    """Train ``task.model``; return a TrainResult with the model holding the best weights.

    - ``run_dir``: where checkpoints (``ckpt-<step>/`` + the ``checkpoint`` pointer) and
      ``metrics.jsonl`` go; None trains without them. A fresh run refuses a run dir that already
      holds checkpoints (CheckpointError saying to resume or pick another dir).
    - ``resume=True`` continues the run in ``run_dir`` exactly where its last checkpoint left off
      (weights, optimizer, schedule, data position, task state, RNG, best-so-far, counters, time
      used); missing/corrupt checkpoints or a different ``model_config`` raise CheckpointError.
      Budgets (epochs/max_steps/max_time) may be raised on resume to train longer.
    - ``callbacks``: objects with any of ``on_train_start``/``on_step``/``on_eval``/``on_end``;
      called on rank 0 only. An exception from a callback aborts training (no checkpoint is written).
    - ``model_config``: the model's config as JSON; stored in checkpoints and compared on resume.
    - ``budget``: a ``rnntool.training.time_budget.TimeBudget`` for the whole command: training stops early
      enough that the final validation, checkpoint and publishing fit in it, and records what the
      time went to.
    - ``run_meta``: any JSON the caller wants back on resume (e.g. data paths, tokenizer, name);
      written to ``run_dir/run.json`` with the TrainConfig; read it with
      ``rnntool.training.checkpoint.read_run_info(run_dir)``.

    With a ``run_dir`` and no DDP, Ctrl-C / SIGTERM finish the current step, write a checkpoint and
    raise TrainingInterrupted (a second Ctrl-C stops at once).

    Raises TrainingError after ``cfg.max_bad_steps`` non-finite steps in a row (the model then holds
    the best — or last finite — weights and the exception carries ``.result``), CheckpointError,
    ConfigError for invalid settings.
    """
    from rnntool.training.loop import run_training

    return run_training(
        task, cfg.validate(), run_dir=run_dir, resume=resume, callbacks=list(callbacks),
        model_config=model_config, run_meta=run_meta, budget=budget,
    )


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU + CUDA). Call before building the model."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def move_to(obj: Any, device) -> Any:
    """Move tensors — alone, in tuples/lists/dicts, or objects with ``.to(device)`` — to ``device``."""
    import torch

    from rnntool.runtime import to_device

    if isinstance(obj, torch.Tensor):
        return to_device(obj, device)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to(x, device) for x in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(x, device) for x in obj)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    to = getattr(obj, "to", None)
    if callable(to):
        return to(device)
    return obj
