"""Building a model only once its size is known to be sane, and its weight file known to fit it;
saving and loading every kind's weights.

    model = build_model(lambda: RNNLM(cfg), weights=bundle.file(WEIGHTS_FILE))  # loading
    load_weights(model, bundle.file(WEIGHTS_FILE), device)                      # into it, on device
    model = build_model(lambda: RNNLM(cfg), training=True)                      # training
    save_weights(model, stage / WEIGHTS_FILE)                                   # publishing
    model_device(model)                                                         # where it is

A manifest's config decides how big a model is, and a manifest can say anything: a config asking
for a 10^6-wide layer would make torch try to allocate hundreds of gigabytes before a single weight
is compared. So the model is first built on torch's ``meta`` device (shapes only, nothing
allocated, no random initialisation run), its size checked against this machine's memory, and its
parameter shapes compared with the safetensors header of the weight file (read and bounds-checked
here: the header's shapes must account for the file's bytes exactly). Only then is the real model
built. The same check turns ``--hidden-dim 1000000`` into a clear error instead of an allocation
failure.

Weight files are safetensors (no pickles): the model's state dict, tied/shared tensors stored once
(under the first of their names; the others are recorded in the file's metadata, as
``safetensors.torch.save_model`` does).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from rnntool.errors import ConfigError, CorruptBundle

M = TypeVar("M", bound=nn.Module)

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
TRAINING_MEMORY_FACTOR = 4  # weights + gradients + two Adam moments
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1}


class _MetaDevice(TorchFunctionMode):
    """Tensor constructors make ``meta`` tensors and in-place fills of them do nothing (random
    initialisation of meta tensors would import torch's compiler, a second of start-up)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        target = args[0] if args else kwargs.get("tensor")
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.startswith("__") and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


def abstract_model(factory: Callable[[], M]) -> M:
    """The model ``factory()`` builds, on the meta device: every shape, no memory."""
    with _MetaDevice():
        return factory()


def _unique_tensors(model: nn.Module) -> dict[int, list[tuple[str, torch.Tensor]]]:
    """State-dict entries grouped by tensor identity (tied weights are one group)."""
    groups: dict[int, list[tuple[str, torch.Tensor]]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append((name, t))
    return groups


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's weights, tied weights counted once."""
    return sum(g[0][1].numel() * g[0][1].element_size() for g in _unique_tensors(model).values())


def memory_bytes() -> int | None:
    """This machine's memory, or the container's limit (cgroup v2 ``memory.max``) when lower."""
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return have
    return min(have, int(limit)) if limit.isdigit() else have


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_fits(model: nn.Module, *, training: bool, hint: str, error: type[Exception] = ConfigError) -> None:
    """``error`` (saying what to change: ``hint``) when the model cannot fit in this machine's memory."""
    need = model_bytes(model) * (TRAINING_MEMORY_FACTOR if training else 1)
    have = memory_bytes()
    if have is not None and need > have:
        params = sum(g[0][1].numel() for g in _unique_tensors(model).values())
        what = f"training it needs about {_gb(need)}" if training else f"its weights need {_gb(need)}"
        raise error(f"the model would have {params:,} parameters: {what}, more than this machine's "
                    f"{_gb(have)} of memory; {hint}")


def read_safetensors_header(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` from a safetensors file's header, checked against the file:
    every tensor's byte range lies inside the data and matches its dtype and shape, so no shape here
    can be larger than the file. CorruptBundle otherwise."""
    path = Path(path)
    bad = lambda why: CorruptBundle(  # noqa: E731
        f"{path}: cannot read the model weights (not a safetensors file: {why}); re-publish the model")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise bad("too short")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise bad(f"header of {n} bytes in a file of {size}")
            raw = f.read(n)
    except OSError as e:
        raise CorruptBundle(f"{path}: cannot read the model weights ({e.strerror}); re-publish the model") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    data_bytes = size - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            ok = (dtype in _DTYPE_BYTES and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_bytes)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise bad(f"bad entry for tensor {name!r}")
        numel = 1
        for d in shape:
            numel *= d
        if numel * _DTYPE_BYTES[dtype] != end - start:
            raise bad(f"tensor {name!r} has shape {list(shape)} but {end - start} bytes")
        out[name] = (dtype, shape)
    return out


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel (or the model itself)."""
    return getattr(model, "module", model)


def model_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for a module without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``model``'s weights (the module inside DDP) to ``path``: a safetensors file of CPU tensors,
    each tied/shared tensor once. ``metadata``: extra string entries of the file's header."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    meta = dict(metadata or {})
    for group in _unique_tensors(unwrap_model(model)).values():
        keep, *others = sorted(name for name, _ in group)
        tensors[keep] = group[0][1].detach().cpu().contiguous()
        for name in others:
            meta.setdefault(name, keep)
    save_file(tensors, str(path), metadata=meta or None)


def load_weights(model: M, path: str | os.PathLike, device: str | torch.device = "cpu") -> M:
    """Load the weights ``save_weights`` wrote (any rnntool version) into ``model`` and return it, moved
    to ``device`` (its train/eval mode untouched). A tied/shared tensor must be stored under exactly
    one of its names. CorruptBundle when the file cannot be read or does not fit the model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    target = unwrap_model(model)
    try:
        stored = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:  # a truncated or foreign file
        raise CorruptBundle(f"{path}: cannot read the model weights ({e}); re-publish the model") from None
    try:
        target.load_state_dict(stored, strict=False)
    except RuntimeError as e:  # shapes differ from what the config builds
        details = [line.strip() for line in str(e).splitlines()[1:2]]
        raise CorruptBundle(f"{path}: weights do not match the model config ({'; '.join(details)}); "
                            "re-publish the model") from None
    groups = _unique_tensors(target)
    known = {name for g in groups.values() for name, _ in g}
    missing, unexpected = [], [name for name in stored if name not in known]
    for group in groups.values():
        names = sorted(name for name, _ in group)
        have = [name for name in names if name in stored]
        if not have:
            missing.append(names[0])
        unexpected.extend(have[1:])
    if missing or unexpected:
        raise CorruptBundle(f"{path}: weights do not match the model config (missing {sorted(missing)[:3]}, "
                            f"unexpected {sorted(unexpected)[:3]}); re-publish the model")
    return model.to(device)


def check_weights_file(model: nn.Module, path: str | os.PathLike) -> None:
    """CorruptBundle unless the file holds exactly the model's tensors with the model's shapes (tied
    weights may be stored under any one of their names)."""
    header = read_safetensors_header(path)
    groups = _unique_tensors(model)
    known = {name for g in groups.values() for name, _ in g}
    wrong = sorted(k for k in header if k not in known)
    for group in groups.values():
        shape = tuple(group[0][1].shape)
        stored = [header[name][1] for name, _ in group if name in header]
        if not stored:
            wrong.append(group[0][0])
        elif any(s != shape for s in stored):
            wrong.append(next(name for name, _ in group if name in header))
    if wrong:
        raise CorruptBundle(f"{path}: weights do not match the model config ({', '.join(sorted(wrong)[:3])}); "
                            "re-publish the model")


def build_model(factory: Callable[[], M], *, weights: str | os.PathLike | None = None, training: bool = False,
                hint: str = "") -> M:
    """``factory()`` once its shapes passed: the size check (ConfigError for a model being trained,
    CorruptBundle for one being loaded from a manifest) and, with ``weights``, the file check."""
    probe = abstract_model(factory)
    if weights is not None:
        check_weights_file(probe, weights)
    if training:
        check_fits(probe, training=True, hint=hint or "lower --hidden-dim, --embed-dim, --layers or the vocabulary size")
    else:
        check_fits(probe, training=False, error=CorruptBundle, hint=hint or "use a machine with more memory")
    return factory()


__all__ = ["abstract_model", "build_model", "check_fits", "check_weights_file", "load_weights", "model_bytes",
           "model_device", "read_safetensors_header", "save_weights", "unwrap_model"]
