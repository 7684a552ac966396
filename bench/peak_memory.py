"""Peak memory of training, side by side: `rnntool train lm` against a bare PyTorch loop of the same model
and batch, and `rnntool train translate`, each as its own process (the peak resident set the kernel
reports for it, VmHWM via wait4), next to the resident set of a process that only imports torch.

    .venv/bin/python bench/peak_memory.py                  # Tiny Shakespeare and Multi30k, 200 steps each
    .venv/bin/python bench/peak_memory.py --steps 20       # a smoke test

Cases: `train lm` on Tiny Shakespeare at its defaults (2x256 LSTM, batch 32 x bptt 64) with a 2,000- and
an 8,000-piece vocabulary, and `train translate` on Multi30k with a small model; validation every
--steps/2 steps. The bare loop (nn.Embedding -> nn.LSTM -> nn.Linear, Adam, cross-entropy over the
whole (B, T, V) logits, state carried and detached) runs the same number of steps on random tokens.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from machine import machine_info  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "bench" / "out" / "peak_memory"


def peak_mb(cmd: list[str], env: dict | None = None, log: Path | None = None) -> tuple[float, str]:
    """Run ``cmd``; its own peak resident set in MB (wait4's rusage) and its stderr."""
    err = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    if err is not subprocess.DEVNULL:
        err.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)} (see {log})")
    return usage.ru_maxrss / 1024, log.read_text() if log else ""


BARE = """
import sys, torch, torch.nn as nn
vocab, steps = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0); torch.set_num_threads(2)
class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.e, self.r, self.o = nn.Embedding(vocab, 256), nn.LSTM(256, 256, 2, batch_first=True, dropout=0.2), nn.Linear(256, vocab)
    def forward(self, x, h=None):
        y, h = self.r(self.e(x), h)
        return self.o(y), h
m = LM(); opt = torch.optim.Adam(m.parameters(), 1e-3); h = None
for _ in range(steps):
    x = torch.randint(0, vocab, (32, 65))
    logits, h = m(x[:, :-1], h); h = tuple(t.detach() for t in h)
    loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), x[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward(); opt.step()
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    for line in machine_info(2):
        print(line)
    print(f"$ python bench/peak_memory.py {shlex.join(argv if argv is not None else sys.argv[1:])}\n", flush=True)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    env = {"RNNTOOL_HOME": str(OUT / "registry"), "OMP_NUM_THREADS": "2"}
    py = sys.executable
    base, _ = peak_mb([py, "-c", "import torch, numpy, sentencepiece"])
    print(f"a process that imports torch, numpy and sentencepiece: {base:.0f} MB\n")
    rows = []
    ts, m30k = DATA / "tinyshakespeare" / "input.txt", DATA / "multi30k"
    every = str(max(args.steps // 2, 1))
    for vocab in (2000, 8000):
        cmd = ["rnntool", "train", "lm", str(ts), "-o", str(OUT / f"lm{vocab}"), "--vocab-size", str(vocab),
               "--max-steps", str(args.steps), "--eval-every", every, "--threads", "2",
               "--no-tie-embeddings"]  # the bare loop's own output layer (the default ties it to the embeddings)
        print(f"$ {shlex.join(cmd)}", flush=True)
        ours, log = peak_mb([py, "-m", "rnntool", *cmd[1:]], env, OUT / f"lm{vocab}.log")
        params = re.search(r"training ([\d,]+) parameters", log)
        bare, _ = peak_mb([py, "-c", BARE, str(vocab), str(args.steps)], env)
        rows.append((f"train lm, vocabulary {vocab}", params.group(1) if params else "?", ours, bare))
        print(f"  rnntool {ours:.0f} MB, bare loop {bare:.0f} MB", flush=True)
    cmd = ["rnntool", "train", "translate", "--src", str(m30k / "train.en"), "--tgt", str(m30k / "train.de"),
           "-o", str(OUT / "mt"), "--joint-vocab", "--vocab-size", "4000", "--layers", "1", "--embed-dim", "128",
           "--hidden-dim", "256", "--max-steps", str(args.steps), "--eval-every", every, "--threads", "2"]
    print(f"$ {shlex.join(cmd)}", flush=True)
    ours, log = peak_mb([py, "-m", "rnntool", *cmd[1:]], env, OUT / "mt.log")
    params = re.search(r"training ([\d,]+) parameters", log)
    rows.append(("train translate (Multi30k, 1x256)", params.group(1) if params else "?", ours, None))
    speed = re.findall(r"tok/s (\d+)", log)
    print(f"  rnntool {ours:.0f} MB, {speed[-1] if speed else '?'} target tokens/s as it last logged", flush=True)
    print("\n| command | parameters | peak resident set, rnntool | bare PyTorch loop |")
    print("|---|---|---|---|")
    for what, params, ours, bare in rows:
        print(f"| {what} | {params} | {ours:.0f} MB | {'-' if bare is None else f'{bare:.0f} MB'} |")
    print(f"\n(importing torch, numpy and sentencepiece alone: {base:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
