"""The process a model runs in: which device, and a host memory allocator fit for tensors.

``prepare_device(name)`` is what every command that builds or loads a model calls: it checks the
``--device`` choice and, once per process, tunes glibc's malloc (``tune_allocator``).
``step_kernels()`` picks the RNN kernels for one-token decoding steps; ``to_device`` moves batches
(through pinned memory to a GPU).

Why the allocator: glibc serves large blocks with ``mmap`` (above a threshold that adapts but stops
at 32 MB) and hands the top of the heap back to the OS whenever more than a trim threshold is free.
A training step frees and re-allocates the same large activations, gate buffers and gradients every
time, so with the defaults each step maps fresh pages and the kernel zeroes them: a 2x512 LSTM
(batch 32 x 64) took 1.8 million page faults per 50 steps (`/usr/bin/time`). Raising both
thresholds keeps that memory in the process to be reused (the behaviour jemalloc and tcmalloc have
by design): the same steps take ~0.15 million faults, and training runs 1.14x faster than a bare
loop under glibc's defaults (bench/lm_throughput.py, bench/RESULTS.md).
The cost: the process keeps its peak heap until it exits instead of shrinking between steps.

Left alone when the user chose an allocator (any ``MALLOC_*`` tuning variable, an ``LD_PRELOAD``)
or sets ``RNNTOOL_MALLOC=system``, and on a C library that is not glibc.
"""

from __future__ import annotations

import contextlib
import os

from rnntool.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # blocks below this come from the heap; up to this much free heap is kept
_GLIBC_MMAP_MAX = 32 << 20  # the largest mmap threshold older glibc versions accept

NATIVE_STEP_ROWS = 64  # see step_kernels

_tuned: bool | None = None


def prepare_device(name: str):
    """Resolve ``--device`` (auto|cpu|cuda) to a ``torch.device`` and tune the allocator once."""
    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)} (got {name!r})")
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    tune_allocator()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextlib.contextmanager
def step_kernels(rows: int):
    """Run a one-token RNN step over ``rows`` rows on the faster CPU kernels for that size.

    oneDNN's RNN primitive pays a set-up cost on every call that only long sequences or many rows
    amortize: for one step of a 2x512 LSTM, torch's native kernels are faster at a few rows and
    slower at hundreds, about even near 64. So steps of fewer than NATIVE_STEP_ROWS rows run
    natively; training and scoring, which run whole sequences, keep oneDNN. The effect on whole
    decoding runs: bench/translate_throughput.py (bench/RESULTS.md). Wrap only the model's work:
    the setting is process-wide.
    """
    import torch

    previous = torch.backends.mkldnn.enabled
    if rows < NATIVE_STEP_ROWS:
        torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def to_device(tensor, device):
    """A batch's host tensor on ``device``. To a GPU through pinned (page-locked) memory and an asynchronous
    copy, so the host goes on with the next step's work while the batch travels; elsewhere ``tensor.to``
    (no copy when it is there already)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def tune_allocator(environ=os.environ) -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring). True when applied;
    later calls return the first answer."""
    global _tuned
    if _tuned is None:
        _tuned = _apply(environ)
    return _tuned


def _apply(environ) -> bool:
    import ctypes  # here, not at the top: `rnntool --help` imports this module
    import platform

    if environ.get("RNNTOOL_MALLOC", "").lower() == "system" or environ.get("LD_PRELOAD"):
        return False
    if any(key.startswith("MALLOC_") or key.startswith("GLIBC_TUNABLES") for key in environ):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES) and not mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_MAX):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
