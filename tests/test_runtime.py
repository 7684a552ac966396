"""rnntool.runtime: the --device choice and the glibc allocator tuning."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from rnntool import runtime
from rnntool.errors import ConfigError

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_prepare_device_resolves_and_rejects():
    assert runtime.prepare_device("cpu") == torch.device("cpu")
    assert runtime.prepare_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="--device must be one of auto, cpu, cuda"):
        runtime.prepare_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            runtime.prepare_device("cuda")


@pytest.mark.parametrize("environ", [
    {"RNNTOOL_MALLOC": "system"},
    {"MALLOC_ARENA_MAX": "2"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"},
    {"LD_PRELOAD": "/usr/lib/libjemalloc.so"},
])
def test_a_users_allocator_choice_is_left_alone(environ):
    assert runtime._apply(environ) is False


def _page_faults_of_steps(env_extra: dict) -> int:
    """Minor page faults of 8 forward/backward steps of an LSTM big enough for mmap-sized blocks,
    in a fresh process that prepares the device the way every command does."""
    code = """
import resource, torch
from rnntool.runtime import prepare_device
prepare_device("cpu")
torch.manual_seed(0); torch.set_num_threads(1)
lstm = torch.nn.LSTM(256, 256, 2, batch_first=True)
x = torch.randn(16, 256, 256)
def step():
    out, _ = lstm(x); out.sum().backward(); lstm.zero_grad(set_to_none=True)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8): step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    env.pop("LD_PRELOAD", None)
    out = subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
def test_tuned_allocator_reuses_memory_instead_of_faulting_fresh_pages():
    tuned = _page_faults_of_steps({})
    system = _page_faults_of_steps({"RNNTOOL_MALLOC": "system"})
    # The default allocator maps and zeroes fresh pages for the big blocks of every step.
    assert tuned * 3 < system, (tuned, system)


def test_step_kernels_switch_onednn_off_and_always_restore():
    assert torch.backends.mkldnn.enabled
    with runtime.step_kernels(1):
        assert not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled
    with runtime.step_kernels(runtime.NATIVE_STEP_ROWS):  # many rows: oneDNN pays off
        assert torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError), runtime.step_kernels(1):
        raise RuntimeError("boom")
    assert torch.backends.mkldnn.enabled


def test_one_token_steps_give_the_same_result_on_either_kernel():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(32, 32, 2, batch_first=True).eval()
    x, state = torch.randn(3, 1, 32), (torch.randn(2, 3, 32), torch.randn(2, 3, 32))
    with torch.no_grad():
        onednn, _ = lstm(x, state)
        with runtime.step_kernels(3):
            native, _ = lstm(x, state)
    torch.testing.assert_close(native, onednn, rtol=1e-5, atol=1e-6)


def test_to_device_moves_batches_and_leaves_cpu_tensors_in_place():
    """Batches go through to_device: on the CPU the same tensor (no copy); to a GPU through pinned memory
    (run where one is lent: bench/gpu.py)."""
    import torch

    from rnntool.runtime import to_device

    t = torch.arange(6).view(2, 3)
    assert to_device(t, "cpu") is t
    assert to_device(t, torch.device("cpu")) is t
    if torch.cuda.is_available():
        moved = to_device(t, "cuda")
        assert moved.device.type == "cuda" and torch.equal(moved.cpu(), t)
