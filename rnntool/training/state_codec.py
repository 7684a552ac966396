"""Training state as safetensors + JSON, never pickle: what a checkpoint is made of.

    tensors = {}
    meta = flatten_state(state, tensors)        # JSON-able structure, tensors moved into ``tensors``
    state = unflatten_state(meta, tensors)      # the same structure and types back
    tensors, aliases = split_aliases(model.state_dict())   # tied weights stored once
    rng = capture_rng(); restore_rng(rng)       # python, numpy, torch CPU (and CUDA) generators
    meta, blob = pack_rank_state(obj)           # one DDP rank's state as bytes (JSON, safetensors)
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes


# ---------------------------------------------------------------------------------------------
# Nested state <-> (JSON, flat tensor dict)
# ---------------------------------------------------------------------------------------------
def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Return a JSON-able copy of ``obj`` with every tensor moved into ``tensors``.

    Handles dicts (any hashable JSON-able keys), lists, tuples, tensors, numpy arrays/scalars and
    JSON scalars; ``unflatten_state`` restores the same structure and types.
    """
    if isinstance(obj, torch.Tensor):
        key = prefix or "t"
        while key in tensors:
            key = f"{key}~"
        tensors[key] = obj.detach()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten_state(v, tensors, f"{prefix}/{k}") for k, v in obj.items()}
        return {
            "__items__": [
                [flatten_state(k, tensors, f"{prefix}/k{i}"), flatten_state(v, tensors, f"{prefix}/{i}")]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(
        f"cannot store a {type(obj).__name__} at '{prefix}' in a checkpoint: "
        "state must be tensors, numpy arrays or JSON values"
    )


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_hashable(unflatten_state(k, tensors)): unflatten_state(v, tensors) for k, v in obj["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    return obj


def _hashable(k: Any) -> Any:
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def storable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, no two tensors sharing memory (safetensors' requirements)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, t in tensors.items():
        t = t.detach().cpu()
        ptr = t.untyped_storage().data_ptr()
        whole = t.untyped_storage().nbytes() == t.numel() * t.element_size()
        if (ptr in seen and t.numel()) or not whole or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        seen.add(t.untyped_storage().data_ptr())
        out[k] = t
    return out


def split_aliases(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store tied weights once: ``(tensors, {alias_key: stored_key})``."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple, str] = {}
    for k, t in state.items():
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype,
                 t.device)
        if t.numel() and ident in first:
            aliases[k] = first[ident]
        else:
            first[ident] = k
            tensors[k] = t
    return storable(tensors), aliases


def join_aliases(tensors: dict[str, torch.Tensor], aliases: dict[str, str]) -> dict[str, torch.Tensor]:
    return {**tensors, **{k: tensors[v] for k, v in aliases.items()}}


# ---------------------------------------------------------------------------------------------
# RNG state
# ---------------------------------------------------------------------------------------------
def capture_rng() -> dict:
    """Python ``random``, numpy's global RNG, torch CPU and (when in use) every CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda_states = [s.to(torch.uint8).cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# ---------------------------------------------------------------------------------------------
# Per-rank state (DDP): bytes that travel through the process group and land as files
# ---------------------------------------------------------------------------------------------
def pack_rank_state(obj: dict) -> tuple[bytes, bytes]:
    """``(json_bytes, safetensors_bytes)`` of a nested state (RNG + task state of one rank)."""
    tensors: dict[str, torch.Tensor] = {}
    meta = flatten_state(obj, tensors, "r")
    return json.dumps(meta).encode("utf-8"), st_save_bytes(storable(tensors))


def unpack_rank_state(meta: bytes, blob: bytes) -> dict:
    return unflatten_state(json.loads(meta.decode("utf-8")), st_load_bytes(blob))


__all__ = [
    "capture_rng",
    "flatten_state",
    "join_aliases",
    "pack_rank_state",
    "restore_rng",
    "split_aliases",
    "storable",
    "unflatten_state",
    "unpack_rank_state",
]
