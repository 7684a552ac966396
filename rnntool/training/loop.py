"""The body of ``rnntool.training.trainer.train`` (see there for the contract).

Per step: forward under optional bf16/fp16 autocast -> backward of nll_sum / n_tokens (times fp16's
loss scale, rnntool/training/loss_scale.py) -> one total gradient norm -> ONE host sync of (loss, norm)
[+ tokens and rank 0's clock under DDP, in one all-reduce] -> skip the update if either is non-finite
(fp16: an overflow halves the scale), else unscale, clip, set the scheduled lr, step.
Evaluations, checkpoints and metrics lines happen at their own intervals, never per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from rnntool.training import distributed as dist_utils
from rnntool.kinds.catalog import METRICS_FILE
from rnntool.training.checkpoint import RUN_INFO, CheckpointWriter, has_checkpoint, write_run_info
from rnntool.errors import CheckpointError, ConfigError, DiskFull, TrainingError
from rnntool.layers.precision import check_training_device
from rnntool.training.loss_scale import DynamicLossScale
from rnntool.training.optim import LRSchedule, build_optimizer, drop_frozen_grads, has_group_schedule, set_lr
from rnntool.runtime import prepare_device
from rnntool.training.state_codec import restore_rng
from rnntool.training.trainer import (
    EvalInfo,
    StartInfo,
    StepInfo,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
    move_to,
    seed_everything,
)
from rnntool.textio import finite_json
from rnntool.training.state import (
    LoopState,
    MetricsLog,
    StopSignals,
    ppl,
    restore_loop_checkpoint,
    save_loop_checkpoint,
    snapshot_weights,
)

_END = object()
RESERVE_SECONDS, RESERVE_FRACTION = 1.0, 0.02  # the budget's margin: process exit (~0.4 s), logging, timing noise
DIVERGENCE_FACTOR = 10.0  # a validation loss this many times a uniform guess's means the run diverged
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # --precision -> autocast dtype


def run_training(task, cfg: TrainConfig, *, run_dir, resume, callbacks, model_config, run_meta,
                 budget=None) -> TrainResult:
    device = prepare_device(cfg.device)
    check_training_device(cfg.precision, device.type)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if resume and run_dir is None:
        raise ConfigError("resuming needs the run directory (--resume RUN_DIR)")
    ctx = dist_utils.setup(device.type)
    try:
        if ctx.enabled and device.type == "cuda":
            device = torch.device("cuda", ctx.local_rank)
        loop = _Loop(task, cfg, ctx, device, Path(run_dir) if run_dir else None, callbacks, model_config, budget)
        loop.prepare(resume=resume, run_meta=run_meta)
        result = loop.run()
        # every rank leaves the group together: a rank that tore gloo down while another was still in its last
        # collective was seen to abort ("terminate called without an active exception") at exit
        dist_utils.barrier(ctx)
        return result
    finally:
        dist_utils.teardown(ctx)


def _finite(x: float) -> bool:
    return math.isfinite(x)


def _scaled_mean(nll_sum, n_tokens: int, scale: float):
    """The loss to backpropagate: the mean over the tokens, times fp16's loss scale (else exactly the mean)."""
    loss = nll_sum / max(n_tokens, 1)
    return loss * scale if scale != 1.0 else loss


class _Loop:
    def __init__(self, task, cfg: TrainConfig, ctx, device, run_dir: Path | None, callbacks, model_config,
                 budget=None):
        self.task, self.cfg, self.ctx, self.device = task, cfg, ctx, device
        self.run_dir = run_dir
        self.is_main = ctx.is_main
        self.callbacks = list(callbacks) if self.is_main else []
        self.model_config = json.loads(json.dumps(model_config)) if model_config is not None else None
        self.model: torch.nn.Module = task.model.to(device)
        self.train_model = self.model  # DDP wrapper under torchrun
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise TrainingError("the model has no trainable parameters")
        groups = task.param_groups(self.model) if hasattr(task, "param_groups") else None
        self.optimizer = build_optimizer(groups or self.params, cfg)
        self.grouped = has_group_schedule(self.optimizer)  # rates change per group: set them every step
        dtype = AUTOCAST_DTYPES.get(cfg.precision)
        self.autocast = (
            (lambda: torch.autocast(device_type=device.type, dtype=dtype)) if dtype is not None
            else contextlib.nullcontext
        )
        self.scaler: DynamicLossScale | None = None  # fp16: set from the (restored) state when the loop starts
        # --ema: the moving average of self.params (same order, same device), what validation sees and publishing keeps
        self.ema: list[torch.Tensor] | None = ([p.detach().clone() for p in self.params] if cfg.ema else None)
        self.writer = CheckpointWriter(run_dir, keep=cfg.keep_checkpoints) if run_dir and self.is_main else None
        self.metrics = MetricsLog(run_dir / METRICS_FILE if run_dir and self.is_main else None)
        self.s = LoopState()  # position, counters, best-so-far: everything resumable that is JSON
        self.best_state: dict[str, torch.Tensor] | None = None  # best weights (CPU), saved as safetensors
        self.last_saved_step: int | None = None
        self.last_saved_stop: str | None = None  # stopped_by as that checkpoint recorded it
        self.resumed = False
        self._pending_restore: dict | None = None
        self.signals = StopSignals(enabled=not ctx.enabled and run_dir is not None)
        self.speed_tokens = 0
        self.speed_t0 = time.perf_counter()
        self.t0 = time.monotonic()  # reset when the loop starts; elapsed() = time_used + since t0
        self.lr = cfg.lr
        self.total_steps: int | None = None
        self.batches_per_epoch: int | None = None
        self.schedule: LRSchedule | None = None
        # The command's time budget (rnntool.training.time_budget): stop while what follows training still fits.
        self.budget = budget
        self.deadline: float | None = None  # in elapsed() seconds: when the command's budget runs out
        self.probe_at: float | None = None  # validate by then to learn what a validation costs
        self.eval_cost: float | None = None  # seconds of the latest validation (every rank knows it)
        self.save_cost = 0.0  # seconds of the slowest checkpoint so far (rank 0)
        self.reserve = 0.0  # rank 0's estimate of what follows training, synced with the clock
        self.eval_seconds = self.save_seconds = 0.0  # spent in this process
        self.start_note: str | None = None  # told to the callbacks when training starts

    # -- setup ------------------------------------------------------------------------------------
    def prepare(self, *, resume: bool, run_meta: dict | None) -> None:
        cfg, ctx = self.cfg, self.ctx
        self.task.set_shard(ctx.rank, ctx.world_size)
        self.batches_per_epoch = self._num_batches(0)
        budgets = []
        if cfg.max_steps is not None:
            budgets.append(cfg.max_steps)
        if cfg.epochs is not None and self.batches_per_epoch:
            budgets.append(cfg.epochs * -(-self.batches_per_epoch // cfg.accumulate))  # steps: ceil per epoch
        self.total_steps = min(budgets) if budgets else None
        self.schedule = LRSchedule(cfg, total_steps=self.total_steps, max_time=cfg.max_time)
        started = self.run_dir is not None and (self.run_dir / RUN_INFO).is_file()
        if resume and started and not has_checkpoint(self.run_dir):
            resume = False  # killed before its first checkpoint: the run starts over, same settings
            self.start_note = f"{self.run_dir} holds no checkpoint yet: training the run from its start"
        if resume:
            self._pending_restore = restore_loop_checkpoint(self)  # applied once the data is positioned
            self.resumed = True
        else:
            if self.run_dir is not None and has_checkpoint(self.run_dir):
                raise CheckpointError(
                    f"{self.run_dir} already holds a training run; continue it with --resume {self.run_dir}, "
                    "or delete it / choose another --run-dir"
                )
            seed_everything(cfg.seed + ctx.rank)
            if self.run_dir is not None and self.is_main:
                write_run_info(self.run_dir, train=cfg.to_dict(), model=self.model_config, meta=run_meta)
                (self.run_dir / METRICS_FILE).write_text("", encoding="utf-8")
        if self.budget is not None:
            if self.budget.extends_run and self.budget.limit is not None:  # --resume --max-time X: X more
                self.cfg = cfg = dataclasses.replace(cfg, max_time=self.s.time_used + self.budget.limit)
                self.schedule.max_time = cfg.max_time
            self.budget.settle(cfg.max_time, self.s.time_used)
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.ddp_find_unused_parameters,
            )
        self.lr = self.schedule.lr(self.s.step, self.s.time_used)
        set_lr(self.optimizer, self.lr, self.s.step)

    def restore_ema(self, saved: list | None) -> None:
        """A checkpoint's moving average (a run started without --ema, or a resume that turns it on, averages
        from the restored weights on)."""
        if self.ema is None:
            return
        if saved is not None and len(saved) == len(self.params) and all(
                tuple(a.shape) == tuple(p.shape) for a, p in zip(saved, self.params)):
            self.ema = [a.to(device=p.device, dtype=p.dtype) for a, p in zip(saved, self.params)]
        else:
            self.ema = [p.detach().clone() for p in self.params]
            self.s.ema_updates = 0

    def _update_ema(self) -> None:
        """avg <- d avg + (1 - d) weights after an update, d = min(--ema, (1 + n) / (10 + n)) after n updates
        (TensorFlow's ExponentialMovingAverage with num_updates: early weights fade fast)."""
        n = self.s.ema_updates
        decay = min(self.cfg.ema, (1 + n) / (10 + n))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1.0 - decay)
        self.s.ema_updates = n + 1

    @contextlib.contextmanager
    def _averaged(self):
        """The moving average in the model's weights for the duration (nothing to do without --ema)."""
        if self.ema is None:
            yield
            return
        with torch.no_grad():
            current = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, current)

    def _num_batches(self, epoch: int) -> int | None:
        n = self.task.num_batches(epoch)
        n = None if n is None else int(n)
        if self.ctx.enabled:  # every rank must take the same number of steps
            have = dist_utils.all_reduce_min_int(-1 if n is None else 1, self.ctx)
            n = dist_utils.all_reduce_min_int(n if n is not None else 0, self.ctx) if have > 0 else None
        return n

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def _epoch_label(self) -> int:
        """1-based epoch of the latest step (what logs show): epoch 1 during and right after the first."""
        return self.s.epoch + 1 if self.s.batch_in_epoch else max(self.s.epoch, 1)

    def elapsed(self) -> float:
        return self.s.time_used + (time.monotonic() - self.t0)

    def _progress(self, elapsed: float) -> float:
        cfg = self.cfg
        fractions = [0.0]
        if cfg.max_steps:
            fractions.append(self.s.step / cfg.max_steps)
        if cfg.epochs and self.batches_per_epoch:
            fractions.append((self.s.epoch * self.batches_per_epoch + self.s.batch_in_epoch)
                             / (cfg.epochs * self.batches_per_epoch))
        if cfg.max_time:
            fractions.append(elapsed / cfg.max_time)
        return min(1.0, max(fractions))

    def _tokens_per_s(self) -> float:
        dt = time.perf_counter() - self.speed_t0
        return self.speed_tokens / dt if dt > 0 else 0.0

    def _call(self, hook: str, info: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(info)

    def _budget_reason(self, elapsed: float) -> str | None:
        cfg = self.cfg
        if cfg.max_steps is not None and self.s.step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_time is not None and elapsed >= cfg.max_time:
            return "max_time"
        if self.deadline is not None and elapsed + self.reserve >= self.deadline:
            return "max_time"
        if cfg.epochs is not None and self.s.epoch >= cfg.epochs:
            return "epochs"
        return None

    # -- the loop ---------------------------------------------------------------------------------
    def _check_signal(self) -> None:
        if self.signals.signum is None:
            return
        self._save()
        err = TrainingInterrupted(
            f"interrupted ({self.signals.name}) at step {self.s.step}; checkpoint saved — continue with "
            f"--resume {self.run_dir}"
        )
        err.exit_code = 128 + self.signals.signum
        raise err

    def run(self) -> TrainResult:
        with self.signals:
            return self._run()

    def _run(self) -> TrainResult:
        cfg = self.cfg
        self.t0 = time.monotonic()
        if cfg.precision == "fp16":
            self.scaler = DynamicLossScale.from_dict(self.s.loss_scale)
            self.s.loss_scale = self.scaler.to_dict()
        else:  # a resume in another precision: no scale to report
            self.scaler, self.s.loss_scale = None, None
        note = "; ".join(n for n in (self.start_note, self._start_budget()) if n) or None
        self.s.stopped_by = None  # this command's stop is recorded anew (an interrupt records none)
        self.model.train()
        self._call("on_train_start", StartInfo(
            step=self.s.step, epoch=self.s.epoch, resumed=self.resumed, total_steps=self.total_steps,
            max_time=cfg.max_time, batches_per_epoch=self.batches_per_epoch, device=str(self.device),
            world_size=self.ctx.world_size, num_parameters=sum(p.numel() for p in self.params),
            run_dir=self.run_dir, config=cfg, note=note, unit=getattr(self.task, "count_unit", "tokens"),
        ))
        stop = self._budget_reason(self._synced_elapsed())
        if stop is None and cfg.patience is not None and self.s.bad_evals >= cfg.patience:
            stop = "early_stopping"
        while stop is None:
            n_batches = self._num_batches(self.s.epoch) if self.s.epoch else self.batches_per_epoch
            # Resume: the checkpoint was taken after `batch_in_epoch` batches of this epoch were drawn
            # (or, at 0, before the epoch's iterator existed) — restore task state and RNG at that point.
            if self.s.batch_in_epoch == 0:
                self._apply_pending_restore()
            batches = iter(self.task.batches(self.s.epoch))
            if self.s.batch_in_epoch:
                for _ in itertools.islice(batches, self.s.batch_in_epoch):
                    pass
                self._apply_pending_restore()
            produced = self.s.batch_in_epoch > 0
            while n_batches is None or self.s.batch_in_epoch < n_batches:
                group = []  # the batches of one step (--accumulate), the epoch's last step may have fewer
                while len(group) < cfg.accumulate and (n_batches is None
                                                       or self.s.batch_in_epoch + len(group) < n_batches):
                    batch = next(batches, _END)
                    if self.ctx.enabled and n_batches is None:
                        if dist_utils.all_reduce_min_int(0 if batch is _END else 1, self.ctx) == 0:
                            break
                    elif batch is _END:
                        break
                    group.append(batch)
                if not group:
                    break
                elapsed = self._train_step(group)
                produced = True
                stop = self._budget_reason(elapsed)
                evaluated = False
                if (cfg.eval_every and self.s.step % cfg.eval_every == 0) or self._probe_due(elapsed, stop):
                    if stop is None and self._last_eval_in_budget(elapsed):
                        stop = "max_time"  # this validation is the final one
                    evaluated = True
                    if self._evaluate() and stop is None:
                        stop = "early_stopping"
                if evaluated or (cfg.save_every and self.s.step % cfg.save_every == 0):
                    self._save()
                if stop is not None:
                    break
                self._check_signal()
            if stop is not None:
                break
            if not produced:
                raise TrainingError(
                    f"epoch {self.s.epoch + 1} gave no training batches; give more training data "
                    "(or a smaller batch size)"
                )
            self.s.epoch += 1
            self.s.batch_in_epoch = 0
            elapsed = self._synced_elapsed()
            stop = self._budget_reason(elapsed)
            if cfg.eval_every is None:
                if stop is None and self._last_eval_in_budget(elapsed):
                    stop = "max_time"  # this validation is the final one
                if self._evaluate() and stop is None:
                    stop = "early_stopping"
                self._save()
            elif stop is not None:
                self._save()
            if stop is None:
                self._check_signal()
        return self._finish(stop)

    def _apply_pending_restore(self) -> None:
        if self._pending_restore is not None:
            self.task.load_state_dict(self._pending_restore.get("task") or {})
            restore_rng(self._pending_restore["rng"])
            self._pending_restore = None

    def _synced_elapsed(self) -> float:
        """Rank 0's clock (and its estimate of what follows training, ``self.reserve``) on every rank:
        time-budget decisions must agree."""
        elapsed, self.reserve = self.elapsed(), self._reserve()
        if self.ctx.enabled:
            t = torch.tensor([elapsed, self.reserve] if self.is_main else [0.0, 0.0], dtype=torch.float64,
                             device=dist_utils.comm_device(self.ctx))
            elapsed, self.reserve = dist_utils.all_reduce_sum(t, self.ctx).tolist()
        return elapsed

    # -- the time budget --------------------------------------------------------------------------
    def _start_budget(self) -> str | None:
        """Set the deadline from the command's budget (rank 0's, on every rank: decisions must agree);
        a note when nothing is left to train, TrainingError when a new run has no time to train."""
        if self.budget is None:
            return None
        self.budget.add("preparing", self.budget.elapsed())
        plan = self._budget_plan() if self.is_main else None
        plan = dist_utils.broadcast_json(plan, self.ctx)
        if plan is None:
            return None
        if plan.get("error"):
            raise TrainingError(plan["error"])
        self.deadline, self.probe_at = plan["deadline"], plan["probe_at"]
        return plan.get("note")

    def _budget_plan(self) -> dict | None:
        remaining = self.budget.remaining()
        if remaining is None:
            return None
        spent = self.resumed and not self.budget.extends_run and self.s.stopped_by == "max_time"
        plan = {"deadline": self.s.time_used + (0.0 if spent else remaining),
                "probe_at": self.s.time_used + remaining / 2}
        if spent or (self.resumed and remaining <= self._reserve()):
            plan["note"] = (f"the run's time budget is spent ({self.s.time_used:.1f}s of training so far): "
                            "publishing it without training more; give --max-time to train for longer")
        elif remaining <= self._reserve():
            plan["error"] = (
                f"--max-time {self.budget.limit:g}s leaves no time to train: {self.budget.elapsed():.1f}s went to "
                f"preparing data and tokenizers, and about {self._reserve():.1f}s must be kept for the final "
                "validation, checkpoint and publishing; give a longer --max-time"
            )
        return plan

    def _reserve(self) -> float:
        """Seconds that follow training: validations (the final one, and --promote's two), the last
        checkpoint and publishing (each about a checkpoint's cost), and a margin."""
        if self.budget is None or self.budget.limit is None:
            return 0.0
        evals = (self.eval_cost or 0.0) * self.budget.evals_after
        return evals + 2 * self.save_cost + RESERVE_SECONDS + RESERVE_FRACTION * self.budget.limit

    def _last_eval_in_budget(self, elapsed: float) -> bool:
        """A validation is due: True when, after it, what follows training no longer fits."""
        return self.deadline is not None and elapsed + (self.eval_cost or 0.0) + self.reserve >= self.deadline

    def _probe_due(self, elapsed: float, stop: str | None) -> bool:
        """Validate once by half-time when no validation was timed yet (its cost sets the reserve)."""
        return stop is None and self.eval_cost is None and self.probe_at is not None and elapsed >= self.probe_at

    def _accumulate(self, batches: list, scale: float):
        """The gradients of several batches' summed loss, divided by all their tokens (one batch of them
        all, in the memory of one), times ``scale`` (fp16's loss scale, else 1): returns (summed NLL,
        tokens). DDP syncs gradients on the last only."""
        nll_total, n_total = None, 0
        provisional = 0  # fp16: the tokens the earlier batches are divided by until all are counted
        for i, batch in enumerate(batches):
            batch = move_to(batch, self.device)
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.train_model, "no_sync") else \
                self.train_model.no_sync()
            with sync:
                with self.autocast():
                    nll_sum, n_tokens = self.task.loss(self.train_model, batch)
                n_total += int(n_tokens)
                nll_total = nll_sum.detach() if nll_total is None else nll_total + nll_sum.detach()
                if not last:
                    if scale == 1.0:
                        nll_sum.backward()  # summed; normalised with all the tokens below
                    else:  # fp16: a summed loss times the scale would overflow; divide by an estimate now
                        provisional = provisional or max(int(n_tokens), 1) * len(batches)
                        (nll_sum * (scale / provisional)).backward()
                    continue
                # every token is counted now: normalise what the earlier batches left, then the last
                # batch's backward (under DDP the one that averages gradients across processes, so each
                # process contributes its own normalised gradient, as in a step of one batch)
                for p in self.params:
                    if p.grad is not None:
                        if scale == 1.0:
                            p.grad.div_(max(n_total, 1))
                        else:
                            p.grad.mul_(provisional / max(n_total, 1))
                _scaled_mean(nll_sum, n_total, scale).backward()
        return nll_total, n_total

    def _train_step(self, batches: list) -> float:
        """One step over ``batches`` (one, or --accumulate's): forward, backward, guard, update. Returns the
        (rank-0-synced) elapsed time."""
        scale = self.scaler.scale if self.scaler is not None else 1.0
        if len(batches) == 1:
            batch = move_to(batches[0], self.device)
            with self.autocast():
                nll_sum, n_tokens = self.task.loss(self.train_model, batch)
            n_tokens = int(n_tokens)
            _scaled_mean(nll_sum, n_tokens, scale).backward()
        else:
            nll_sum, n_tokens = self._accumulate(batches, scale)
        if self.grouped:
            drop_frozen_grads(self.optimizer, self.s.step)
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = (torch.nn.utils.get_total_norm(grads, foreach=True) if grads
                else torch.zeros((), device=self.device))
        check = torch.stack([nll_sum.detach().double(), norm.detach().double()])
        if self.ctx.enabled:  # one all-reduce: global loss + tokens, any rank's NaN, rank 0's clock
            clock = [self.elapsed(), self._reserve()] if self.is_main else [0.0, 0.0]
            extra = torch.tensor([float(n_tokens), *clock], dtype=torch.float64, device=check.device)
            check = dist_utils.all_reduce_sum(torch.cat([check, extra]), self.ctx)
            loss_sum, grad_norm, tokens, elapsed, self.reserve = check.tolist()  # the one host sync of this step
            tokens = int(tokens)
        else:
            loss_sum, grad_norm = check.tolist()  # the one host sync of this step
            tokens, elapsed, self.reserve = n_tokens, self.elapsed(), self._reserve()
        # fp16: scaled gradients that overflow (the loss itself finite) halve the scale and skip the update;
        # a non-finite loss, or an overflow at the scale's floor, is a non-finite step as without a scale
        overflowed = (self.scaler is not None and _finite(loss_sum) and not _finite(grad_norm)
                      and not self.scaler.exhausted)
        skipped = not overflowed and not (_finite(loss_sum) and _finite(grad_norm))
        if self.scaler is not None and not skipped:
            self.scaler.update(overflowed)
            self.s.loss_scale = self.scaler.to_dict()
        if skipped:
            self.s.skipped_steps += 1
            self.s.bad_in_row += 1
            if self.s.bad_in_row == 1:
                self.s.first_bad_step = self.s.step + 1
        else:  # the loss counts; after an overflow the update waits for a smaller scale
            if not overflowed:
                if scale != 1.0:  # exact: a power of two
                    torch._foreach_mul_(grads, 1.0 / scale)
                    norm = norm / scale
                if self.cfg.clip > 0:
                    torch.nn.utils.clip_grads_with_norm_(self.params, self.cfg.clip, norm, foreach=True)
                if not self.schedule.is_constant or self.grouped:
                    self.lr = self.schedule.lr(self.s.step, elapsed)
                    set_lr(self.optimizer, self.lr, self.s.step)
                self.optimizer.step()
                if self.ema is not None:
                    self._update_ema()
                self.s.bad_in_row = 0
            self.s.eval_win[0] += loss_sum
            self.s.eval_win[1] += tokens
            self.s.log_win[0] += loss_sum
            self.s.log_win[1] += tokens
        self.optimizer.zero_grad(set_to_none=True)
        self.s.step += 1
        self.s.batch_in_epoch += len(batches)
        self.s.tokens_total += tokens
        self.speed_tokens += tokens
        if self.s.bad_in_row >= self.cfg.max_bad_steps:
            self._diverged()
        if self.callbacks:
            self._call("on_step", StepInfo(
                step=self.s.step, epoch=self._epoch_label, batch=self.s.batch_in_epoch,
                batches_per_epoch=self.batches_per_epoch,
                loss=loss_sum / tokens if tokens and not skipped else float("nan"), tokens=tokens,
                lr=self.lr, elapsed=elapsed, tokens_per_s=self._tokens_per_s(), skipped=skipped,
                skipped_steps=self.s.skipped_steps, progress=self._progress(elapsed), total_steps=self.total_steps,
            ))
        if self.metrics.path is not None and self.s.step % self.cfg.log_every == 0:
            loss = self.s.log_win[0] / self.s.log_win[1] if self.s.log_win[1] else float("nan")
            self.metrics.append({
                "type": "train", "step": self.s.step, "epoch": self._epoch_label, "elapsed": round(elapsed, 3),
                "lr": self.lr, "loss": loss, "ppl": ppl(loss), "tokens_per_s": round(self._tokens_per_s(), 1),
                "skipped_steps": self.s.skipped_steps,
            })
            self.s.log_win = [0.0, 0]
        return elapsed

    # -- evaluation, best weights, early stopping ---------------------------------------------------
    def _is_better(self, value: float) -> bool:
        if not _finite(value):
            return False
        if self.s.best_value is None:
            return True
        return value < self.s.best_value if self.cfg.best_mode == "min" else value > self.s.best_value

    def _evaluate(self) -> bool:
        """Validate (rank 0), update best/patience/plateau; return True when patience ran out."""
        cfg = self.cfg
        timed = None
        if self.is_main:
            t0 = time.monotonic()
            self.model.eval()
            try:
                with torch.no_grad(), self.autocast(), self._averaged():
                    raw = self.task.evaluate(self.model)
            finally:
                self.model.train()
            metrics = {k: float(v) for k, v in dict(raw).items()}
            if "loss" in metrics and "ppl" not in metrics and getattr(self.task, "reports_perplexity", True):
                metrics["ppl"] = ppl(metrics["loss"])
            timed = {"metrics": metrics, "seconds": time.monotonic() - t0}
        timed = dist_utils.broadcast_json(timed, self.ctx)
        metrics, self.eval_cost = timed["metrics"], timed["seconds"]
        self.eval_seconds += self.eval_cost
        if cfg.best_metric not in metrics:
            raise TrainingError(
                f"validation gave no '{cfg.best_metric}' (got {', '.join(sorted(metrics)) or 'nothing'}); "
                "choose a best metric the task reports"
            )
        value = metrics[cfg.best_metric]
        diverged = self._divergence(metrics)
        improved = diverged is None and self._is_better(value)
        if improved:
            self.s.best_value, self.s.best_metrics, self.s.best_step = value, dict(metrics), self.s.step
            with self._averaged():
                self.best_state = snapshot_weights(self.model)
            self.s.bad_evals = 0
        else:
            self.s.bad_evals += 1
        self.schedule.on_eval(value)
        if cfg.schedule == "plateau":
            self.lr = self.schedule.lr(self.s.step, self.elapsed())
            set_lr(self.optimizer, self.lr, self.s.step)
        elapsed = self.elapsed()
        train_loss = self.s.eval_win[0] / self.s.eval_win[1] if self.s.eval_win[1] else float("nan")
        tps = self._tokens_per_s()
        record = {
            "type": "eval", "step": self.s.step, "epoch": self._epoch_label, "elapsed": round(elapsed, 3), "lr": self.lr,
            "train_loss": train_loss, "train_ppl": ppl(train_loss) if _finite(train_loss) else float("nan"),
            **{f"val_{k}": v for k, v in metrics.items()},
            "tokens_per_s": round(tps, 1), "skipped_steps": self.s.skipped_steps, "best": improved,
        }
        if self.scaler is not None:
            record["loss_scale"], record["overflow_steps"] = self.scaler.scale, self.scaler.overflows
        record = finite_json(record)
        self.s.history.append(record)
        self.metrics.append(record)
        self.s.last_metrics = dict(metrics)
        self.s.last_eval_step = self.s.step
        self._call("on_eval", EvalInfo(
            step=self.s.step, epoch=self._epoch_label, metrics=dict(metrics), train_loss=train_loss, lr=self.lr,
            elapsed=elapsed, tokens_per_s=tps, is_best=improved, best_metrics=dict(self.s.best_metrics),
            best_step=self.s.best_step if self.s.best_step is not None else 0, bad_evals=self.s.bad_evals,
            progress=self._progress(elapsed),
        ))
        if diverged is not None:
            raise TrainingError(
                f"the run diverged at step {self.s.step}: {diverged}; nothing was published; lower --lr "
                f"(now {self.lr:g}) or set --clip (now {cfg.clip:g}), and train again"
            )
        self.s.eval_win = [0.0, 0]
        self.speed_tokens = 0
        self.speed_t0 = time.perf_counter()
        return cfg.patience is not None and self.s.bad_evals >= cfg.patience

    def _divergence(self, metrics: dict[str, float]) -> str | None:
        """Why these validation metrics mean the run diverged (None when they don't): a non-finite
        loss or key metric, or a loss far above a uniform guess's (``task.chance_loss``, ln V)."""
        if not getattr(self.task, "has_validation", True):
            return None  # nothing was measured
        for key in dict.fromkeys(("loss", self.cfg.best_metric)):
            if key in metrics and not _finite(metrics[key]):
                return f"validation {key} is {metrics[key]}"
        chance = getattr(self.task, "chance_loss", None)
        loss = metrics.get("loss")
        if chance and loss is not None and loss > DIVERGENCE_FACTOR * chance:
            return (f"validation loss {loss:.4g} nats/token is over {DIVERGENCE_FACTOR:g}x that of a uniform "
                    f"guess ({chance:.2f})")
        return None

    # -- the end ----------------------------------------------------------------------------------
    def _save(self) -> None:
        t0 = time.monotonic()
        with DiskFull.translating(self.run_dir):  # say where, and that nothing was published
            save_loop_checkpoint(self)
        seconds = time.monotonic() - t0
        self.save_cost = max(self.save_cost, seconds)
        self.save_seconds += seconds

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.ema is not None:  # no validation improved (nothing measured): the average, as --ema asks
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.ema)
        for name, p in self.model.state_dict().items():
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                raise TrainingError(
                    f"the trained weights are not finite ({name}); lower --lr or set --clip, and train again"
                )

    def _result(self, stop_reason: str) -> TrainResult:
        elapsed = self.elapsed()
        return TrainResult(
            best_metrics=dict(self.s.best_metrics), last_metrics=dict(self.s.last_metrics),
            best_step=self.s.best_step or 0, steps=self.s.step, epochs=self.s.epoch, elapsed=elapsed,
            stop_reason=stop_reason, skipped_steps=self.s.skipped_steps, history=list(self.s.history),
            tokens=self.s.tokens_total, tokens_per_s=self.s.tokens_total / elapsed if elapsed > 0 else 0.0,
            unit=getattr(self.task, "count_unit", "tokens"),
            is_main=self.is_main, world_size=self.ctx.world_size, run_dir=self.run_dir,
            loss_scale=dict(self.s.loss_scale) if self.s.loss_scale else None,
        )

    def _finish(self, stop: str) -> TrainResult:
        if self.s.step and self.s.last_eval_step != self.s.step:
            self._evaluate()
        self.s.stopped_by = stop
        self._save()
        self._restore_best()
        if self.budget is not None:
            for phase, seconds in (("validating", self.eval_seconds), ("checkpoints", self.save_seconds),
                                   ("training", time.monotonic() - self.t0 - self.eval_seconds - self.save_seconds)):
                self.budget.add(phase, seconds)
        result = self._result(stop)
        self._call("on_end", result)
        return result

    def _diverged(self) -> None:
        ckpt = f"; the last good checkpoint is in {self.run_dir}" if self.run_dir and self.last_saved_step else ""
        err = TrainingError(
            f"loss or gradient was not finite for {self.s.bad_in_row} steps in a row (steps "
            f"{self.s.first_bad_step}-{self.s.step}), stopped at step {self.s.step}; nothing was published; lower "
            f"--lr or set --clip (e.g. --clip 1.0); the best weights so far are kept{ckpt}"
        )
        self._restore_best()
        err.result = self._result("non_finite")
        raise err
