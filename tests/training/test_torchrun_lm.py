"""`torchrun --nproc-per-node 2 ... rnntool train lm` on CPU: DDP trains, rank 0 alone publishes."""

from __future__ import annotations

import os
import subprocess
import sys

from rnntool.registry.store import Registry


def test_two_process_torchrun_trains_and_publishes_one_version(corpus, tmp_path, registry):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "rnntool", "train", "lm", str(corpus), "--name", "ddp", "--vocab-size", "320",
           "--embed-dim", "16", "--hidden-dim", "16", "--layers", "1", "--batch-size", "4", "--bptt", "8",
           "--max-steps", "6", "--run-dir", str(tmp_path / "run"), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "x 2 processes" in r.stderr
    reg = Registry.open(registry)
    assert [b.ref for b in reg.versions("ddp")] == ["ddp@1"]
    assert [b.ref for b in reg.versions("ddp-tokenizer")] == ["ddp-tokenizer@1"]
    b = reg.load("ddp", kind="lm")
    assert b.manifest["extra"]["world_size"] == 2 and b.metrics["steps"] == 6
    assert r.stdout.count('"ref": "ddp@1"') == 1  # one summary: rank 0's
