"""What the training loop keeps outside itself: checkpoints of its whole state and their restore,
the ``metrics.jsonl`` log, weight snapshots, and the Ctrl-C / SIGTERM stop request.

``save_loop_checkpoint(loop)`` captures everything a resume needs (weights, best weights,
optimizer, schedule, counters, data position, task state, RNG of every rank) and hands it to
``rnntool.training.checkpoint``; ``restore_loop_checkpoint(loop)`` checks that the checkpoint fits this run
(model config, model shapes, optimizer, number of processes) and puts it all back.
"""

from __future__ import annotations

import json
import math
import signal
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from rnntool.training import distributed as dist_utils
from rnntool.training.checkpoint import SavedCheckpoint, load_checkpoint
from rnntool.training.state_codec import capture_rng, pack_rank_state
from rnntool.errors import CheckpointError
from rnntool.textio import atomic_write_text, finite_json


@dataclass
class LoopState:
    """The loop's resumable position and counters; JSON as is (``state.json["state"]["loop"]``)."""

    step: int = 0  # batches processed (skipped non-finite ones included)
    epoch: int = 0  # 0-based epoch in progress
    batch_in_epoch: int = 0  # batches of that epoch done (the resume skips this many)
    time_used: float = 0.0  # training seconds before this process started (the --max-time budget)
    skipped_steps: int = 0
    bad_in_row: int = 0  # consecutive non-finite steps
    first_bad_step: int | None = None
    tokens_total: int = 0
    ema_updates: int = 0  # steps averaged into the moving average of the weights (--ema)
    best_value: float | None = None
    best_metrics: dict = field(default_factory=dict)
    best_step: int | None = None
    bad_evals: int = 0  # evals since the last improvement (early stopping)
    last_metrics: dict = field(default_factory=dict)
    last_eval_step: int | None = None
    history: list = field(default_factory=list)  # one record per eval
    eval_win: list = field(default_factory=lambda: [0.0, 0])  # nll sum, tokens since the last eval
    log_win: list = field(default_factory=lambda: [0.0, 0])  # ... since the last train line
    stopped_by: str | None = None  # the budget that ended the run (the final checkpoint records it)
    loss_scale: dict | None = None  # fp16: rnntool.training.loss_scale.DynamicLossScale.to_dict()


def ppl(loss: float) -> float:
    return float("inf") if loss >= 700 else math.exp(loss)  # NaN stays NaN


def snapshot_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (tied weights copied once and still shared)."""
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for k, v in model.state_dict().items():
        ident = (v.data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()), v.dtype, v.device)
        if ident not in copies:
            copies[ident] = v.detach().to("cpu", copy=True)
        out[k] = copies[ident]
    return out


class MetricsLog:
    """``metrics.jsonl``: appended a line at a time (rank 0 only, never per step)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def append(self, record: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(finite_json(record), allow_nan=False) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines written after the checkpoint (they will be written again)."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except ValueError:
                continue
        atomic_write_text(self.path, "".join(s + "\n" for s in kept))


class StopSignals:
    """Ctrl-C / SIGTERM ask the loop to stop at the next step boundary (``signum`` is set).

    A second signal interrupts at once (KeyboardInterrupt). Only in the main thread of a process
    not under torchrun (the launcher owns signals there); ``enabled=False`` makes it a no-op.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: int | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopSignals":
        if self.enabled:
            self._previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


# ---------------------------------------------------------------------------------------------
# Checkpoint <-> loop
# ---------------------------------------------------------------------------------------------
def save_loop_checkpoint(loop) -> None:
    """Checkpoint the loop now (every rank calls this at the same steps; rank 0 writes)."""
    if loop.run_dir is None or (loop.last_saved_step, loop.last_saved_stop) == (loop.s.step, loop.s.stopped_by):
        return  # saved already (a step's checkpoint is written again only to record why training stopped)
    ctx = loop.ctx
    rank_states = None
    if ctx.enabled:  # every rank's RNG + task state travels to rank 0 (as bytes, no pickle)
        meta, blob = pack_rank_state({"rng": capture_rng(), "task": loop.task.state_dict()})
        metas = dist_utils.gather_bytes(meta, ctx)
        blobs = dist_utils.gather_bytes(blob, ctx)
        if ctx.is_main:
            rank_states = {r: (metas[r], blobs[r]) for r in range(1, ctx.world_size)}
    loop.last_saved_step, loop.last_saved_stop = loop.s.step, loop.s.stopped_by
    if not ctx.is_main:
        return
    state = dict(
        loop=asdict(replace(loop.s, time_used=loop.elapsed())),
        schedule=loop.schedule.state_dict(), optimizer=loop.optimizer.state_dict(),
        rng=capture_rng(), task=loop.task.state_dict() or {},
        model_config=loop.model_config, train_config=loop.cfg.to_dict(), world_size=ctx.world_size,
    )
    if loop.ema is not None:
        state["ema"] = list(loop.ema)
    # then best.safetensors is a hard link to model's (with --ema the best weights are an average: not the current)
    best_is_current = loop.s.best_step == loop.s.step and loop.ema is None
    loop.writer.save(
        loop.s.step, model_state=loop.model.state_dict(),
        best_state=None if best_is_current else loop.best_state, best_step=loop.s.best_step,
        state=state, rank_states=rank_states,
    )


def restore_loop_checkpoint(loop) -> dict:
    """Load the run's newest checkpoint into the loop; return this rank's {"rng", "task"} state.

    RNG and task state are returned, not applied: the loop applies them once the data iterator is
    back at the checkpoint's position (skipping batches may run task code).
    """
    ckpt = load_checkpoint(loop.run_dir)
    st = ckpt.state
    _check_fits(loop, ckpt)
    try:
        loop.model.load_state_dict(ckpt.model_state)
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        raise CheckpointError(
            f"{ckpt.path}/model.safetensors does not fit this model ({lines[-1].strip() if lines else e}); "
            "resume with the same model settings"
        ) from None
    try:
        loop.optimizer.load_state_dict(st["optimizer"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"{ckpt.path}: optimizer state does not match --optimizer {loop.cfg.optimizer} ({e}); resume "
            "with the optimizer the run started with"
        ) from None
    loop.schedule.load_state_dict(st["schedule"])
    names = {f.name for f in fields(LoopState)}
    loop.s = LoopState(**{k: v for k, v in st["loop"].items() if k in names})
    loop.restore_ema(st.get("ema"))  # after the counters: a fresh average starts its ramp anew
    loop.best_state = ckpt.best_state
    loop.last_saved_step, loop.last_saved_stop = loop.s.step, loop.s.stopped_by
    if loop.writer is not None:
        loop.writer.last = SavedCheckpoint(ckpt.path, ckpt.step, ckpt.best_step)
    loop.metrics.truncate_after(loop.s.step)
    if loop.ctx.rank == 0:
        return {"rng": st["rng"], "task": st.get("task") or {}}
    rank_state = ckpt.rank_state(loop.ctx.rank)
    if rank_state is None:
        raise CheckpointError(f"{ckpt.path}: no state for rank {loop.ctx.rank}; resume with the same number "
                              "of processes")
    return rank_state


def _check_fits(loop, ckpt) -> None:
    st = ckpt.state
    saved_cfg, new_cfg = st.get("model_config"), loop.model_config
    if new_cfg is not None and saved_cfg is not None and saved_cfg != new_cfg:
        diff = (sorted(k for k in set(saved_cfg) | set(new_cfg) if saved_cfg.get(k) != new_cfg.get(k))
                if isinstance(saved_cfg, dict) and isinstance(new_cfg, dict) else [])
        shown = ", ".join(f"{k}: {saved_cfg.get(k)!r} -> {new_cfg.get(k)!r}" for k in diff[:4])
        raise CheckpointError(
            f"{ckpt.path}: the model config differs from the checkpoint's ({shown or 'not the same'}); resume "
            "with the same model settings, or start a new run in another --run-dir"
        )
    saved_world = int(st.get("world_size", 1))
    if saved_world != loop.ctx.world_size:
        raise CheckpointError(
            f"{ckpt.path}: written by {saved_world} process(es) but this run has {loop.ctx.world_size}; "
            f"resume with the same number of processes (torchrun --nproc-per-node {saved_world})"
        )
    saved_opt = (st.get("train_config") or {}).get("optimizer", loop.cfg.optimizer)
    if saved_opt != loop.cfg.optimizer:
        raise CheckpointError(
            f"{ckpt.path}: the run was trained with --optimizer {saved_opt}, not {loop.cfg.optimizer}; "
            f"resume with --optimizer {saved_opt}, or start a new run in another --run-dir"
        )
