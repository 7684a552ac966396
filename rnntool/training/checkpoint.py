"""Training checkpoints as safetensors + JSON — never pickle — written atomically, verified on load.

Layout of a run directory::

    run_dir/
      run.json              TrainConfig, model config and the caller's run_meta (written at start)
      metrics.jsonl         one JSON object per eval / train-loss report (see training_loop)
      checkpoint            pointer: the name of the newest complete checkpoint ("ckpt-00000400")
      ckpt-00000400/
        model.safetensors   current weights (tied weights stored once, aliases in state.json)
        best.safetensors    best-on-validation weights (hard link when unchanged; absent before
                            the first eval)
        state.safetensors   every other tensor: optimizer state, RNG states, task state
        state.json          everything else; tensors appear as {"__tensor__": "<key>"}
        rank1.safetensors   DDP: rank 1's RNG + task state (rank1.json alongside), ...
        manifest.json       sha256 + size of every file above, written last

A checkpoint is staged in ``.tmp-ckpt-…`` (each file fsynced), renamed into place, and only then the
``checkpoint`` pointer is replaced atomically, so a crash at any moment leaves the previous
checkpoint usable. Older checkpoint directories are pruned (``keep``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save_file as st_save_file

from rnntool import __version__
from rnntool.errors import CheckpointError
from rnntool.training.state_codec import (
    flatten_state,
    join_aliases,
    split_aliases,
    storable,
    unflatten_state,
    unpack_rank_state,
)
from rnntool.textio import atomic_write_text, fsync_dir, sha256_file

POINTER = "checkpoint"
RUN_INFO = "run.json"
MANIFEST = "manifest.json"
CKPT_PREFIX = "ckpt-"
FORMAT = "rnntool-checkpoint/1"


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def ckpt_name(step: int) -> str:
    return f"{CKPT_PREFIX}{step:08d}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True) + "\n", encoding="utf-8")


@dataclass
class SavedCheckpoint:
    path: Path
    step: int
    best_step: int | None


class CheckpointWriter:
    """Writes checkpoints into one run directory; remembers the last one to hard-link best weights."""

    def __init__(self, run_dir: Path, keep: int = 2) -> None:
        self.run_dir = Path(run_dir)
        self.keep = max(1, keep)
        self.last: SavedCheckpoint | None = None

    def save(
        self,
        step: int,
        *,
        model_state: dict[str, torch.Tensor],
        best_state: dict[str, torch.Tensor] | None,
        best_step: int | None,
        state: dict,
        rank_states: dict[int, tuple[bytes, bytes]] | None = None,
    ) -> Path:
        """Write ``ckpt-<step>/`` atomically, repoint ``checkpoint`` at it, prune older ones.

        ``state`` is a nested dict of JSON values and tensors (optimizer, RNG, task, counters).
        ``best_state`` may be None when ``best_step == step`` (the current weights are the best) or
        when there is no best yet.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        name = ckpt_name(step)
        tmp = self.run_dir / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            weights, aliases = split_aliases(model_state)
            st_save_file(weights, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
            if best_step is not None:
                self._write_best(tmp, step, best_state, best_step)
            tensors: dict[str, torch.Tensor] = {}
            meta = flatten_state(state, tensors, "s")
            st_save_file(storable(tensors), str(tmp / "state.safetensors"), metadata={"format": FORMAT})
            _write_json(tmp / "state.json", {
                "format": FORMAT, "rnntool": __version__, "step": step, "best_step": best_step,
                "saved_at": time.time(), "model_aliases": aliases, "state": meta,
            })
            for rank, (rank_meta, rank_blob) in sorted((rank_states or {}).items()):
                (tmp / f"rank{rank}.json").write_bytes(rank_meta)
                (tmp / f"rank{rank}.safetensors").write_bytes(rank_blob)
            files = sorted(p for p in tmp.iterdir() if p.is_file())
            for p in files:
                _fsync_file(p)
            _write_json(tmp / MANIFEST, {
                "format": FORMAT, "step": step,
                "files": {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files},
            })
            _fsync_file(tmp / MANIFEST)
            fsync_dir(tmp)
            final = self.run_dir / name
            if final.exists():  # saving the same step again (e.g. after a resume): replace it
                old = self.run_dir / f".old-{name}-{os.getpid()}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            fsync_dir(self.run_dir)
            atomic_write_text(self.run_dir / POINTER, name + "\n")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.last = SavedCheckpoint(final, step, best_step)
        self._prune(keep_name=name)
        return final

    def _write_best(self, tmp: Path, step: int, best_state, best_step: int) -> None:
        dest = tmp / "best.safetensors"
        if best_step == step and best_state is None:
            os.link(tmp / "model.safetensors", dest)
            return
        last = self.last
        if last is not None and last.best_step == best_step and (last.path / "best.safetensors").exists():
            try:
                os.link(last.path / "best.safetensors", dest)
                return
            except OSError:
                pass
        if best_state is None:
            raise ValueError("best_state is required when the best weights are not the current ones")
        weights, _ = split_aliases(best_state)
        st_save_file(weights, str(dest), metadata={"format": FORMAT, "step": str(best_step)})

    def _prune(self, keep_name: str) -> None:
        ckpts = list_checkpoints(self.run_dir)
        for path in ckpts[: -self.keep]:
            if path.name != keep_name:
                shutil.rmtree(path, ignore_errors=True)
        for stale in self.run_dir.glob(".tmp-ckpt-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX)
             and p.name[len(CKPT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CKPT_PREFIX):]))


def has_checkpoint(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / POINTER).exists() or bool(list_checkpoints(run_dir))


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
@dataclass
class LoadedCheckpoint:
    path: Path
    step: int
    best_step: int | None
    state: dict  # nested, tensors restored (on CPU)
    model_state: dict[str, torch.Tensor]
    best_state: dict[str, torch.Tensor] | None

    def rank_state(self, rank: int) -> dict | None:
        """Rank ``rank``'s RNG + task state (DDP, rank > 0), or None if this checkpoint has none."""
        meta, blob = self.path / f"rank{rank}.json", self.path / f"rank{rank}.safetensors"
        if not meta.exists() or not blob.exists():
            return None
        try:
            return unpack_rank_state(meta.read_bytes(), blob.read_bytes())
        except (ValueError, KeyError, SafetensorError) as e:
            raise _corrupt(blob, f"cannot be read ({e})") from None


def _corrupt(path: Path, what: str) -> CheckpointError:
    run_dir = path.parent.parent if path.parent.name.startswith(CKPT_PREFIX) else path.parent
    return CheckpointError(
        f"{path}: {what}; the checkpoint is corrupt — point {run_dir / POINTER} at an older "
        f"ckpt-* directory in {run_dir}, or start a new run without --resume"
    )


def latest_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the pointer names; CheckpointError (saying what to do) when there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"{run_dir}: no such run directory; check the path, or start a new run without --resume"
        )
    pointer = run_dir / POINTER
    if not pointer.exists():
        # Killed between renaming its first checkpoint into place and writing the pointer: a
        # checkpoint directory is complete once it has its name (its manifest is written first).
        complete = [p for p in list_checkpoints(run_dir) if (p / MANIFEST).is_file()]
        if complete:
            return complete[-1]
        raise CheckpointError(
            f"{pointer}: missing — {run_dir} holds no checkpoint to resume; start a new run without --resume"
        )
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    path = run_dir / name
    if not name.startswith(CKPT_PREFIX) or "/" in name or not path.is_dir():
        raise _corrupt(pointer, f"names {name!r}, which is not a checkpoint directory here")
    return path


def load_checkpoint(run_dir: Path, *, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load and verify the newest checkpoint of a run (checksums, JSON, tensors)."""
    path = latest_checkpoint(run_dir)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise _corrupt(manifest_path, "missing (the checkpoint was not completely written)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise _corrupt(manifest_path, "is not a valid checkpoint manifest") from None
    for fname, info in files.items():
        f = path / fname
        if not f.is_file():
            raise _corrupt(f, "missing")
        if f.stat().st_size != info.get("bytes") or sha256_file(f) != info.get("sha256"):
            raise _corrupt(f, "checksum mismatch")
    for required in ("model.safetensors", "state.safetensors", "state.json"):
        if required not in files:
            raise _corrupt(path / required, "missing from the manifest")
    device = str(map_location)
    try:
        head = json.loads((path / "state.json").read_text(encoding="utf-8"))
        state_tensors = st_load_file(str(path / "state.safetensors"), device="cpu")
        state = unflatten_state(head["state"], state_tensors)
        model_state = join_aliases(st_load_file(str(path / "model.safetensors"), device=device),
                                   head.get("model_aliases", {}))
        best_state = None
        if "best.safetensors" in files:
            best_state = join_aliases(st_load_file(str(path / "best.safetensors"), device="cpu"),
                                      head.get("model_aliases", {}))
    except (ValueError, KeyError, TypeError, OSError, SafetensorError) as e:
        raise _corrupt(path, f"cannot be read ({type(e).__name__}: {e})") from None
    return LoadedCheckpoint(path, int(head["step"]), head.get("best_step"), state, model_state, best_state)


# ---------------------------------------------------------------------------------------------
# run.json: what a resume needs besides the checkpoint
# ---------------------------------------------------------------------------------------------
def write_run_info(run_dir: Path, *, train: dict, model: dict | None, meta: dict | None) -> None:
    info = {"format": FORMAT, "rnntool": __version__, "created": time.time(), "train": train,
            "model": model, "meta": meta or {}}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / RUN_INFO, json.dumps(info, indent=1) + "\n")


def read_run_info(run_dir: Path) -> dict:
    """``{"train": TrainConfig dict, "model": model config, "meta": run_meta}`` of a run directory.

    ``--resume RUN_DIR`` uses this to rebuild the task (data paths, tokenizer, name...) exactly.
    """
    p = Path(run_dir) / RUN_INFO
    if not p.exists():
        raise CheckpointError(
            f"{p}: missing — {run_dir} is not an rnntool run directory; check the path, "
            "or start a new run without --resume"
        )
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(info, dict) or "train" not in info:
            raise ValueError("no 'train' section")
    except ValueError as e:
        raise _corrupt(p, f"is not valid run info ({e})") from None
    return info
